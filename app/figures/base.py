"""Shared figure pieces: the builder protocol, token labels, heatmap defaults and view parsing."""

from __future__ import annotations

import html
from typing import Any, Protocol

from app.errors import InvalidInput

FigureDict = dict[str, Any]
MAX_HOVER_LABEL_TOKENS = 200


class FigureBuilder(Protocol):
    """Controls and figures for one method's results."""

    def controls(self, tokens: list[str], encoding: dict, result: dict) -> list[dict]: ...

    def figure(self, tokens: list[str], encoding: dict, result: dict, view: dict[str, str]) -> FigureDict: ...


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
