"""Per-layer views of a probe set: structural probe metrics with their baselines (Hewitt & Manning 2019)
and the tree topological probe curves X_ssp, X_sp, X_essp (Li, Yin & Lin 2023). No torch here."""

from __future__ import annotations

from typing import Any

from app.figures.base import FigureDict
from app.figures.probe_checks import probe_check_sections

METRICS = {
    "uuas": "UUAS",
    "distance_spearman": "distance Spearman",
    "root_accuracy": "root accuracy",
    "depth_spearman": "depth Spearman",
}
COLOURS = ["#1f6fb2", "#2a9d55", "#e76f51", "#8e44ad"]
TTP_KEYS = ("x_ssp", "x_sp", "x_essp")


def _fmt(value: Any, spread: Any = None) -> str:
    """``0.691`` or, with a spread over seeds, ``0.691 ± 0.004``; ``–`` when missing."""
    if value is None:
        return "–"
    return f"{value:.3f}" if spread is None else f"{value:.3f} ± {spread:.3f}"


def _seeds(metrics: dict) -> int:
    return len(metrics.get("seeds") or [0])


def probe_summary_table(metrics: dict) -> dict:
    """Rows per layer: the four metrics, the control's UUAS when trained, and the topological losses."""
    layers = metrics.get("layers", {})
    control = metrics.get("control", {}).get("layers", {})
    topological = metrics.get("topological") or {}
    ttp = {str(layer): i for i, layer in enumerate(topological.get("layers", []))}
    spread = metrics.get("layers_std") if _seeds(metrics) > 1 else None
    columns = ["layer", *METRICS.values()]
    if control:
        columns += ["UUAS (random-init control)", "distance Spearman (control)"]
    if ttp:
        columns += ["X_ssp", "X_sp", "X_essp", "X_ssp ≤ X_sp ≤ X_essp"]
    rows = []
    for layer in sorted(layers, key=int):
        row = [
            ("0 (embeddings)" if layer == "0" else layer),
            *(_fmt(layers[layer].get(key), spread[layer].get(key) if spread else None) for key in METRICS),
        ]
        if control:
            row += [
                _fmt(control.get(layer, {}).get("uuas")),
                _fmt(control.get(layer, {}).get("distance_spearman")),
            ]
        if ttp and layer in ttp:
            row += _topological_cells(topological, ttp[layer])
        rows.append(row)
    chain = metrics.get("baselines", {}).get("right_branching_uuas")
    rows.append(["right-branching chain", _fmt(chain), "–", "–", "–"] + ["–"] * (len(columns) - 5))
    return {"columns": columns, "rows": rows}


def _topological_cells(curves: dict, i: int) -> list[str]:
    """X_ssp, X_sp, X_essp (mean ± spread over seeds when trained with several) and the bracket's verdict."""
    cells = [_fmt(curves[key][i], (curves.get(f"{key}_std") or [None] * (i + 1))[i]) for key in TTP_KEYS]
    verdicts = curves.get("bracket")
    cells.append(verdicts[i] if verdicts else ("yes" if curves["bracket_holds"][i] else "no"))
    return cells


def probe_metric_figure(metrics: dict) -> FigureDict:
    """The four metrics per layer; the chain UUAS and the random-init control as dashed references."""
    layers = sorted(metrics.get("layers", {}), key=int)
    x = [int(layer) for layer in layers]
    spread = metrics.get("layers_std") if _seeds(metrics) > 1 else None
    traces = [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": label,
            "x": x,
            "y": [metrics["layers"][layer].get(key) for layer in layers],
            "line": {"color": COLOURS[i]},
            **_error_bars([spread[layer].get(key) for layer in layers] if spread else None),
        }
        for i, (key, label) in enumerate(METRICS.items())
    ]
    second = metrics.get("second")
    if second:
        traces.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": "UUAS, second treebank",
                "x": x,
                "y": [second["layers"].get(layer, {}).get("uuas") for layer in layers],
                "line": {"color": COLOURS[0], "dash": "dashdot"},
                **_error_bars(
                    [second.get("layers_std", {}).get(layer, {}).get("uuas") for layer in layers]
                    if _seeds(second) > 1
                    else None
                ),
            }
        )
    control = metrics.get("control", {}).get("layers", {})
    if control:
        traces.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": "UUAS, random-init control",
                "x": x,
                "y": [control.get(layer, {}).get("uuas") for layer in layers],
                "line": {"color": COLOURS[0], "dash": "dot"},
            }
        )
    chain = metrics.get("baselines", {}).get("right_branching_uuas")
    if chain is not None and x:
        traces.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": "UUAS, right-branching chain",
                "x": [min(x), max(x)],
                "y": [chain, chain],
                "line": {"color": "#6c757d", "dash": "dash"},
            }
        )
    return {
        "data": traces,
        "layout": {
            "title": {"text": "Structural probes per layer (dev treebank)"},
            "xaxis": {"title": {"text": "layer (0 = embeddings)"}, "dtick": 1},
            "yaxis": {"title": {"text": "score"}, "range": [0, 1]},
            "height": 420,
        },
    }


def _error_bars(spread: list | None) -> dict:
    """Plotly error bars of one standard deviation over seeds (nothing for a single seed)."""
    if not spread:
        return {}
    return {"error_y": {"type": "data", "array": [value or 0.0 for value in spread], "visible": True}}


def topological_figure(metrics: dict) -> FigureDict | None:
    """X_ssp, X_sp and X_essp per layer on one plot (held-out mean squared error of the depth probes)."""
    curves = metrics.get("topological")
    if not curves:
        return None
    names = {"x_ssp": "X_ssp (self-supervised)", "x_sp": "X_sp (supervised)", "x_essp": "X_essp"}
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": label,
                "x": curves["layers"],
                "y": curves[key],
                "line": {"color": COLOURS[i]},
                **_error_bars(curves.get(f"{key}_std") if len(curves.get("seeds") or [0]) > 1 else None),
            }
            for i, (key, label) in enumerate(names.items())
        ],
        "layout": {
            "title": {"text": "Tree topological probe per layer (dev treebank)"},
            "xaxis": {"title": {"text": "layer (0 = embeddings)"}, "dtick": 1},
            "yaxis": {"title": {"text": "held-out MSE"}, "type": "log"},
            "height": 380,
        },
    }


def probe_set_view(metrics: dict) -> dict:
    """Everything the Probes page draws for one probe set."""
    return {
        "figures": {"metrics": probe_metric_figure(metrics), "topological": topological_figure(metrics)},
        "table": probe_summary_table(metrics),
        "sections": probe_check_sections(metrics, (metrics.get("second") or {}).get("name")),
    }
