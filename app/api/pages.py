"""HTML pages (Jinja2): the sentence page, permalinks, About and the section pages."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.templating import Jinja2Templates

from app import __version__
from app.api.admin import admin_mode
from app.api.assets import PLOTLY_JS, asset_dir
from app.api.deps import get_runner
from app.api.routes import analysis_figures, compared_analyses, get_compare_figure, model_targets
from app.errors import NotFound
from app.jobs.registry import ATTRIBUTION_METHODS, MIXING_METHODS
from app.methods import METHODS
from app.methods.evaluation.mixing_faithfulness import RANDOM
from app.methods.neurons.index import num_units

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(asset_dir("templates")))
templates.env.globals["version"] = __version__

NAV = [
    ("/", "Sentence"),
    ("/neurons", "Neurons"),
    ("/probes", "Probes"),
    ("/evaluations", "Evaluations"),
    ("/about", "About"),
]


def render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    """Render a page with the navigation and the loaded model's name."""
    runner = request.app.state.runner
    base = {
        "nav": NAV,
        "path": request.url.path,
        "model": runner.loaded.describe() if runner else None,
        "admin": admin_mode(request.app.state.settings),
    }
    return templates.TemplateResponse(request, name, {**base, **context}, status_code=status)


def error_page(request: Request, status: int, code: str, message: str) -> HTMLResponse:
    return render(request, "error.html", {"status": status, "code": code, "message": message}, status)


def _method_choices() -> list[dict[str, Any]]:
    return [
        {
            "name": m.name,
            "title": m.title,
            "kind": m.kind,
            "citation": m.citation,
            "needs_target": m.needs_target,
            "params_schema": m.Params.model_json_schema(),
        }
        for m in METHODS.values()
    ]


def _sentence_spec(request: Request, analysis_id: str | None) -> dict[str, Any]:
    runner = get_runner(request)
    spec: dict[str, Any] = {
        "methods": _method_choices(),
        "targets": model_targets(runner),
        "analysis": None,
    }
    if analysis_id is None:
        return spec
    analysis = runner.store.get(analysis_id)
    view = dict(request.query_params)
    spec["analysis"] = {
        "id": analysis.id,
        "url": analysis.url,
        "method": analysis.method,
        "text": analysis.text,
        "text_pair": analysis.text_pair,
        "params": analysis.params,
        "target": analysis.target,
        "model": analysis.model,
        "created_at": analysis.created_at.strftime("%Y-%m-%d %H:%M UTC"),
        "n_tokens": len(analysis.tokens),
    }
    answer = analysis_figures(analysis, view)
    spec["controls"], spec["figures"], spec["view"] = answer["controls"], answer["figures"], view
    return spec


@router.get("/", response_class=HTMLResponse)
def sentence_page(request: Request) -> HTMLResponse:
    return render(request, "sentence.html", {"spec": _sentence_spec(request, None), "analysis": None})


@router.get("/a/{analysis_id}", response_class=HTMLResponse)
def analysis_page(analysis_id: str, request: Request) -> HTMLResponse:
    """The share link: reopens a stored analysis exactly, view controls included (query string)."""
    spec = _sentence_spec(request, analysis_id)
    return render(request, "sentence.html", {"spec": spec, "analysis": spec["analysis"]})


@router.get("/compare/{ids}", response_class=HTMLResponse)
def compare_page(ids: str, request: Request) -> HTMLResponse:
    """Mixing methods side by side for one sentence; the link reopens the same view."""
    runner = get_runner(request)
    analyses = compared_analyses(ids, runner)
    answer = get_compare_figure(ids, request, runner)
    first = analyses[0]
    spec = {
        "page": "compare",
        "url": f"/compare/{ids}",
        "figure_url": f"/api/compare/{ids}/figure",
        "controls": answer["controls"],
        "figures": answer["figures"],
        "analyses": [{"id": a.id, "method": a.method, "url": a.url} for a in analyses],
    }
    kind = METHODS[first.method].kind
    heading = (
        "Token attribution, methods compared" if kind == "attribution" else "Context mixing side by side"
    )
    context = {
        "spec": spec,
        "text": first.text,
        "text_pair": first.text_pair,
        "analyses": spec["analyses"],
        "heading": heading,
    }
    return render(request, "compare.html", context)


@router.get("/about", response_class=HTMLResponse)
def about_page(request: Request) -> HTMLResponse:
    runner = get_runner(request)
    return render(request, "about.html", {"methods": _method_choices(), "targets": model_targets(runner)})


PROBE_EXAMPLES = 6


@router.get("/neurons", response_class=HTMLResponse)
def neurons_page(request: Request) -> HTMLResponse:
    """Browse neurons: search descriptors, filter by layer and label, sort, page through 40k neurons."""
    runner = get_runner(request)
    return render(request, "neurons.html", {"spec": {"page": "neurons", "layers": runner.loaded.num_layers}})


@router.get("/neurons/{layer}/{unit}", response_class=HTMLResponse)
def neuron_view(layer: int, unit: int, request: Request) -> HTMLResponse:
    """One neuron: descriptors, exemplars and histograms per corpus side by side, consistency."""
    runner = get_runner(request)
    layers, units = runner.loaded.num_layers, num_units(runner.loaded)
    if not (0 <= layer < layers and 0 <= unit < units):
        raise NotFound(
            f"No neuron {layer}/{unit}: the loaded model has layers 0-{layers - 1} and units 0-{units - 1}."
        )
    return render(request, "neuron.html", {"spec": {"page": "neuron", "layer": layer, "unit": unit}})


@router.get("/probes", response_class=HTMLResponse)
def probes_page(request: Request) -> HTMLResponse:
    """Train probe sets as jobs, plot per-layer metrics and topological curves, draw a sentence's tree."""
    runner = get_runner(request)
    sets = runner.probes.for_revision(runner.loaded.revision)
    examples = runner.treebanks.examples(sets[0], PROBE_EXAMPLES) if sets else []
    return render(request, "probes.html", {"spec": {"page": "probes", "examples": examples}})


@router.get("/evaluations", response_class=HTMLResponse)
def evaluations_page(request: Request) -> HTMLResponse:
    """Start faithfulness evaluations as jobs, follow their progress, plot stored results."""
    runner = get_runner(request)
    spec = {
        "page": "evaluations",
        "methods": [*MIXING_METHODS, RANDOM],
        "attribution_methods": [*ATTRIBUTION_METHODS, RANDOM],
        "degradation_defaults": ["iba", "integrated_gradients", "lime", "occlusion", RANDOM],
        "heads": [head.describe() for head in runner.heads.for_revision(runner.loaded.revision)],
    }
    return render(request, "evaluations.html", {"spec": spec})


@router.get("/vendor/plotly.min.js")
def plotly_js() -> FileResponse:
    """Plotly.js from the installed ``plotly`` package: the dashboard never needs a CDN."""
    return FileResponse(PLOTLY_JS, media_type="text/javascript")
