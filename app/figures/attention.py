"""Figures for the ``attention`` method: one layer, one head (or the mean of heads) as a heatmap."""

from __future__ import annotations

import numpy as np

from app.figures.base import (
    FigureDict,
    bool_choice,
    int_choice,
    matrix_heatmap,
    token_labels,
    visible_positions,
)


class AttentionFigure:
    """Layer slider, head selector and a special-token toggle over a query x key heatmap."""

    def controls(self, tokens: list[str], encoding: dict, result: dict) -> list[dict]:
        layers, heads = np.asarray(result["layers"]).shape[:2]
        head_options = [{"value": "mean", "label": "mean of heads"}] + [
            {"value": str(head), "label": f"head {head}"} for head in range(heads)
        ]
        return [
            {"name": "layer", "label": "Layer", "type": "range", "min": 0, "max": layers - 1, "value": "0"},
            {"name": "head", "label": "Head", "type": "select", "options": head_options, "value": "mean"},
            {"name": "hide_special", "label": "Hide special tokens", "type": "checkbox", "value": ""},
        ]

    def figure(self, tokens: list[str], encoding: dict, result: dict, view: dict[str, str]) -> FigureDict:
        weights = np.asarray(result["layers"])  # [layer, head, query, key]
        layer = int_choice(view, "layer", 0, weights.shape[0])
        head_raw = str(view.get("head", "mean"))
        if head_raw == "mean":
            matrix, head_label = np.asarray(result["mean"])[layer], "mean of heads"
        else:
            head = int_choice(view, "head", 0, weights.shape[1])
            matrix, head_label = weights[layer, head], f"head {head}"
        keep = visible_positions(encoding, bool_choice(view, "hide_special"))
        matrix = matrix[np.ix_(keep, keep)]
        labels = token_labels([tokens[i] for i in keep])
        return matrix_heatmap(
            np.round(matrix, 5).tolist(), labels, f"Attention, layer {layer}, {head_label}", "weight"
        )
