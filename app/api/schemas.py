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


class JobOut(BaseModel):
    """A job: what it runs, how far it is and, once done, what it made (``result_id``)."""

    id: str
    kind: str
    params: dict[str, Any]
    status: str = Field(description="queued, running, done, failed or cancelled.")
    progress: float = Field(description="0-1.")
    message: str
    result_id: str | None = Field(description="The evaluation, head, probe set or revision it made.")
    created_at: str
    updated_at: str
    started_at: str | None = Field(description="When it began running (null while queued).")
    eta_s: float | None = Field(
        description="Seconds left at the pace so far: elapsed x (1 - progress) / progress; null unless "
        "running with some progress."
    )
    owner: str | None = Field(description="The replica that runs it.")


class JobRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str = Field(examples=["eval_mixing"])
    params: dict[str, Any] = Field(
        default_factory=dict, examples=[{"data": "../shared/data/sst2/dev.tsv", "limit": 200}]
    )


# 400: a body that cannot be read at all (e.g. not UTF-8)
ERRORS = {status: {"model": ErrorBody} for status in (400, 404, 413, 422, 503)}
ADMIN_ERRORS = {status: ERRORS[422] for status in (400, 401, 403, 404, 422, 503)}
