"""Figures of evaluations: mixing faithfulness as Spearman's rho per layer, one line per method."""

from __future__ import annotations

from app.errors import NotFound
from app.figures.base import FigureDict, download_config


def evaluation_figure(kind: str, summary: dict, model_name: str) -> FigureDict:
    if kind != "mixing":
        raise NotFound(f"No figure is defined for evaluations of kind {kind!r}.")
    traces = []
    for method, stats in summary["summary"].items():
        layers = list(range(len(stats["mean"])))
        traces.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": method,
                "x": layers,
                "y": stats["mean"],
                "error_y": {"type": "data", "array": stats["std"], "visible": True, "thickness": 1},
                "hovertemplate": f"{method}<br>layer %{{x}}: rho %{{y:.3f}}<extra></extra>",
            }
        )
    row = summary.get("row", "auto")
    title = (
        f"Mixing faithfulness on {model_name}: Spearman's rho with blank-out "
        f"({summary.get('sentences', 0)} sentences, row {row})"
    )
    return {
        "data": traces,
        "layout": {
            "title": {"text": title},
            "xaxis": {"title": {"text": "layer (rollout up to it)"}, "dtick": 1},
            "yaxis": {"title": {"text": "Spearman's rho (mean ± std)"}, "zeroline": True},
            "height": 460,
            "legend": {"orientation": "h", "y": -0.2},
        },
        "config": download_config("mixing_faithfulness"),
    }
