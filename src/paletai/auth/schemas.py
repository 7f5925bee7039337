from __future__ import annotations

import re

from pydantic import EmailStr, Field, StrictStr, field_validator

from paletai.core.schemas import RequestModel, ResponseModel
from paletai.users.schemas import UserPublic

_USERNAME = re.compile(r"^[A-Za-z0-9_.-]{3,32}$")


class UserRegister(RequestModel):
    email: EmailStr = Field(max_length=254)
    password: StrictStr = Field(min_length=8, max_length=256)
    # The pattern is in the schema for clients; the validator keeps the friendlier message.
    username: StrictStr | None = Field(
        default=None, min_length=3, max_length=32, json_schema_extra={"pattern": _USERNAME.pattern}
    )

    @field_validator("username")
    @classmethod
    def _username_chars(cls, value: str | None) -> str | None:
        if value is not None and not _USERNAME.match(value):
            raise ValueError("use 3-32 letters, digits, '_', '.' or '-'")
        return value


class LoginRequest(RequestModel):
    email: StrictStr = Field(min_length=1, max_length=254)
    password: StrictStr = Field(min_length=1, max_length=256)


class Token(ResponseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


class RegisterResponse(ResponseModel):
    user: UserPublic
    access_token: str
    token_type: str = "bearer"
    expires_in: int
