"""What the pages and the API show of stored analyses: figures of one view, comparisons, method listings."""

from __future__ import annotations

from typing import Any

from app.errors import InvalidInput
from app.figures import figure_builder, figure_encoding
from app.figures.attribution import stacked_controls, stacked_figures
from app.figures.compare import compare_controls, compare_figure
from app.methods import METHODS
from app.methods.base import Method
from app.store.analyses import AnalysisStore, StoredAnalysis

MAX_COMPARED = 8


def method_json(method: Method) -> dict[str, Any]:
    """A method as /api/methods lists it (and the pages' forms read it)."""
    return {
        "name": method.name,
        "kind": method.kind,
        "version": method.version,
        "title": method.title,
        "citation": method.citation,
        "summary": method.summary,
        "requires": method.requires,
        "needs_target": method.requires == "target",
        "batchable": method.batchable,
        "description": (type(method).__doc__ or "").strip(),
        "params_schema": method.Params.model_json_schema(),
    }


def with_defaults(controls: list[dict], view: dict[str, str]) -> dict[str, str]:
    """The view with every control the request left out set to its default."""
    return {**{control["name"]: str(control["value"]) for control in controls}, **view}


def analysis_figures(analysis: StoredAnalysis, view: dict[str, str]) -> dict[str, Any]:
    """Controls and figures of one view of a stored analysis."""
    method = METHODS[analysis.method]
    builder = figure_builder(method.result_type.__name__, method.title)
    encoding = figure_encoding(analysis.encoding, analysis.text, analysis.text_pair)
    controls = builder.controls(analysis.tokens, encoding, analysis.result)
    return {
        "controls": controls,
        "figures": builder.figures(analysis.tokens, encoding, analysis.result, with_defaults(controls, view)),
    }


def compared_analyses(ids: str, store: AnalysisStore) -> list[StoredAnalysis]:
    """2 to 8 stored analyses of one kind (mixing or attribution) of the same input by the same weights."""
    wanted = [part for part in ids.split(",") if part]
    if not 2 <= len(wanted) <= MAX_COMPARED:
        raise InvalidInput(f"Compare needs 2 to {MAX_COMPARED} analysis ids separated by commas.")
    analyses = [store.get(analysis_id) for analysis_id in wanted]
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


def compare_figures(analyses: list[StoredAnalysis], view: dict[str, str]) -> dict[str, Any]:
    """Analyses of one sentence side by side: mixing matrices (``scale=shared|own``, ``view``, ``layer``) or
    attribution methods stacked with their rank agreement (``merge``, ``hide_special``)."""
    entries = [(a.method, a.result) for a in analyses]
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
