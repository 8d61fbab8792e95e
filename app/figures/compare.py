"""Mixing matrices of several methods side by side, for the same sentence, on a shared or own colour scale."""

from __future__ import annotations

from typing import Any

import numpy as np

from app.errors import InvalidInput
from app.figures.base import (
    HIDE_SPECIAL_CONTROL,
    FigureDict,
    bool_choice,
    download_config,
    int_choice,
    token_labels,
    visible_positions,
)
from app.figures.mixing import VIEWS

SCALES = {"shared": "same scale for all", "own": "own scale each"}


def _chain(layers: np.ndarray) -> np.ndarray:
    chained = [layers[0]]
    for matrix in layers[1:]:
        chained.append(matrix @ chained[-1])
    return np.stack(chained)


def mixing_matrix(method: str, result: dict[str, Any], view: dict[str, str], layers: int) -> np.ndarray:
    """[query, key] for a view of any mixing result; raw attention uses its head mean (chained as rollout)."""
    which = str(view.get("view", "layer"))
    if which not in VIEWS:
        raise InvalidInput(f"View control 'view' must be one of {', '.join(VIEWS)}, got {which!r}.")
    layer = int_choice(view, "layer", 0, layers)
    per_layer = np.asarray(result["mean"] if method == "attention" else result["layers"], dtype=np.float64)
    if which == "layer":
        return per_layer[layer]
    if "rollout_layers" in result:
        return np.asarray(result["rollout_layers"], dtype=np.float64)[layer]
    return _chain(per_layer[: layer + 1])[-1]


def compare_controls(layers: int) -> list[dict]:
    return [
        {
            "name": "view",
            "label": "View",
            "type": "tabs",
            "value": "layer",
            "options": [{"value": value, "label": label} for value, label in VIEWS.items()],
        },
        {"name": "layer", "label": "Layer", "type": "range", "min": 0, "max": layers - 1, "value": "0"},
        {
            "name": "scale",
            "label": "Colour scale",
            "type": "select",
            "value": "shared",
            "options": [{"value": value, "label": label} for value, label in SCALES.items()],
        },
        HIDE_SPECIAL_CONTROL,
    ]


def compare_figure(
    entries: list[tuple[str, dict[str, Any]]],
    tokens: list[str],
    encoding: dict,
    view: dict[str, str],
    layers: int,
) -> FigureDict:
    """One heatmap per (method, result), left to right, sharing the token axes of one sentence."""
    scale = str(view.get("scale", "shared"))
    if scale not in SCALES:
        raise InvalidInput(f"View control 'scale' must be one of {', '.join(SCALES)}, got {scale!r}.")
    keep = visible_positions(encoding, bool_choice(view, "hide_special"))
    labels = token_labels([tokens[i] for i in keep])
    count = len(entries)
    gap = 0.04
    width = (1 - gap * (count - 1)) / count
    data, layout = [], {}
    for index, (method, result) in enumerate(entries):
        matrix = mixing_matrix(method, result, view, layers)[np.ix_(keep, keep)]
        if len(keep) < len(tokens):
            sums = matrix.sum(axis=-1, keepdims=True)
            matrix = matrix / np.where(sums == 0, 1, sums)
        suffix = "" if index == 0 else str(index + 1)
        trace = {
            "type": "heatmap",
            "z": np.round(matrix, 5).tolist(),
            "xaxis": f"x{suffix}",
            "yaxis": f"y{suffix}",
            "name": method,
            "coloraxis": "coloraxis" if scale == "shared" else f"coloraxis{suffix}",
            "hovertemplate": f"{method}<br>query %{{y}}<br>key %{{x}}<br>%{{z:.4f}}<extra></extra>",
        }
        data.append(trace)
        start = index * (width + gap)
        axis = {
            "tickmode": "array",
            "tickvals": list(range(len(keep))),
            "ticktext": labels,
            "tickangle": -60,
            "tickfont": {"size": 10 if len(keep) <= 40 else 7},
        }
        layout[f"xaxis{suffix}"] = {**axis, "domain": [start, start + width], "title": {"text": method}}
        layout[f"yaxis{suffix}"] = {
            **axis,
            "autorange": "reversed",
            "anchor": f"x{suffix}",
            "tickangle": 0,
            "showticklabels": index == 0,
        }
        colour = {
            "colorscale": "Blues",
            "reversescale": True,
            "cmin": 0.0,
            "colorbar": {"x": start + width, "len": 0.8, "thickness": 8},
        }
        if scale == "shared":
            layout["coloraxis"] = {**colour, "colorbar": {"title": {"text": "share"}}}
        else:
            layout[f"coloraxis{suffix}"] = colour
    description = f"layer {view.get('layer', 0)}" if view.get("view", "layer") == "layer" else "rollout"
    layout["title"] = {"text": f"Context mixing side by side, {description}"}
    layout["height"] = 560 if count > 2 else 640
    layout["margin"] = {"l": 60, "r": 30, "t": 70, "b": 60}
    return {"data": data, "layout": layout, "config": download_config("context_mixing_side_by_side")}
