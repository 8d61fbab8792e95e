"""Pure functions from stored results to Plotly figure dicts (no torch here).

Each entry of ``FIGURES`` says which view controls a method's page shows (``controls``) and draws the
figure for one choice of those controls (``figure``).
"""

from __future__ import annotations

from app.errors import NotFound
from app.figures.attention import AttentionFigure
from app.figures.base import FigureBuilder
from app.figures.mixing import MixingFigure

FIGURES: dict[str, FigureBuilder] = {
    "attention": AttentionFigure(),
    "value_zeroing": MixingFigure("Value Zeroing"),
    "attention_rollout": MixingFigure("Attention rollout"),
    "attention_norm": MixingFigure("Attention norm"),
    "alti": MixingFigure("ALTI"),
}


def figure_builder(method: str) -> FigureBuilder:
    """The figure builder for ``method``."""
    try:
        return FIGURES[method]
    except KeyError:
        raise NotFound(f"No figure is defined for method {method!r}.") from None
