"""Shared figure pieces: the builder protocol, token labels, heatmap defaults and view parsing."""

from __future__ import annotations

import html
from typing import Any, Protocol

import numpy as np

from app.errors import InvalidInput

FigureDict = dict[str, Any]
MAX_HOVER_LABEL_TOKENS = 200


class FigureBuilder(Protocol):
    """Controls and figures for one method's results."""

    def controls(self, tokens: list[str], encoding: dict, result: dict) -> list[dict]: ...

    def figures(
        self, tokens: list[str], encoding: dict, result: dict, view: dict[str, str]
    ) -> dict[str, FigureDict]:
        """``{"main": figure}`` plus ``"strip"`` (one query row over the sentence) when a row is chosen."""
        ...


HIDE_SPECIAL_CONTROL = {
    "name": "hide_special",
    "label": "Hide special tokens",
    "type": "checkbox",
    "value": "",
}
ROW_CONTROL = {"name": "row", "label": "Row", "type": "hidden", "value": ""}


def layer_control(layers: int, label: str = "Layer") -> dict:
    return {"name": "layer", "label": label, "type": "range", "min": 0, "max": layers - 1, "value": "0"}


def token_labels(tokens: list[str]) -> list[str]:
    """Tick labels safe for Plotly's pseudo-HTML text renderer (a token '<b>' is shown, not applied)."""
    return [html.escape(token, quote=False) for token in tokens]


def visible_positions(encoding: dict, hide_special: bool) -> list[int]:
    """Token positions to draw; special tokens ([CLS], [SEP], <s>...) can be hidden after the fact."""
    special = encoding.get("special") or []
    return [i for i, is_special in enumerate(special) if not (hide_special and is_special)]


def int_choice(view: dict[str, str], name: str, default: int, upper: int) -> int:
    """Parse an integer view control in [0, upper)."""
    raw = view.get(name, default)
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise InvalidInput(f"View control {name!r} must be an integer, got {raw!r}.") from None
    if not 0 <= value < upper:
        raise InvalidInput(f"View control {name!r} must be between 0 and {upper - 1}, got {value}.")
    return value


def bool_choice(view: dict[str, str], name: str) -> bool:
    """Parse a checkbox view control ('1', 'true', 'on' are true)."""
    return str(view.get(name, "")).lower() in {"1", "true", "on", "yes"}


def matrix_views(
    matrix: np.ndarray,
    tokens: list[str],
    encoding: dict,
    view: dict[str, str],
    title: str,
    *,
    colorbar: str,
    renormalise: bool,
) -> dict[str, FigureDict]:
    """Heatmap of a [query, key] matrix, and the chosen row as a strip over the sentence.

    Hiding special tokens drops their rows and columns; with ``renormalise`` the remaining rows are rescaled
    to sum to 1 again (mixing shares are relative, so they are shares among the visible tokens).
    """
    hide = bool_choice(view, "hide_special")
    keep = visible_positions(encoding, hide)
    shown = matrix[np.ix_(keep, keep)]
    if hide and renormalise:
        sums = shown.sum(axis=-1, keepdims=True)
        shown = shown / np.where(sums == 0, 1, sums)
        title += " (special tokens hidden, rows renormalised)"
    labels = token_labels([tokens[i] for i in keep])
    main = matrix_heatmap(np.round(shown, 6).tolist(), labels, title, colorbar)
    main["layout"]["meta"] = {"positions": keep}
    figures = {"main": main}
    row_raw = view.get("row", "")
    if row_raw not in ("", None):
        row = int_choice(view, "row", 0, len(tokens))
        if row in keep:
            values = shown[keep.index(row)]
            figures["strip"] = strip_figure(
                np.round(values, 6).tolist(),
                labels,
                f"Row of {labels[keep.index(row)]} (position {row}): what it draws on",
            )
    return figures


def strip_figure(values: list[float], labels: list[str], title: str) -> FigureDict:
    """One row of values as a colour strip, the tokens written in their cells."""
    trace = {
        "type": "heatmap",
        "z": [values],
        "x": list(range(len(values))),
        "text": [labels],
        "texttemplate": "%{text}",
        "colorscale": "Blues",
        "reversescale": True,
        "zmin": 0.0,
        "hovertemplate": "%{text}<br>value %{z:.4f}<extra></extra>",
        "colorbar": {"thickness": 10},
    }
    return {
        "data": [trace],
        "layout": {
            "title": {"text": title},
            "xaxis": {"visible": False},
            "yaxis": {"visible": False},
            "height": 160,
            "margin": {"l": 10, "r": 10, "t": 40, "b": 10},
        },
        "config": download_config(title),
    }


def matrix_heatmap(
    matrix: list[list[float]], labels: list[str], title: str, colorbar_title: str, zmax: float | None = None
) -> FigureDict:
    """A query x key heatmap with numeric axes (repeated tokens stay distinct) labelled by token."""
    size = len(labels)
    trace: dict[str, Any] = {
        "type": "heatmap",
        "z": matrix,
        "x": list(range(size)),
        "y": list(range(size)),
        "colorscale": "Blues",
        "reversescale": True,
        "zmin": 0.0,
        "colorbar": {"title": {"text": colorbar_title}},
    }
    if zmax is not None:
        trace["zmax"] = zmax
    if size <= MAX_HOVER_LABEL_TOKENS:
        trace["customdata"] = [[[labels[row], labels[col]] for col in range(size)] for row in range(size)]
        trace["hovertemplate"] = (
            "query %{y}: %{customdata[0]}<br>key %{x}: %{customdata[1]}<br>value %{z:.4f}<extra></extra>"
        )
    else:
        trace["hovertemplate"] = "query %{y}<br>key %{x}<br>value %{z:.4f}<extra></extra>"
    axis = {
        "tickmode": "array",
        "tickvals": list(range(size)),
        "ticktext": labels,
        "tickangle": -60,
        "automargin": True,
    }
    side = max(420, min(900, 28 * size + 160))
    return {
        "data": [trace],
        "layout": {
            "title": {"text": title},
            "xaxis": {**axis, "title": {"text": "key (attended to)"}, "side": "bottom"},
            "yaxis": {
                **axis,
                "title": {"text": "query (attending)"},
                "autorange": "reversed",
                "tickangle": 0,
            },
            "height": side,
            "margin": {"l": 40, "r": 20, "t": 60, "b": 40},
        },
        "config": download_config(title),
    }


def download_config(title: str) -> dict:
    """Plotly config: its own download button (PNG here; the page adds an SVG twin), no logo."""
    filename = "".join(ch if ch.isalnum() else "_" for ch in title.lower()).strip("_")[:60] or "figure"
    return {
        "displaylogo": False,
        "responsive": True,
        "toImageButtonOptions": {"format": "png", "filename": filename, "scale": 2},
    }
