"""Model API: health, the loaded model's identity and targets, fitted heads."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from app.api.deps import use_services
from app.api.responses import NumpyJSONResponse
from app.api.schemas import ERRORS
from app.errors import StoreUnavailable
from app.services.container import Services
from app.store.db import check_connection

router = APIRouter(prefix="/api", tags=["api"])


@router.get("/health", responses={503: {"description": "Model still loading, or database unreachable."}})
def health(request: Request) -> dict[str, Any]:
    """Liveness, the loaded model's identity and whether the database answers: 503 while the model loads
    (``status: loading``) or while the database cannot be reached (``status: degraded``), so load
    balancers and the container healthcheck take the replica out until it can serve again."""
    services: Services | None = request.app.state.services
    if services is None:
        return NumpyJSONResponse({"status": "loading", "model": None, "database": None}, status_code=503)
    body = {"status": "ok", "model": services.runner.describe_model(), "database": "ok"}
    try:
        check_connection(services.stores.engine)
    except StoreUnavailable as exc:
        body.update(status="degraded", database="unavailable", message=exc.message)
        return NumpyJSONResponse(body, status_code=503)
    return body


@router.get("/model", responses=ERRORS)
def model_info(services: Services = Depends(use_services)) -> dict[str, Any]:
    """Name, revision (weights hash), architecture, sizes, device, dtype and the targets it supports."""
    runner = services.runner
    return {
        **runner.describe_model(),
        "max_tokens": runner.max_tokens,
        "targets": services.analyses.targets(),
        "batching": runner.batching(),
        "fair_share": runner.fair_share(),
    }


@router.get("/heads")
def list_heads(services: Services = Depends(use_services)) -> list[dict[str, Any]]:
    """Heads fitted on the loaded weights (fit one with ``bertscope heads fit`` or a ``fit_head`` job)."""
    return [head.describe() for head in services.stores.heads.list_for_revision(services.runner.revision)]


@router.get("/heads/{key}", responses=ERRORS)
def get_head(key: str, services: Services = Depends(use_services)) -> dict[str, Any]:
    """One fitted head (by id or name) with its labels and held-out accuracy."""
    return services.analyses.find_head(key).describe()
