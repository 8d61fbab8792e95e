"""The activation histogram of one neuron on one corpus, as the neuron page draws it."""

from __future__ import annotations

import html

from app.figures.base import FigureDict, download_config

BAR_COLOUR = "#1f6fb2"


def histogram_figure(edges: list[float], counts: list[int], corpus: str) -> FigureDict:
    """Bars over the span of bins that hold tokens; tokens outside the edges are counted in the title.

    ``counts`` has one slot more than ``edges``: ``[underflow, one count per bin of edges, overflow]``
    (the index's layout). Empty bins inside the used span stay as gaps; those outside it are trimmed, so a
    neuron that fires in a narrow range is not drawn as a sliver of a wide axis.
    """
    if len(counts) != len(edges) + 1:
        raise ValueError(f"{len(edges)} edges need {len(edges) + 1} count slots, got {len(counts)}.")
    inner = counts[1:-1]
    used = [index for index, count in enumerate(inner) if count > 0]
    span = range(used[0], used[-1] + 1) if used else range(0)
    underflow, overflow = counts[0], counts[-1]
    outside = [
        f"{underflow} below {edges[0]:g}" if underflow else "",
        f"{overflow} at or above {edges[-1]:g}" if overflow else "",
    ]
    named = ", ".join(part for part in outside if part)
    # Plotly renders titles as pseudo-HTML: a corpus name is shown, never applied
    name = html.escape(corpus, quote=False)
    title = f"Activations on {name}" + (f" ({named})" if named else "")
    return {
        "data": [
            {
                "type": "bar",
                "x": [(edges[index] + edges[index + 1]) / 2 for index in span],
                "y": [int(inner[index]) for index in span],
                "marker": {"color": BAR_COLOUR},
            }
        ],
        "layout": {
            "title": {"text": title},
            "yaxis": {"type": "log", "title": {"text": "tokens"}},
            "xaxis": {"title": {"text": "activation"}},
            "height": 240,
            "margin": {"l": 50, "r": 10, "t": 40, "b": 40},
        },
        "config": download_config(f"activations on {corpus}"),
    }
