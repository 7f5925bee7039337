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
from paletai.core.network import client_address
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
    return client_address(request, request.app.state.ctx.settings.FORWARDED_ALLOW_IPS)


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


_BUSY = "every password-hashing slot is busy; retry after Retry-After seconds"


@router.post(
    "/register",
    response_model=RegisterResponse,
    responses=error_responses(
        {
            409: "the email, or the username (ignoring case), is taken",
            429: "too many registrations from this address or in total (see Retry-After)",
            503: _BUSY,
        },
        422,
    ),
)
async def register(body: UserRegister, request: Request, ctx: CtxDep) -> RegisterResponse:
    """Create an account and return an access token. The password is used exactly as typed."""
    user = await service.register(
        ctx, str(body.email), body.password, body.username, client_ip(request)
    )
    token, expires_in = service.issue_token(user, ctx)
    return RegisterResponse(
        user=UserPublic.model_validate(user), access_token=token, expires_in=expires_in
    )


@router.post(
    "/login",
    response_model=Token,
    openapi_extra=_LOGIN_BODY,
    responses=error_responses(
        {
            401: "wrong email or password",
            429: "too many failures for this account from this address, or from this address",
            503: _BUSY,
        },
        422,
    ),
)
async def login(request: Request, ctx: CtxDep) -> Token:
    """Log in with JSON `{email, password}` or an OAuth2 password form (`username` = email).

    Repeated failures for one account from one address, or from one address, answer 429 for a
    while; many failures for one account from many addresses only slow its logins down.
    """
    body = await _read_login(request)
    user = await service.authenticate(ctx, body.email, body.password, client_ip(request))
    token, expires_in = service.issue_token(user, ctx)
    return Token(access_token=token, expires_in=expires_in)


@router.get("/me", response_model=UserMe, responses=error_responses(401))
async def me(user: CurrentUser, ctx: CtxDep) -> UserMe:
    """The current user, with the prompts left today."""
    return await user_me(ctx.db, ctx.settings, user)
