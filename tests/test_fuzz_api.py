"""Property-based fuzzing of the whole OpenAPI schema (schemathesis) with all its checks: no 5xx
anywhere, and every answer is one the document declares (status code, content type, schema).

The app runs as a real server process on the embedded database; every operation gets generated
valid and invalid inputs, with a real user's token so the authenticated paths are reached.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from pydantic import EmailStr, TypeAdapter, ValidationError
from schemathesis import GenerationMode

from paletai.games.service import encode_cursor
from tests.process_helpers import ServerProcess, clean_env

pytestmark = pytest.mark.slow

# Per operation and generation mode (valid and invalid inputs): ~2 minutes over the whole API.
EXAMPLES_PER_OPERATION = 25


@pytest.fixture(scope="module")
def live_server(
    tmp_path_factory: pytest.TempPathFactory, mongo_uri: str
) -> Iterator[tuple[str, dict[str, str]]]:
    workdir = tmp_path_factory.mktemp("fuzz")
    env = clean_env(
        DB_PATH=mongo_uri,
        DB_NAME="fuzz",
        PALETAI_DATA_DIR=str(Path(workdir) / "data"),
        JWT_SECRET_KEY="fuzz-secret-" + "f" * 40,
        ADMIN_TOKEN="fuzz-admin-token-0123456789",
        DAILY_PROMPT_LIMIT="1000",
        LOGIN_MAX_FAILURES="1000",
        LOGIN_MAX_FAILURES_PER_IP="100000",
    )
    server = ServerProcess(Path(workdir), env)
    try:
        server.wait_ready(within=120)  # a loaded CI machine imports slowly
        r = httpx.post(
            f"{server.base_url}/auth/register",
            json={"email": "fuzz@example.com", "password": "fuzz password"},
        )
        headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        # A game to aim at, so paths with an id sometimes hit something real.
        httpx.post(f"{server.base_url}/games", json={"prompt": "snake"}, headers=headers)
        yield server.base_url, headers
    finally:
        server.terminate()


def _accepted_email(value: str) -> bool:
    try:
        TypeAdapter(EmailStr).validate_python(value)
    except ValidationError:
        return False
    return True


# JSON Schema's `email` format cannot say that special-use domains (RFC 6761: .test, .invalid,
# .localhost, ...) are refused, so schema-valid addresses are drawn among those the API accepts.
schemathesis.openapi.format("email", st.emails().filter(_accepted_email))
# A cursor is an opaque token the API issued (the schema gives only its alphabet and length): valid
# ones are what the API itself encodes, (likes_count, rank) in int64's range.
INT64 = st.integers(min_value=0, max_value=2**63 - 1)
schemathesis.openapi.format("cursor", st.builds(encode_cursor, INT64, INT64))


def test_no_server_errors(live_server: tuple[str, dict[str, str]]) -> None:
    base_url, headers = live_server
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15, "every endpoint of the contract should be in the schema"
    exercised: list[str] = []
    statuses: list[int] = []

    for operation in operations:
        # Headers travel as text, so an unconstrained header has no invalid form to send.
        inputs = [operation.path_parameters, operation.query, operation.body]
        modes = [GenerationMode.POSITIVE]
        if any(len(part) for part in inputs):
            modes.append(GenerationMode.NEGATIVE)
        for mode in modes:

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES_PER_OPERATION,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def run(case: schemathesis.Case) -> None:
                # Never leave maintenance on mid-run: writes would answer 503 by design.
                if case.path == "/admin/maintenance" and case.method.upper() == "POST":
                    case.body = {"enabled": False}
                # All of schemathesis's checks (no `checks=`): not only "no 5xx".
                response = case.call_and_validate(base_url=base_url, headers=headers, timeout=30)
                statuses.append(response.status_code)

            try:
                run()
            except Unsatisfiable as exc:
                label = f"{operation.method.upper()} {operation.path}"
                raise AssertionError(f"{label}: no {mode.value} input could be drawn") from exc
        exercised.append(f"{operation.method.upper()} {operation.path}")
    assert len(exercised) == len(operations)
    # The run really sent requests, and reached both accepted and refused inputs.
    assert len(statuses) >= 5 * len(operations)
    assert any(200 <= code < 300 for code in statuses)
    assert any(code == 422 for code in statuses)
