"""Pure functions from stored results to Plotly figure dicts (no torch here).

Each entry of ``FIGURES`` says which view controls a method's page shows (``controls``) and draws the
figure for one choice of those controls (``figure``).
"""

from __future__ import annotations

from app.errors import NotFound
from app.figures.attention import AttentionFigure
from app.figures.attribution import AttributionFigure
from app.figures.base import FigureBuilder
from app.figures.mixing import MixingFigure
from app.figures.parse_tree import ProbeFigure

FIGURES: dict[str, FigureBuilder] = {
    "attention": AttentionFigure(),
    "value_zeroing": MixingFigure("Value Zeroing"),
    "attention_rollout": MixingFigure("Attention rollout"),
    "attention_norm": MixingFigure("Attention norm"),
    "alti": MixingFigure("ALTI"),
    "iba": AttributionFigure("Information Bottleneck Attribution"),
    "integrated_gradients": AttributionFigure("Integrated Gradients"),
    "gradient_x_input": AttributionFigure("Gradient × input"),
    "saliency": AttributionFigure("Saliency"),
    "lime": AttributionFigure("LIME"),
    "occlusion": AttributionFigure("Occlusion"),
    "value_zeroing_row": AttributionFigure("Value Zeroing rollout row"),
    "attention_rollout_row": AttributionFigure("Attention rollout row"),
    "structural_probe": ProbeFigure(),
}


def figure_builder(method: str) -> FigureBuilder:
    """The figure builder for ``method``."""
    try:
        return FIGURES[method]
    except KeyError:
        raise NotFound(f"No figure is defined for method {method!r}.") from None


def figure_encoding(encoding: dict, text: str, text_pair: str | None) -> dict:
    """The stored encoding plus the texts, so word-level views can label merged words."""
    return {**encoding, "texts": [text, text_pair]}
