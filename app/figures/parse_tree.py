"""Figures for the ``structural_probe`` method: predicted tree as arcs over the words (gold tree below it
when known, arcs coloured correct / incorrect), predicted depths, and the predicted distance matrix."""

from __future__ import annotations

import numpy as np

from app.figures.base import FigureDict, int_choice, token_labels

ARC_POINTS = 24
COLOURS = {"predicted": "#1f6fb2", "correct": "#2a9d55", "incorrect": "#d1495b", "gold": "#6c757d"}


def _edges(heads: list[int]) -> set[tuple[int, int]]:
    return {(min(i, h - 1), max(i, h - 1)) for i, h in enumerate(heads) if h > 0}


def _arc_trace(edges: list[tuple[int, int]], sign: float, colour: str, name: str, words: list[str]) -> dict:
    """One scatter trace drawing every edge as a half ellipse above (sign 1) or below (-1) the words."""
    xs: list[float | None] = []
    ys: list[float | None] = []
    texts: list[str | None] = []
    angles = np.linspace(0, np.pi, ARC_POINTS)
    for a, b in edges:
        centre, radius = (a + b) / 2, (b - a) / 2
        height = sign * (0.6 + 0.35 * (b - a))
        xs += [*(centre - radius * np.cos(angles)).tolist(), None]
        ys += [*(height * np.sin(angles)).tolist(), None]
        label = f"{words[a]} — {words[b]}"
        texts += [label] * ARC_POINTS + [None]
    return {
        "type": "scatter",
        "mode": "lines",
        "x": xs,
        "y": ys,
        "text": texts,
        "hoverinfo": "text",
        "name": name,
        "line": {"color": colour, "width": 2},
    }


def tree_figure(
    result: dict, layer: int, heads: list[int], uuas: float | None, title: str = "Structural probe"
) -> FigureDict:
    """Arcs of the predicted tree above the words; the gold tree below when the sentence is known."""
    words = token_labels(result["words"])
    predicted = sorted(_edges(heads))
    gold_heads = result.get("gold_heads")
    traces = []
    if gold_heads:
        gold = _edges(gold_heads)
        punctuation = result.get("punctuation") or [False] * len(words)
        right = [e for e in predicted if e in gold]
        wrong = [e for e in predicted if e not in gold and not (punctuation[e[0]] or punctuation[e[1]])]
        other = [e for e in predicted if e not in gold and (punctuation[e[0]] or punctuation[e[1]])]
        traces += [
            _arc_trace(right, 1, COLOURS["correct"], "predicted, in gold", words),
            _arc_trace(wrong, 1, COLOURS["incorrect"], "predicted, not in gold", words),
            _arc_trace(other, 1, COLOURS["predicted"], "predicted, punctuation (not scored)", words),
            _arc_trace(sorted(gold), -1, COLOURS["gold"], "gold tree", words),
        ]
    else:
        traces.append(_arc_trace(predicted, 1, COLOURS["predicted"], "predicted tree", words))
    root = heads.index(0)
    traces.append(
        {
            "type": "scatter",
            "mode": "text+markers",
            "x": list(range(len(words))),
            "y": [0] * len(words),
            "text": words,
            "textposition": "middle center",
            "marker": {"size": [14 if i == root else 4 for i in range(len(words))], "color": "#f4a261"},
            "hovertext": [
                f"{w}: predicted head {heads[i] and words[heads[i] - 1] or 'ROOT'}"
                for i, w in enumerate(words)
            ],
            "hoverinfo": "text",
            "name": "words (large marker: predicted root)",
        }
    )
    score = f", UUAS {uuas:.2f}" if uuas is not None else ""
    width = max(len(words), 2)
    return {
        "data": traces,
        "layout": {
            "title": {"text": f"{title} tree, layer {layer}{score}"},
            "xaxis": {"visible": False, "range": [-0.8, width - 0.2]},
            "yaxis": {"visible": False, "zeroline": False},
            "showlegend": True,
            "legend": {"orientation": "h", "y": -0.05},
            "height": 420,
            "margin": {"l": 20, "r": 20, "t": 50, "b": 40},
        },
    }


def depth_figure(words: list[str], depths: list[float], layer: int) -> FigureDict:
    labels = token_labels(words)
    return {
        "data": [
            {"type": "bar", "x": list(range(len(labels))), "y": depths, "text": labels, "hoverinfo": "text+y"}
        ],
        "layout": {
            "title": {"text": f"Predicted depth ||B h||², layer {layer} (shallowest = predicted root)"},
            "xaxis": {"tickmode": "array", "tickvals": list(range(len(labels))), "ticktext": labels},
            "height": 280,
            "margin": {"l": 50, "r": 20, "t": 40, "b": 80},
        },
    }


def distance_figure(words: list[str], distances: list[list[float]], layer: int) -> FigureDict:
    labels = token_labels(words)
    return {
        "data": [
            {
                "type": "heatmap",
                "z": distances,
                "x": list(range(len(labels))),
                "y": list(range(len(labels))),
                "colorscale": "Viridis",
                "reversescale": True,
                "colorbar": {"title": {"text": "distance"}},
                "customdata": [[f"{a} — {b}" for b in labels] for a in labels],
                "hovertemplate": "%{customdata}: %{z:.2f}<extra></extra>",
            }
        ],
        "layout": {
            "title": {"text": f"Predicted tree distances ||B(h_i − h_j)||², layer {layer}"},
            "xaxis": {"tickmode": "array", "tickvals": list(range(len(labels))), "ticktext": labels},
            "yaxis": {
                "tickmode": "array",
                "tickvals": list(range(len(labels))),
                "ticktext": labels,
                "autorange": "reversed",
            },
            "height": 460,
            "margin": {"l": 90, "r": 20, "t": 40, "b": 90},
        },
    }


class ProbeFigure:
    """A layer slider over the tree, depth and distance views of every probed layer."""

    def __init__(self, title: str) -> None:
        self.title = title

    def controls(self, tokens: list[str], encoding: dict, result: dict) -> list[dict]:
        layers = result["layers"]
        return [
            {
                "name": "layer",
                "label": "Layer",
                "type": "range",
                "min": min(layers),
                "max": max(layers),
                "value": str(result["layer"]),
            }
        ]

    def figures(
        self, tokens: list[str], encoding: dict, result: dict, view: dict[str, str]
    ) -> dict[str, FigureDict]:
        layers = result["layers"]
        layer = int_choice(view, "layer", result["layer"], max(layers) + 1)
        if layer not in layers:
            layer = result["layer"]
        index = layers.index(layer)
        uuas = (result.get("layer_uuas") or [None] * len(layers))[index]
        return {
            "main": tree_figure(result, layer, list(result["layer_heads"][index]), uuas, self.title),
            "strip": depth_figure(result["words"], np.asarray(result["layer_depths"][index]).tolist(), layer),
            "aux": distance_figure(
                result["words"], np.asarray(result["layer_distances"][index]).tolist(), layer
            ),
        }
