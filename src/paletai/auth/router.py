from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from paletai.auth import service
from paletai.auth.schemas import LoginRequest, RegisterResponse, Token, UserRegister
from paletai.core.deps import CtxDep, CurrentUser
from paletai.core.errors import AppError, error_responses
from paletai.users.schemas import UserMe, UserPublic
from paletai.users.service import user_me

router = APIRouter(prefix="/auth", tags=["auth"])

_LOGIN_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": LoginRequest.model_json_schema()},
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "required": ["username", "password"],
                    "properties": {
                        "username": {"type": "string", "description": "your email"},
                        "password": {"type": "string", "format": "password"},
                        "grant_type": {"type": "string", "enum": ["password"]},
                    },
                }
            },
        },
    }
}


def client_ip(request: Request) -> str:
    # App Service puts the client first in X-Forwarded-For (the port after a colon).
    forwarded = request.headers.get("x-forwarded-for")
    if forwarded:
        return forwarded.split(",")[0].strip().rsplit(":", 1)[0] or "unknown"
    return request.client.host if request.client else "unknown"


async def _read_login(request: Request) -> LoginRequest:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        if content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.form()
            email, password = form.get("username") or form.get("email"), form.get("password")
            return LoginRequest.model_validate(
                {"email": email if isinstance(email, str) else None, "password": password}
            )
        try:
            raw = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise AppError(
                "send JSON {email, password} or an OAuth2 form (username, password)",
                status_code=422,
                code="validation_error",
            ) from None
        return LoginRequest.model_validate(raw)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None


@router.post("/register", response_model=RegisterResponse, responses=error_responses(409, 422))
async def register(body: UserRegister, ctx: CtxDep) -> RegisterResponse:
    """Create an account and return an access token."""
    user = await service.register(ctx.db, str(body.email), body.password, body.username)
    token, expires_in = service.issue_token(user, ctx.jwt_secret, ctx.settings)
    return RegisterResponse(
        user=UserPublic.model_validate(user), access_token=token, expires_in=expires_in
    )


@router.post(
    "/login",
    response_model=Token,
    openapi_extra=_LOGIN_BODY,
    responses=error_responses(401, 422, 429),
)
async def login(request: Request, ctx: CtxDep) -> Token:
    """Log in with JSON `{email, password}` or an OAuth2 password form (`username` = email).

    Repeated failures for one email or one address answer 429 for a while.
    """
    body = await _read_login(request)
    user = await service.authenticate(
        ctx.db, ctx.settings, body.email, body.password, client_ip(request)
    )
    token, expires_in = service.issue_token(user, ctx.jwt_secret, ctx.settings)
    return Token(access_token=token, expires_in=expires_in)


@router.get("/me", response_model=UserMe, responses=error_responses(401))
async def me(user: CurrentUser, ctx: CtxDep) -> UserMe:
    """The current user, with the prompts left today."""
    return await user_me(ctx.db, ctx.settings, user)
