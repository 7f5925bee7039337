from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header
from pydantic import Field, StrictBool, StrictStr

from paletai.core.deps import MaintenanceDep, SettingsDep
from paletai.core.errors import Forbidden, Unauthorized, error_responses
from paletai.core.schemas import RequestModel

router = APIRouter(prefix="/admin", tags=["admin"])


class MaintenanceRequest(RequestModel):
    enabled: StrictBool
    reason: StrictStr | None = Field(default=None, max_length=200)


def require_admin(
    settings: SettingsDep, authorization: Annotated[str | None, Header()] = None
) -> None:
    """`Authorization: Bearer <ADMIN_TOKEN>`; the admin API is off when ADMIN_TOKEN is unset."""
    token = settings.ADMIN_TOKEN
    if token is None or not token.get_secret_value():
        raise Forbidden("the admin API is disabled: set ADMIN_TOKEN to enable it")
    if not authorization or not authorization.lower().startswith("bearer "):
        raise Unauthorized("send 'Authorization: Bearer <ADMIN_TOKEN>'")
    given = authorization[7:].strip().encode()
    if not secrets.compare_digest(given, token.get_secret_value().encode()):
        raise Forbidden("wrong admin token")


AdminDep = Annotated[None, Depends(require_admin)]


@router.get("/maintenance", responses=error_responses(401, 403, 422))
async def get_maintenance(_: AdminDep, maintenance: MaintenanceDep) -> dict[str, Any]:
    return await maintenance.describe()


@router.post("/maintenance", responses=error_responses(401, 403, 422))
async def set_maintenance(
    body: MaintenanceRequest, _: AdminDep, maintenance: MaintenanceDep
) -> dict[str, Any]:
    """Turn maintenance on (writes answer 503 with Retry-After) or off."""
    await maintenance.set(body.enabled, body.reason)
    return await maintenance.describe()
