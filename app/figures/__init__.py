"""Pure functions from stored results to Plotly figure dicts (no torch here).

Each entry of ``FIGURES``, keyed by result type, says which view controls a method's page shows
(``controls``) and draws the figure for one choice of those controls (``figures``).
"""

from __future__ import annotations

from collections.abc import Callable

from app.errors import NotFound
from app.figures.attention import AttentionFigure
from app.figures.attribution import AttributionFigure
from app.figures.base import FigureBuilder
from app.figures.mixing import MixingFigure
from app.figures.parse_tree import ProbeFigure

# one builder per result type (the name of a method's ``result_type``); the title is the method's own
FIGURES: dict[str, Callable[[str], FigureBuilder]] = {
    "AttentionResult": AttentionFigure,
    "MixingResult": MixingFigure,
    "AttributionResult": AttributionFigure,
    "StructuralProbeResult": ProbeFigure,
}


def figure_builder(result_type: str, title: str) -> FigureBuilder:
    """The figure builder for results of ``result_type``, titled ``title`` (the method's title)."""
    try:
        return FIGURES[result_type](title)
    except KeyError:
        raise NotFound(f"No figure is defined for results of type {result_type!r}.") from None


def figure_encoding(encoding: dict, text: str, text_pair: str | None) -> dict:
    """The stored encoding plus the texts, so word-level views can label merged words."""
    return {**encoding, "texts": [text, text_pair]}
