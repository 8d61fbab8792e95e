"""HTML pages (Jinja2): the sentence page, permalinks, About and the section pages."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.templating import Jinja2Templates

from app import __version__
from app.api.admin import admin_mode
from app.api.assets import PLOTLY_JS, asset_dir
from app.api.deps import get_services
from app.data import shipped_data
from app.errors import NotFound, StoreUnavailable
from app.jobs.registry import JOBS
from app.methods import METHODS
from app.services.analysis_views import analysis_figures, compare_figures, compared_analyses, method_json
from app.services.availability import availability_now
from app.services.unit_bases import browsable_bases, find_dictionary

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(asset_dir("templates")))
templates.env.globals["version"] = __version__
# page specs keep their key order: forms list a params schema's fields in the order the model declares them
templates.env.policies["json.dumps_kwargs"] = {"sort_keys": False}

NAV = [
    ("/", "Sentence"),
    ("/neurons", "Neurons"),
    ("/probes", "Probes"),
    ("/evaluations", "Evaluations"),
    ("/about", "About"),
]


def render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    """Render a page with the navigation and the loaded model's name."""
    services = request.app.state.services
    base = {
        "nav": NAV,
        "path": request.url.path,
        "model": services.runner.describe_model() if services else None,
        "admin": admin_mode(request.app.state.settings),
    }
    return templates.TemplateResponse(request, name, {**base, **context}, status_code=status)


def error_page(request: Request, status: int, code: str, message: str) -> HTMLResponse:
    return render(request, "error.html", {"status": status, "code": code, "message": message}, status)


def job_forms(*kinds: str) -> dict[str, dict[str, Any]]:
    """The JSON schema of each job's params, keyed by kind: the page renders each job's form from it
    (``frontend/src/jobform.js``), as ``GET /api/jobs/kinds`` lists them."""
    return {kind: JOBS[kind].Params.model_json_schema() for kind in kinds}


def _method_choices() -> list[dict[str, Any]]:
    return [method_json(method) for method in METHODS.values()]


# The Sentence page's examples: one click fills the input and runs the first available of ``methods``
# (else the method picked). ``look_for``: what the example shows, in one line.
SENTENCE_EXAMPLES: list[dict[str, Any]] = [
    {
        "label": "Sentiment",
        "text": "The plot was thin, but the acting was wonderful and I loved every minute of it.",
        "text_pair": None,
        "methods": ["integrated_gradients"],
        "look_for": "Which words push the prediction towards positive, and does 'but' flip the weight?",
    },
    {
        "label": "Agreement over a distractor",
        "text": "The keys to the old cabinet are on the table.",
        "text_pair": None,
        "methods": ["value_zeroing"],
        "look_for": "Does 'are' draw on its subject 'keys' rather than the nearer 'cabinet'?",
    },
    {
        "label": "Garden path",
        "text": "The horse raced past the barn fell.",
        "text_pair": None,
        "methods": ["structural_probe", "alti"],
        "look_for": "A reduced relative clause: is 'fell', not 'raced', the main verb of the tree?",
    },
    {
        "label": "Object relative clause",
        "text": "The reporter who the senator attacked admitted the error.",
        "text_pair": None,
        "methods": ["alti"],
        "look_for": "Does 'admitted' mix in 'reporter' across the clause in between?",
    },
    {
        "label": "Sentence pair",
        "text": "A man is playing a guitar on stage.",
        "text_pair": "Someone is performing music.",
        "methods": ["value_zeroing"],
        "look_for": "How much each sentence takes from the other: the blocks off the diagonal.",
    },
]


def _sentence_spec(request: Request, analysis_id: str | None) -> dict[str, Any]:
    services = get_services(request)
    targets = services.analyses.targets()
    kinds = [target["kind"] for target in targets if target["kind"] != "head"]
    spec: dict[str, Any] = {
        "page": "sentence",
        "methods": _method_choices(),
        "targets": targets,
        "examples": SENTENCE_EXAMPLES,
        "availability": availability_now(services, kinds),
        "analysis": None,
    }
    if analysis_id is None:
        return spec
    analysis = services.stores.analyses.get(analysis_id)
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
    analyses = compared_analyses(ids, get_services(request).stores.analyses)
    answer = compare_figures(analyses, dict(request.query_params))
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
    services = get_services(request)
    context = {
        "methods": _method_choices(),
        "targets": services.analyses.targets(),
        "shipped": shipped_data(),
    }
    return render(request, "about.html", context)


PROBE_EXAMPLES = 6


@router.get("/neurons", response_class=HTMLResponse)
def neurons_page(request: Request) -> HTMLResponse:
    """Browse neurons, a dictionary's features or random directions: search descriptors, filter by layer
    and label, sort, page through tens of thousands of units."""
    services = get_services(request)
    layers = services.runner.num_layers
    spec = {
        "page": "neurons",
        "layers": layers,
        "jobs": job_forms("index_neurons", "train_dictionary", "index_features"),
        "bases": [{"key": "neurons", "label": "neurons (FFN, every layer)"}],
    }
    try:  # the page itself works without the database (its data comes through the API)
        revision = services.runner.revision
        dictionaries: list[dict[str, Any]] | None = services.stores.dictionaries.descriptions(revision)
        spec["bases"] = browsable_bases(services.stores, revision)
    except StoreUnavailable:
        dictionaries = None
    return render(request, "neurons.html", {"spec": spec, "dictionaries": dictionaries})


@router.get("/neurons/{layer}/{unit}", response_class=HTMLResponse)
def neuron_view(layer: int, unit: int, request: Request) -> HTMLResponse:
    """One neuron: descriptors, exemplars and histograms per corpus side by side, consistency."""
    runner = get_services(request).runner
    layers, units = runner.num_layers, runner.num_units
    if not (0 <= layer < layers and 0 <= unit < units):
        raise NotFound(
            f"No neuron {layer}/{unit}: the loaded model has layers 0-{layers - 1} and units 0-{units - 1}."
        )
    return render(request, "neuron.html", {"spec": {"page": "neuron", "layer": layer, "unit": unit}})


@router.get("/features/{dictionary_id}/{feature}", response_class=HTMLResponse)
def feature_view(dictionary_id: str, feature: int, request: Request) -> HTMLResponse:
    """One feature of a dictionary: the neuron page's evidence, plus its decoder direction's neighbours."""
    services = get_services(request)
    spec: dict[str, Any] = {"page": "feature", "dictionary": dictionary_id, "unit": feature, "layer": None}
    try:
        dictionary = find_dictionary(services.stores, services.runner.revision, dictionary_id)
    except StoreUnavailable:
        dictionary = None  # the page still opens; its data comes through the API, which says what is wrong
    if dictionary is not None:
        if not 0 <= feature < dictionary["width"]:
            raise NotFound(f"Dictionary {dictionary['name']!r} has features 0-{dictionary['width'] - 1}.")
        spec |= {"layer": dictionary["layer"], "name": dictionary["name"], "site": dictionary["site"]}
    return render(request, "feature.html", {"spec": spec})


@router.get("/probes", response_class=HTMLResponse)
def probes_page(request: Request) -> HTMLResponse:
    """Train probe sets as jobs, plot per-layer metrics and topological curves, draw a sentence's tree."""
    services = get_services(request)
    sets = services.stores.probes.list_for_revision(services.runner.revision)
    examples = services.analyses.treebanks.examples(sets[0], PROBE_EXAMPLES) if sets else []
    spec = {"page": "probes", "examples": examples, "jobs": job_forms("train_probes")}
    return render(request, "probes.html", {"spec": spec})


@router.get("/evaluations", response_class=HTMLResponse)
def evaluations_page(request: Request) -> HTMLResponse:
    """Start faithfulness evaluations as jobs, follow their progress, plot stored results."""
    services = get_services(request)
    heads = services.stores.heads.list_for_revision(services.runner.revision)
    spec = {
        "page": "evaluations",
        "jobs": job_forms(
            "eval_degradation", "eval_mixing", "eval_neurons", "fit_head", "finetune_classifier", "load_model"
        ),
        "heads": [head.describe() for head in heads],
    }
    return render(request, "evaluations.html", {"spec": spec})


@router.get("/vendor/plotly.min.js")
def plotly_js() -> FileResponse:
    """Plotly.js from the installed ``plotly`` package: the dashboard never needs a CDN."""
    return FileResponse(PLOTLY_JS, media_type="text/javascript")
