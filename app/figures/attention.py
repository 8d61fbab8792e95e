"""Figures for the ``attention`` method: one layer, one head (or the mean of heads) as a heatmap."""

from __future__ import annotations

import numpy as np

from app.figures.base import (
    HIDE_SPECIAL_CONTROL,
    ROW_CONTROL,
    FigureDict,
    int_choice,
    layer_control,
    matrix_views,
)


class AttentionFigure:
    """Layer slider, head selector and a special-token toggle over a query x key heatmap."""

    def __init__(self, title: str) -> None:
        self.title = title

    def controls(self, tokens: list[str], encoding: dict, result: dict) -> list[dict]:
        layers, heads = np.asarray(result["layers"]).shape[:2]
        head_options = [{"value": "mean", "label": "mean of heads"}] + [
            {"value": str(head), "label": f"head {head}"} for head in range(heads)
        ]
        return [
            layer_control(layers),
            {"name": "head", "label": "Head", "type": "select", "options": head_options, "value": "mean"},
            HIDE_SPECIAL_CONTROL,
            ROW_CONTROL,
        ]

    def figures(
        self, tokens: list[str], encoding: dict, result: dict, view: dict[str, str]
    ) -> dict[str, FigureDict]:
        weights = np.asarray(result["layers"])  # [layer, head, query, key]
        layer = int_choice(view, "layer", 0, weights.shape[0])
        head_raw = str(view.get("head", "mean"))
        if head_raw == "mean":
            matrix, head_label = np.asarray(result["mean"])[layer], "mean of heads"
        else:
            head = int_choice(view, "head", 0, weights.shape[1])
            matrix, head_label = weights[layer, head], f"head {head}"
        return matrix_views(
            matrix,
            tokens,
            encoding,
            view,
            f"{self.title}, layer {layer}, {head_label}",
            colorbar="weight",
            renormalise=True,
        )
