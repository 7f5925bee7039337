from __future__ import annotations

import re
from typing import Annotated

from pydantic import EmailStr, Field, StrictStr, StringConstraints, field_validator

from paletai.core.schemas import RequestModel, ResponseModel
from paletai.users.schemas import UserPublic

_USERNAME = re.compile(r"^[A-Za-z0-9_.-]{3,32}$")

# A password is used exactly as typed: never stripped (spaces are characters like any other).
Password = Annotated[StrictStr, StringConstraints(strip_whitespace=False)]


class UserRegister(RequestModel):
    email: EmailStr = Field(max_length=254)
    password: Password = Field(min_length=8, max_length=256)
    # The pattern is in the schema for clients; the validator keeps the friendlier message.
    username: StrictStr | None = Field(
        default=None, min_length=3, max_length=32, json_schema_extra={"pattern": _USERNAME.pattern}
    )

    @field_validator("password")
    @classmethod
    def _password_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("choose a password that is not only spaces")
        return value

    @field_validator("username")
    @classmethod
    def _username_chars(cls, value: str | None) -> str | None:
        if value is not None and not _USERNAME.match(value):
            raise ValueError("use 3-32 letters, digits, '_', '.' or '-'")
        return value


class LoginRequest(RequestModel):
    email: StrictStr = Field(min_length=1, max_length=254)
    password: Password = Field(min_length=1, max_length=256)


class Token(ResponseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


class RegisterResponse(ResponseModel):
    user: UserPublic
    access_token: str
    token_type: str = "bearer"
    expires_in: int
