"""Base classes for request and response models."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class RequestModel(BaseModel):
    """Strict request bodies: an operator object such as {"$ne": null} where a string belongs is a
    422, never a query; unknown fields are refused so typos are visible."""

    model_config = ConfigDict(strict=True, extra="forbid", str_strip_whitespace=True)


class ResponseModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    """Every error answer: `{"error": {"code", "message"}}`."""

    error: ErrorDetail


class ValidationErrorResponse(ErrorResponse):
    """A 422: the error shape plus FastAPI's per-field `detail`."""

    detail: list[dict[str, Any]] = []
