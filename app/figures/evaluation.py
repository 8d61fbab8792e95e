"""Figures and tables of evaluations: mixing faithfulness per layer; degradation curves per method."""

from __future__ import annotations

from app.errors import NotFound
from app.figures.base import FigureDict, download_config


def evaluation_view(kind: str, summary: dict, model_name: str) -> dict:
    """``{"figure": plotly figure, "table": {"columns": [...], "rows": [[...]]}}`` for one evaluation."""
    if kind == "mixing":
        return {"figure": mixing_figure(summary, model_name), "table": mixing_table(summary)}
    if kind == "degradation":
        return {"figure": degradation_figure(summary, model_name), "table": degradation_table(summary)}
    if kind == "neurons":
        return {"figure": neurons_figure(summary, model_name), "table": _rounded(summary["table"])}
    raise NotFound(f"No figure is defined for evaluations of kind {kind!r}.")


def _rounded(table: dict) -> dict:
    cells = [
        [f"{cell:.3f}" if isinstance(cell, float) else ("–" if cell is None else cell) for cell in row]
        for row in table["rows"]
    ]
    return {"columns": table["columns"], "rows": cells}


def neurons_figure(summary: dict, model_name: str) -> dict:
    """Precision@k and recall@k of neurons beside random directions and the permutation control."""
    table = summary["table"]
    rows = [row for row in table["rows"] if row[1] == "all"]
    traces = [
        {"type": "bar", "name": column, "x": [row[0] for row in rows], "y": [row[index] for row in rows]}
        for index, column in enumerate(table["columns"])
        if column.startswith(("precision", "recall"))
    ]
    return {
        "data": traces,
        "layout": {
            "title": {"text": f"Neuron descriptions against label concepts, {model_name}"},
            "yaxis": {"range": [0, 1]},
            "barmode": "group",
            "height": 380,
        },
    }


def mixing_table(summary: dict) -> dict:
    columns = ["method", *[f"layer {layer}" for layer in range(summary["layers"])]]
    rows = [
        [
            method,
            *[
                "n/a" if mean is None else f"{mean:.3f} ± {std:.3f}"
                for mean, std in zip(stats["mean"], stats["std"], strict=True)
            ],
        ]
        for method, stats in summary["summary"].items()
    ]
    return {"columns": columns, "rows": rows}


def degradation_table(summary: dict) -> dict:
    columns = [
        "method",
        "AOPC",
        "comprehensiveness",
        "sufficiency",
        "probability at 0 / 10 / 20 / 50 %",
        "accuracy at 0 / 10 / 20 / 50 %",
    ]
    rows = []
    for method, stats in summary["summary"].items():
        probability = " / ".join(f"{stats['probability'][i]:.3f}" for i in (0, 1, 2, 5))
        accuracy = " / ".join(f"{stats['accuracy'][i]:.3f}" for i in (0, 1, 2, 5))
        rows.append(
            [
                method,
                f"{stats['aopc']:.4f}",
                f"{stats['comprehensiveness']:.4f}",
                f"{stats['sufficiency']:.4f}",
                probability,
                accuracy,
            ]
        )
    return {"columns": columns, "rows": rows}


def mixing_figure(summary: dict, model_name: str) -> FigureDict:
    traces = []
    for method, stats in summary["summary"].items():
        traces.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": method,
                "x": list(range(len(stats["mean"]))),
                "y": stats["mean"],
                "error_y": {"type": "data", "array": stats["std"], "visible": True, "thickness": 1},
                "hovertemplate": f"{method}<br>layer %{{x}}: rho %{{y:.3f}}<extra></extra>",
            }
        )
    title = (
        f"Mixing faithfulness on {model_name}: Spearman's rho with blank-out "
        f"({summary.get('sentences', 0)} sentences, row {summary.get('row', 'auto')})"
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


def degradation_figure(summary: dict, model_name: str) -> FigureDict:
    """Probability of the explained label (left) and accuracy (right) as tokens are removed."""
    percent = [round(step * 100) for step in summary["steps"]]
    colours = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#7f7f7f", "#e377c2"]
    traces = []
    for index, (method, stats) in enumerate(summary["summary"].items()):
        colour = colours[index % len(colours)]
        dash = "dot" if method == "random" else "solid"
        traces.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": method,
                "x": percent,
                "y": stats["probability"],
                "line": {"color": colour, "dash": dash},
                "legendgroup": method,
                "hovertemplate": f"{method}<br>%{{x}}% removed: p %{{y:.3f}}<extra></extra>",
            }
        )
        traces.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": method,
                "x": percent,
                "y": stats["accuracy"],
                "line": {"color": colour, "dash": dash},
                "legendgroup": method,
                "showlegend": False,
                "xaxis": "x2",
                "yaxis": "y2",
                "hovertemplate": f"{method}<br>%{{x}}% removed: accuracy %{{y:.3f}}<extra></extra>",
            }
        )
    removed = "most important first" if summary["order"] == "most" else "least important first"
    title = (
        f"Degradation on {model_name}: tokens {summary['mode']}d, {removed} ({summary['examples']} examples)"
    )
    axis = {"title": {"text": "% of tokens removed"}, "dtick": 10}
    return {
        "data": traces,
        "layout": {
            "title": {"text": title},
            "height": 460,
            "legend": {"orientation": "h", "y": -0.25},
            "xaxis": {**axis, "domain": [0, 0.46]},
            "xaxis2": {**axis, "domain": [0.54, 1], "anchor": "y2"},
            "yaxis": {"title": {"text": "probability of the explained label"}, "range": [0, 1]},
            "yaxis2": {"title": {"text": "accuracy"}, "range": [0, 1], "anchor": "x2"},
        },
        "config": download_config("degradation"),
    }
