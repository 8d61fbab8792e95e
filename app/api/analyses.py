"""Analyses API: the method registry, running and reading analyses, their figures, comparisons."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from app.api.deps import use_services
from app.api.responses import NumpyJSONResponse
from app.api.schemas import ERRORS, AnalysisOut
from app.errors import NotFound
from app.figures.attribution import randomisation_figure
from app.methods import METHODS
from app.services.analyses import AnalysisRequest, analysis_json
from app.services.analysis_views import analysis_figures, compare_figures, compared_analyses, method_json
from app.services.availability import availability_now
from app.services.container import Services

router = APIRouter(prefix="/api", tags=["api"])


@router.get("/methods")
def list_methods() -> list[dict[str, Any]]:
    """Every registered method with its kind and the JSON schema of its params."""
    return [method_json(method) for method in METHODS.values()]


@router.get("/availability", responses=ERRORS)
def method_availability(services: Services = Depends(use_services)) -> dict[str, Any]:
    """Which methods (and whether a fitted-head target) can run now on the loaded model. For each that
    cannot: ``reason``, ``hint`` (what to do) and ``job``, the queued or running job that will make it
    available (``train_probes``, ``fit_head``) with its ``progress`` and ``eta_s``; ``counts`` of probe sets
    and heads. The Sentence page polls it."""
    return availability_now(services)


@router.get("/methods/{name}", responses=ERRORS)
def get_method_info(name: str) -> dict[str, Any]:
    """One method's description and params schema."""
    if name not in METHODS:
        raise NotFound(f"Unknown method {name!r}. Valid methods: {', '.join(sorted(METHODS))}.")
    return method_json(METHODS[name])


@router.post(
    "/analyses", status_code=201, responses={201: {"model": AnalysisOut}, **ERRORS, 429: ERRORS[422]}
)
def create_analysis(
    body: AnalysisRequest,
    services: Services = Depends(use_services),
    include_result: bool = Query(True, description="false: leave out `result` (large for long inputs)."),
) -> NumpyJSONResponse:
    """Run a method on a text (or sentence pair) and store it; identical requests come from the cache."""
    analysis, cached = services.analyses.analyze(body)
    answer = analysis_json(analysis, cached=cached)
    if not include_result:
        answer.pop("result")
    return NumpyJSONResponse(answer, status_code=201)


@router.get("/analyses/{analysis_id}", responses={200: {"model": AnalysisOut}, **ERRORS})
def get_analysis(analysis_id: str, services: Services = Depends(use_services)) -> NumpyJSONResponse:
    """A stored analysis by id, exactly as it was returned when created."""
    return NumpyJSONResponse(analysis_json(services.stores.analyses.get(analysis_id)))


@router.get("/analyses/{analysis_id}/figure", responses=ERRORS)
def get_figure(
    analysis_id: str, request: Request, services: Services = Depends(use_services)
) -> dict[str, Any]:
    """The Plotly figures for one view of a stored analysis (``main``, and ``strip`` when a ``row`` is
    chosen); view controls are query parameters."""
    return analysis_figures(services.stores.analyses.get(analysis_id), dict(request.query_params))


@router.post("/analyses/{analysis_id}/randomisation", responses=ERRORS)
def randomisation(analysis_id: str, services: Services = Depends(use_services)) -> dict[str, Any]:
    """Model-parameter randomisation test (Adebayo et al. 2018) of a stored attribution, on demand."""
    analysis = services.stores.analyses.get(analysis_id)
    rows = services.analyses.randomisation(analysis)
    return {"figure": randomisation_figure(analysis.method, rows), "result": rows}


@router.get("/compare/{ids}/figure", responses=ERRORS)
def get_compare_figure(
    ids: str, request: Request, services: Services = Depends(use_services)
) -> dict[str, Any]:
    """Analyses of one sentence side by side: mixing matrices (``scale=shared|own``, ``view``, ``layer``) or
    attribution methods stacked with their rank agreement (``merge``, ``hide_special``)."""
    analyses = compared_analyses(ids, services.stores.analyses)
    return compare_figures(analyses, dict(request.query_params))
