"""Figures for context-mixing results (value_zeroing, attention_rollout, attention_norm).

Tabs: one layer's mixing matrix, or the rollout up to a layer. Clicking a query row shows it as a strip.
"""

from __future__ import annotations

import numpy as np

from app.errors import InvalidInput
from app.figures.base import (
    HIDE_SPECIAL_CONTROL,
    ROW_CONTROL,
    FigureDict,
    int_choice,
    layer_control,
    matrix_views,
)

VIEWS = {"layer": "per layer", "rollout": "rollout"}


class MixingFigure:
    """Layer slider, layer/rollout tab, special-token toggle, clickable rows."""

    def __init__(self, title: str) -> None:
        self.title = title

    def controls(self, tokens: list[str], encoding: dict, result: dict) -> list[dict]:
        layers = np.asarray(result["layers"]).shape[0]
        options = [{"value": value, "label": label} for value, label in VIEWS.items()]
        return [
            {"name": "view", "label": "View", "type": "tabs", "options": options, "value": "layer"},
            layer_control(layers),
            HIDE_SPECIAL_CONTROL,
            ROW_CONTROL,
        ]

    def matrix(self, result: dict, view: dict[str, str]) -> tuple[np.ndarray, str]:
        """The [query, key] matrix a view selects, and its description."""
        which = str(view.get("view", "layer"))
        if which not in VIEWS:
            raise InvalidInput(f"View control 'view' must be one of {', '.join(VIEWS)}, got {which!r}.")
        layers = np.asarray(result["layers"])
        layer = int_choice(view, "layer", 0, layers.shape[0])
        if which == "rollout":
            return np.asarray(result["rollout_layers"])[layer], f"rollout of layers 0-{layer}"
        return layers[layer], f"layer {layer}"

    def figures(
        self, tokens: list[str], encoding: dict, result: dict, view: dict[str, str]
    ) -> dict[str, FigureDict]:
        matrix, description = self.matrix(result, view)
        return matrix_views(
            matrix, tokens, encoding, view, f"{self.title}, {description}", colorbar="share", renormalise=True
        )
