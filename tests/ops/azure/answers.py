"""What az answers about an App Service app, its plan and its Application Insights, in the
shapes az writes (trimmed), for `fake_az.respond`."""

from __future__ import annotations

import json
from typing import Any

from tests.fixtures.fake_az import FakeAz

SUB = "/subscriptions/00000000-0000-0000-0000-000000000001"
APP = "emailgeniebackend"
GROUP = "huddleup"
PLAN_ID = f"{SUB}/resourceGroups/{GROUP}/providers/Microsoft.Web/serverfarms/huddleup-plan"
COMPONENT_ID = f"{SUB}/resourceGroups/{GROUP}/providers/microsoft.insights/components/paletai-ai"
APP_ID = "7f3c1a2b-0000-4000-8000-00000000a11d"
IKEY = "5b2d3e4f-1111-4222-8333-444455556666"

DB_PASSWORD = "S3cret-pass"
SECRETS = (
    DB_PASSWORD,
    "sk-test-0123456789abcdef",
    "os_v2_app_rest_key_0123456789",
    "c2VjcmV0LXN0b3JhZ2Uta2V5LWZvci10ZXN0cy0wMTIzNDU2Nzg5YWJjZGVm",
    IKEY,
)
NOT_LOGGED_IN = "ERROR: Please run 'az login' to setup account."
APP_NOT_FOUND = (
    "ERROR: (ResourceNotFound) The Resource 'Microsoft.Web/sites/nope' under resource group "
    "'huddleup' was not found. For more details please go to "
    "https://aka.ms/ARMResourceNotFoundFix\nCode: ResourceNotFound\nMessage: The Resource "
    "'Microsoft.Web/sites/nope' under resource group 'huddleup' was not found."
)


def app_settings(*, insights: bool = True) -> list[dict[str, Any]]:
    values = {
        "DB_PATH": f"mongodb+srv://paletai:{DB_PASSWORD}@cluster0.abcde.mongodb.net/paletai"
        "?retryWrites=true",
        "OPENAI_API_KEY": SECRETS[1],
        "IS_OPENAI_ENDPOINT": "True",
        "OPENAI_MODEL": "gpt-4o",
        "ONESIGNAL_APP_ID": "0a1b2c3d-4e5f-6789-abcd-ef0123456789",
        "ONESIGNAL_REST_API_KEY": SECRETS[2],
        "AZURE_STORAGE_CONNECTION_STRING": "DefaultEndpointsProtocol=https;AccountName=paletaiold;"
        f"AccountKey={SECRETS[3]};EndpointSuffix=core.windows.net",
        "AZURE_STORAGE_CONTAINER": "game-images",
        "WEBSITES_PORT": "8000",
    }
    if insights:
        values["APPLICATIONINSIGHTS_CONNECTION_STRING"] = (
            f"InstrumentationKey={IKEY};IngestionEndpoint=https://westus3-1.in."
            "applicationinsights.azure.com/"
        )
    return [{"name": k, "value": v, "slotSetting": False} for k, v in values.items()]


def query_answer(columns: list[str], rows: list[list[Any]]) -> dict[str, Any]:
    """The Application Insights API's answer to a query."""
    return {
        "tables": [
            {
                "name": "PrimaryResult",
                "columns": [{"name": c, "type": "dynamic"} for c in columns],
                "rows": rows,
            }
        ]
    }


def window_answer(
    requests: int = 1200,
    *,
    failed: int = 3,
    server_errors: int = 0,
    exceptions: int = 0,
    avg_ms: float | None = 180.5,
    p95_ms: float | None = 640.0,
    problems: list[str] | None = None,
) -> dict[str, Any]:
    columns = ["requests", "failed", "server_errors", "avg_ms", "p95_ms", "exceptions"]
    columns.append("top_problems")
    row = [requests, failed, server_errors, avg_ms, p95_ms, exceptions, json.dumps(problems or [])]
    return query_answer(columns, [row])


def with_app(fake_az: FakeAz, *, insights: bool = True) -> None:
    """A running app in GROUP on a B1 plan, with (or without) Application Insights."""
    fake_az.respond("webapp config appsettings list", app_settings(insights=insights))
    fake_az.respond(
        "webapp show",
        {
            "name": APP,
            "state": "Running",
            "defaultHostName": f"{APP}.azurewebsites.net",
            "serverFarmId": PLAN_ID,
            "location": "West US 3",
        },
    )
    fake_az.respond(
        "appservice plan show",
        {
            "name": "huddleup-plan",
            "sku": {"name": "B1", "tier": "Basic", "capacity": 1},
            "location": "West US 3",
            "kind": "linux",
        },
    )
    fake_az.respond(
        "webapp config hostname list",
        [
            {"name": f"{APP}.azurewebsites.net", "sslState": "Disabled", "thumbprint": None},
            {"name": "api.paletai.com", "sslState": "SniEnabled", "thumbprint": "AB12CD34"},
        ],
    )
    fake_az.respond(
        "webapp config ssl list",
        [
            {
                "subjectName": "api.paletai.com",
                "hostNames": ["api.paletai.com"],
                "thumbprint": "AB12CD34",
                "expirationDate": "2027-03-01T00:00:00+00:00",
                "issuer": "GeoTrust TLS RSA CA G1",
            },
            {
                "subjectName": "other.example.com",
                "hostNames": ["other.example.com"],
                "thumbprint": "FF",
            },
        ],
    )
    if insights:
        fake_az.respond("resource list", [{"id": COMPONENT_ID, "name": "paletai-ai"}])
        fake_az.respond(
            "resource show",
            {"name": "paletai-ai", "properties": {"AppId": APP_ID, "InstrumentationKey": IKEY}},
        )
    else:
        fake_az.respond("resource list", [])
