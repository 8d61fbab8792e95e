"""Request and response schemas shared by the API's routes (they shape the OpenAPI document)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


class AnalysisOut(BaseModel):
    """A stored analysis. ``result`` is method-specific (see README, "Result JSON")."""

    id: str
    url: str
    method: str
    method_version: int
    model: dict[str, Any]
    text: str
    text_pair: str | None
    params: dict[str, Any]
    target: dict[str, Any] | None
    tokens: list[str]
    encoding: dict[str, Any]
    result: dict[str, Any] = Field(default_factory=dict, description="Left out with include_result=false.")
    created_at: str
    cached: bool | None = None


class JobRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str = Field(examples=["eval_mixing"])
    params: dict[str, Any] = Field(
        default_factory=dict, examples=[{"data": "../shared/data/sst2/dev.tsv", "limit": 200}]
    )


# 400: a body that cannot be read at all (e.g. not UTF-8)
ERRORS = {status: {"model": ErrorBody} for status in (400, 404, 413, 422, 503)}
ADMIN_ERRORS = {status: ERRORS[422] for status in (400, 401, 403, 404, 422, 503)}
