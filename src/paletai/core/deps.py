"""FastAPI dependencies, handed out through Annotated aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from paletai.config import Settings
from paletai.core.context import AppContext
from paletai.core.errors import Unauthorized
from paletai.core.maintenance import MaintenanceState
from paletai.core.security import decode_access_token
from paletai.db.client import Database
from paletai.storage.base import ImageStore
from paletai.users.schemas import UserInDB

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/auth/login", auto_error=False)


def get_context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


CtxDep = Annotated[AppContext, Depends(get_context)]


def base_url(request: Request) -> str:
    """The API's public address, no trailing slash: PUBLIC_BASE_URL, else the one asked."""
    configured = get_context(request).settings.PUBLIC_BASE_URL
    return configured.rstrip("/") if configured else str(request.base_url).rstrip("/")


def get_db(ctx: CtxDep) -> Database:
    return ctx.db


def get_app_settings(ctx: CtxDep) -> Settings:
    return ctx.settings


def get_store(ctx: CtxDep) -> ImageStore:
    return ctx.store


def get_maintenance(ctx: CtxDep) -> MaintenanceState:
    return ctx.maintenance


DbDep = Annotated[Database, Depends(get_db)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
StoreDep = Annotated[ImageStore, Depends(get_store)]
MaintenanceDep = Annotated[MaintenanceState, Depends(get_maintenance)]


async def get_optional_user(
    ctx: CtxDep, token: Annotated[str | None, Depends(oauth2_scheme)]
) -> UserInDB | None:
    if not token:
        return None
    user_id = decode_access_token(token, ctx.jwt_secret)
    if user_id is None:
        raise Unauthorized("invalid or expired token: log in again at /auth/login")
    user = await ctx.users.get(ctx.db, user_id)
    if user is None:
        raise Unauthorized("the account for this token no longer exists")
    return user


async def get_current_user(
    user: Annotated[UserInDB | None, Depends(get_optional_user)],
) -> UserInDB:
    if user is None:
        raise Unauthorized()
    return user


CurrentUser = Annotated[UserInDB, Depends(get_current_user)]
OptionalUser = Annotated[UserInDB | None, Depends(get_optional_user)]
