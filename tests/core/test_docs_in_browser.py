"""The API docs as a person uses them: Swagger UI in headless Chromium, the Authorize button
with email + password, then "Try it out" on an authenticated endpoint."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.generation.cdp import Browser, Page, find_chromium
from tests.process_helpers import ServerProcess, clean_env

pytestmark = pytest.mark.slow

# React keeps its own copy of an input's value: set it through the native setter, then notify.
FILL = """
(sel, value) => {
  const input = document.querySelector(sel);
  const setter = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set;
  setter.call(input, value);
  input.dispatchEvent(new Event('input', {bubbles: true}));
  input.dispatchEvent(new Event('change', {bubbles: true}));
  return true;
}
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, mongo_uri: str) -> Iterator[str]:
    workdir = Path(tmp_path_factory.mktemp("docs"))
    env = clean_env(
        DB_PATH=mongo_uri,
        DB_NAME="docs_browser",
        PALETAI_DATA_DIR=str(workdir / "data"),
        JWT_SECRET_KEY="docs-secret-" + "d" * 40,
    )
    server = ServerProcess(workdir, env)
    try:
        server.wait_ready()
        yield server.base_url
    finally:
        server.terminate()


@pytest.fixture(scope="module")
def page() -> Iterator[Page]:
    executable = find_chromium()
    if executable is None:
        pytest.fail("Chromium is not installed: run `make tools` (or `apt-get install chromium`)")
    browser = Browser(executable)
    try:
        yield browser.open_page()
    finally:
        browser.close()


def call(page: Page, function: str, *args: object) -> object:
    return page.evaluate(f"({function})(...{json.dumps(list(args))})")


def test_authorize_button_then_try_it_out(served: str, page: Page) -> None:
    email, password = "swagger@example.com", "swagger password"
    r = httpx.post(f"{served}/auth/register", json={"email": email, "password": password})
    assert r.status_code == 200

    page.navigate(f"{served}/docs")
    page.wait_for("document.querySelector('.btn.authorize') !== null", timeout=20)
    page.evaluate("document.querySelector('.btn.authorize').click()")
    page.wait_for("document.querySelector('#oauth_username') !== null")
    call(page, FILL, "#oauth_username", email)
    call(page, FILL, "#oauth_password", password)
    page.evaluate("document.querySelector('.auth-btn-wrapper .authorize').click()")
    # Swagger UI posts the OAuth2 password form to /auth/login and shows "Authorized".
    page.wait_for(
        "(document.querySelector('.auth-container')?.innerText || '').includes('Logout')",
        timeout=15,
    )
    assert "Logout" in str(page.evaluate("document.querySelector('.auth-container').innerText"))
    page.evaluate("document.querySelector('.auth-btn-wrapper .btn-done').click()")
    page.wait_for("document.querySelector('.dialog-ux') === null")

    # GET /auth/me through "Try it out" -> "Execute" carries the token Swagger UI got.
    op = "#operations-auth-me_auth_me_get"
    page.evaluate(f"document.querySelector('{op} .opblock-summary-control').click()")
    page.wait_for(f"document.querySelector('{op} .try-out__btn') !== null")
    page.evaluate(f"document.querySelector('{op} .try-out__btn').click()")
    page.wait_for(f"document.querySelector('{op} .execute') !== null")
    page.evaluate(f"document.querySelector('{op} .execute').click()")
    live = f"{op} .live-responses-table"
    page.wait_for(
        f"document.querySelector('{live} tbody .response-col_status') !== null", timeout=15
    )
    status = page.evaluate(f"document.querySelector('{live} tbody .response-col_status').innerText")
    body = page.evaluate(f"document.querySelector('{live} tbody .microlight').innerText")
    assert str(status).strip().startswith("200")
    assert email in str(body)
    assert not [e for e in page.errors() if "favicon" not in e]


def test_redoc_renders_under_its_csp(served: str, page: Page) -> None:
    page.navigate(f"{served}/redoc")
    # ReDoc draws the operations once it has loaded /openapi.json.
    page.wait_for("document.body && document.body.innerText.includes('/games/feed')", timeout=30)
    assert "PaletAI" in str(page.evaluate("document.body.innerText"))
    # ReDoc's "powered by" logo comes from its CDN: the CSP blocks it by design (no CDN, the
    # docs work offline). Nothing of our own may be blocked or fail.
    errors = [e for e in page.errors() if "favicon" not in e]
    assert [e for e in errors if "https://cdn.redoc.ly/" not in e] == []
