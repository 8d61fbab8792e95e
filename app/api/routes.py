"""JSON API routes: parse, call the runner, answer. No tensor code here."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from app.api.deps import use_runner
from app.api.responses import NumpyJSONResponse
from app.errors import InvalidInput, NotFound, StoreUnavailable
from app.figures import figure_builder, figure_encoding
from app.figures.attribution import randomisation_figure, stacked_controls, stacked_figures
from app.figures.compare import compare_controls, compare_figure
from app.methods import METHODS
from app.methods.base import Method
from app.modeling.targets import available_targets
from app.services.runner import AnalysisRequest, Runner, analysis_json
from app.store.analyses import StoredAnalysis
from app.store.db import check_connection

router = APIRouter(prefix="/api", tags=["api"])


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


# 400: a body that cannot be read at all (e.g. not UTF-8)
ERRORS = {status: {"model": ErrorBody} for status in (400, 404, 413, 422, 503)}


def method_json(method: Method) -> dict[str, Any]:
    """A method as /api/methods lists it."""
    return {
        "name": method.name,
        "kind": method.kind,
        "version": method.version,
        "title": method.title,
        "citation": method.citation,
        "needs_target": method.needs_target,
        "batchable": getattr(method, "batchable", False),
        "description": (type(method).__doc__ or "").strip(),
        "params_schema": method.Params.model_json_schema(),
    }


@router.get("/health", responses={503: {"description": "Model still loading, or database unreachable."}})
def health(request: Request) -> dict[str, Any]:
    """Liveness, the loaded model's identity and whether the database answers: 503 while the model loads
    (``status: loading``) or while the database cannot be reached (``status: degraded``), so load
    balancers and the container healthcheck take the replica out until it can serve again."""
    runner: Runner | None = request.app.state.runner
    if runner is None:
        return NumpyJSONResponse({"status": "loading", "model": None, "database": None}, status_code=503)
    body = {"status": "ok", "model": runner.loaded.describe(), "database": "ok"}
    try:
        check_connection(runner.store.engine)
    except StoreUnavailable as exc:
        body.update(status="degraded", database="unavailable", message=exc.message)
        return NumpyJSONResponse(body, status_code=503)
    return body


@router.get("/model", responses=ERRORS)
def model_info(runner: Runner = Depends(use_runner)) -> dict[str, Any]:
    """Name, revision (weights hash), architecture, sizes, device, dtype and the targets it supports."""
    return {
        **runner.loaded.describe(),
        "max_tokens": runner.max_tokens,
        "targets": model_targets(runner),
        "batching": runner.batching(),
    }


def model_targets(runner: Runner) -> list[dict[str, Any]]:
    """The loaded model's targets, plus fitted heads when there are any."""
    targets = available_targets(runner.loaded)
    heads = runner.heads.for_revision(runner.loaded.revision)
    if heads:
        targets.append({"kind": "head", "heads": [head.describe() for head in heads]})
    return targets


@router.get("/heads")
def list_heads(runner: Runner = Depends(use_runner)) -> list[dict[str, Any]]:
    """Heads fitted on the loaded weights (fit one with ``bertscope heads fit`` or a ``fit_head`` job)."""
    return [head.describe() for head in runner.heads.for_revision(runner.loaded.revision)]


@router.get("/heads/{key}", responses=ERRORS)
def get_head(key: str, runner: Runner = Depends(use_runner)) -> dict[str, Any]:
    """One fitted head (by id or name) with its labels and held-out accuracy."""
    return runner.find_head(key).describe()


@router.get("/methods")
def list_methods() -> list[dict[str, Any]]:
    """Every registered method with its kind and the JSON schema of its params."""
    return [method_json(method) for method in METHODS.values()]


@router.get("/methods/{name}", responses=ERRORS)
def get_method_info(name: str) -> dict[str, Any]:
    """One method's description and params schema."""
    if name not in METHODS:
        raise NotFound(f"Unknown method {name!r}. Valid methods: {', '.join(sorted(METHODS))}.")
    return method_json(METHODS[name])


@router.post("/analyses", status_code=201, responses={201: {"model": AnalysisOut}, **ERRORS})
def create_analysis(
    body: AnalysisRequest,
    runner: Runner = Depends(use_runner),
    include_result: bool = Query(True, description="false: leave out `result` (large for long inputs)."),
) -> NumpyJSONResponse:
    """Run a method on a text (or sentence pair) and store it; identical requests come from the cache."""
    analysis, cached = runner.analyze(body)
    answer = analysis_json(analysis, cached=cached)
    if not include_result:
        answer.pop("result")
    return NumpyJSONResponse(answer, status_code=201)


@router.get("/analyses/{analysis_id}", responses={200: {"model": AnalysisOut}, **ERRORS})
def get_analysis(analysis_id: str, runner: Runner = Depends(use_runner)) -> NumpyJSONResponse:
    """A stored analysis by id, exactly as it was returned when created."""
    return NumpyJSONResponse(analysis_json(runner.store.get(analysis_id)))


@router.get("/analyses/{analysis_id}/figure", responses=ERRORS)
def get_figure(analysis_id: str, request: Request, runner: Runner = Depends(use_runner)) -> dict[str, Any]:
    """The Plotly figures for one view of a stored analysis (``main``, and ``strip`` when a ``row`` is
    chosen); view controls are query parameters."""
    return analysis_figures(runner.store.get(analysis_id), dict(request.query_params))


def analysis_figures(analysis: StoredAnalysis, view: dict[str, str]) -> dict[str, Any]:
    """Controls and figures of one view of a stored analysis."""
    builder = figure_builder(analysis.method)
    encoding = figure_encoding(analysis.encoding, analysis.text, analysis.text_pair)
    controls = builder.controls(analysis.tokens, encoding, analysis.result)
    return {
        "controls": controls,
        "figures": builder.figures(analysis.tokens, encoding, analysis.result, with_defaults(controls, view)),
    }


def with_defaults(controls: list[dict], view: dict[str, str]) -> dict[str, str]:
    """The view with every control the request left out set to its default."""
    return {**{control["name"]: str(control["value"]) for control in controls}, **view}


@router.post("/analyses/{analysis_id}/randomisation", responses=ERRORS)
def randomisation(analysis_id: str, runner: Runner = Depends(use_runner)) -> dict[str, Any]:
    """Model-parameter randomisation test (Adebayo et al. 2018) of a stored attribution, on demand."""
    analysis = runner.store.get(analysis_id)
    rows = runner.randomisation(analysis)
    return {"figure": randomisation_figure(analysis.method, rows), "result": rows}


MAX_COMPARED = 8


def compared_analyses(ids: str, runner: Runner) -> list[StoredAnalysis]:
    """2 to 8 stored analyses of one kind (mixing or attribution) of the same input by the same weights."""
    wanted = [part for part in ids.split(",") if part]
    if not 2 <= len(wanted) <= MAX_COMPARED:
        raise InvalidInput(f"Compare needs 2 to {MAX_COMPARED} analysis ids separated by commas.")
    analyses = [runner.store.get(analysis_id) for analysis_id in wanted]
    first = analyses[0]
    kinds = {METHODS[a.method].kind if a.method in METHODS else None for a in analyses}
    if len(kinds) != 1 or not kinds <= {"mixing", "attribution"}:
        raise InvalidInput(
            "Compare needs analyses of one kind: all context mixing, or all token attribution."
        )
    for analysis in analyses:
        same_input = (analysis.tokens, analysis.text_pair) == (first.tokens, first.text_pair)
        if not same_input or analysis.model["revision"] != first.model["revision"]:
            raise InvalidInput("Compared analyses must be of the same sentence by the same model weights.")
        if analysis.target != first.target:
            raise InvalidInput("Compared attributions must explain the same target.")
    return analyses


@router.get("/compare/{ids}/figure", responses=ERRORS)
def get_compare_figure(ids: str, request: Request, runner: Runner = Depends(use_runner)) -> dict[str, Any]:
    """Analyses of one sentence side by side: mixing matrices (``scale=shared|own``, ``view``, ``layer``) or
    attribution methods stacked with their rank agreement (``merge``, ``hide_special``)."""
    analyses = compared_analyses(ids, runner)
    entries = [(a.method, a.result) for a in analyses]
    view = dict(request.query_params)
    first = analyses[0]
    if METHODS[first.method].kind == "attribution":
        encoding = figure_encoding(first.encoding, first.text, first.text_pair)
        controls = stacked_controls()
        figures = stacked_figures(entries, first.tokens, encoding, with_defaults(controls, view))
        return {"controls": controls, "figures": figures}
    layers = min(len(a.result["layers"]) for a in analyses)
    return {
        "controls": compare_controls(layers),
        "figures": {"main": compare_figure(entries, first.tokens, first.encoding, view, layers)},
    }
