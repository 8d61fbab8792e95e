"""Figures for token attribution: tokens coloured by score (wrapped over rows), the IBA layer sweep, and
several methods stacked for comparison."""

from __future__ import annotations

import numpy as np

from app.figures.base import HIDE_SPECIAL_CONTROL, FigureDict, bool_choice, download_config, token_labels

TOKENS_PER_ROW = 16
MERGE_CONTROL = {"name": "merge", "label": "Merge word pieces", "type": "checkbox", "value": ""}


def units(
    tokens: list[str],
    encoding: dict,
    scores: np.ndarray,
    texts: tuple[str, str | None],
    merge: bool,
    hide_special: bool,
) -> tuple[list[str], np.ndarray]:
    """Labels and scores of the displayed units: tokens, or words (word-piece scores summed)."""
    special = encoding["special"]
    if not merge:
        keep = [i for i in range(len(tokens)) if not (hide_special and special[i])]
        return [tokens[i] for i in keep], scores[keep]
    labels, values, seen = [], [], {}
    for i, token in enumerate(tokens):
        word, sequence = encoding["word_ids"][i], encoding["sequence_ids"][i]
        if word is None:
            if not hide_special:
                labels.append(token)
                values.append(float(scores[i]))
            continue
        key = (sequence, word)
        start, end = encoding["offsets"][i]
        if key in seen:
            slot = seen[key]
            values[slot] += float(scores[i])
            labels[slot] = (slot, sequence, labels[slot][2], end)
            continue
        seen[key] = len(labels)
        labels.append((len(labels), sequence, start, end))
        values.append(float(scores[i]))
    words = [
        label if isinstance(label, str) else (texts[label[1]] or "")[label[2] : label[3]] for label in labels
    ]
    return words, np.asarray(values)


def colour_range(values: np.ndarray, signed: bool) -> dict:
    """Diverging and symmetric around 0 for signed scores, sequential from 0 for unsigned ones."""
    top = float(np.abs(values).max()) if values.size else 1.0
    top = top or 1.0
    if signed:
        return {"colorscale": "RdBu", "zmid": 0.0, "zmin": -top, "zmax": top}
    return {"colorscale": "Reds", "zmin": 0.0, "zmax": top}


def token_grid(labels: list[str], values: np.ndarray, signed: bool, title: str) -> FigureDict:
    """Tokens written in cells coloured by score, ``TOKENS_PER_ROW`` per row, in reading order."""
    rows = max(1, -(-len(labels) // TOKENS_PER_ROW))
    z = [[None] * TOKENS_PER_ROW for _ in range(rows)]
    text = [[""] * TOKENS_PER_ROW for _ in range(rows)]
    escaped = token_labels(labels)
    for index, value in enumerate(values):
        row, column = divmod(index, TOKENS_PER_ROW)
        z[row][column] = round(float(value), 6)
        text[row][column] = escaped[index]
    trace = {
        "type": "heatmap",
        "z": z,
        "text": text,
        "texttemplate": "%{text}",
        "xgap": 2,
        "ygap": 2,
        "hovertemplate": "%{text}<br>score %{z:.4g}<extra></extra>",
        **colour_range(values, signed),
    }
    return {
        "data": [trace],
        "layout": {
            "title": {"text": title},
            "xaxis": {"visible": False},
            "yaxis": {"visible": False, "autorange": "reversed"},
            "height": 120 + 46 * rows,
            "margin": {"l": 10, "r": 10, "t": 60, "b": 10},
        },
        "config": download_config(title),
    }


def describe_prediction(prediction: dict) -> str:
    explained = f"explaining '{prediction['label']}' (p = {prediction['probability']:.3f})"
    if prediction.get("predicted") not in (None, prediction["label"]):
        predicted, probability = prediction["predicted"], prediction["predicted_probability"]
        explained += f"; the model predicts '{predicted}' (p = {probability:.3f})"
    return explained


class AttributionFigure:
    """Coloured tokens, word-level merge and special-token toggles; the IBA sweep when present."""

    def __init__(self, title: str) -> None:
        self.title = title

    def controls(self, tokens: list[str], encoding: dict, result: dict) -> list[dict]:
        return [MERGE_CONTROL, {**HIDE_SPECIAL_CONTROL, "value": "1"}]

    def figures(
        self, tokens: list[str], encoding: dict, result: dict, view: dict[str, str]
    ) -> dict[str, FigureDict]:
        texts = tuple(encoding.get("texts") or ("", None))
        merge, hide = bool_choice(view, "merge"), bool_choice(view, "hide_special")
        signed = bool(result["signed"])
        labels, values = units(tokens, encoding, np.asarray(result["scores"]), texts, merge, hide)
        title = f"{self.title}, {describe_prediction(result['prediction'])}"
        if result.get("convergence_delta") is not None:
            title += (
                f"<br><sub>completeness error |Σ attributions − (f(x) − f(baseline))| = "
                f"{result['convergence_delta']:.2e}</sub>"
            )
        title += "".join(f"<br><sub>{line}</sub>" for line in accounting_lines(result))
        figures = {"main": token_grid(labels, values, signed, title)}
        if result.get("layers") is not None:
            figures["aux"] = sweep_figure(tokens, encoding, np.asarray(result["layers"]), texts, merge, hide)
        elif result.get("class_scores") is not None:
            rows = [
                units(tokens, encoding, np.asarray(row), texts, merge, hide) for row in result["class_scores"]
            ]
            figures["aux"] = class_rows_figure(
                rows[0][0], [values for _, values in rows], result["class_labels"], result.get("bias_scores")
            )
        return figures


def accounting_lines(result: dict) -> list[str]:
    """How the scores were obtained and how exactly they add up, one subtitle line each."""
    lines = [result["computed_with"]] if result.get("computed_with") else []
    if result.get("decomposition_error") is not None:
        lines.append(
            "Σ token parts + bias part − real score: largest |error| over the classes "
            f"{result['decomposition_error']:.1e}"
        )
    ledger = result.get("conservation")
    if ledger:
        lines.append(
            f"conservation: Σ relevance {ledger['relevance_sum']:+.3g} of f(x) = {ledger['score']:+.3g} "
            f"(relative error {ledger['relative_error']:.0%}); absorbed by biases "
            f"{ledger['absorbed_bias']:+.3g}, position/segment embeddings "
            f"{ledger['absorbed_embeddings']:+.3g}, softmax {ledger['absorbed_softmax']:+.3g}"
        )
    return lines


def class_rows_figure(
    labels: list[str], rows: list[np.ndarray], classes: list[str], bias: list[float] | None
) -> FigureDict:
    """One signed row per class (e.g. DecompX): which tokens push each class's score up or down."""
    matrix = np.stack(rows)
    names = [
        f"{name} (bias part {bias[index]:+.3g})" if bias is not None else name
        for index, name in enumerate(classes)
    ]
    title = "Per class: each token's signed part of the class score (red = against, blue = for)"
    return {
        "data": [
            {
                "type": "heatmap",
                "z": np.round(matrix, 6).tolist(),
                "x": list(range(len(labels))),
                "y": names,
                "text": [token_labels(labels)] * len(names),
                "hovertemplate": "%{y}<br>%{text}: %{z:.4g}<extra></extra>",
                **colour_range(matrix, True),
            }
        ],
        "layout": {
            "title": {"text": title},
            "xaxis": token_axis(labels),
            "yaxis": {"autorange": "reversed", "automargin": True},
            "height": 160 + 28 * len(names),
        },
        "config": download_config("per_class_scores"),
    }


def sweep_figure(
    tokens: list[str],
    encoding: dict,
    layers: np.ndarray,
    texts: tuple[str, str | None],
    merge: bool,
    hide: bool,
) -> FigureDict:
    """IBA with the bottleneck after each block: [layer, token], each row scaled to its maximum."""
    rows = [units(tokens, encoding, row, texts, merge, hide) for row in layers]
    labels = rows[0][0]
    matrix = np.stack([values / (values.max() or 1.0) for _, values in rows])
    title = "Information flow: IBA with the bottleneck after each block (rows scaled to their maximum)"
    return {
        "data": [
            {
                "type": "heatmap",
                "z": np.round(matrix, 5).tolist(),
                "x": list(range(len(labels))),
                "y": [f"block {layer}" for layer in range(len(rows))],
                "colorscale": "Reds",
                "zmin": 0,
                "hovertemplate": "%{y}, token %{x}<br>%{z:.3f}<extra></extra>",
            }
        ],
        "layout": {
            "title": {"text": title},
            "xaxis": token_axis(labels),
            "yaxis": {"autorange": "reversed", "automargin": True},
            "height": 160 + 28 * len(rows),
        },
        "config": download_config("iba_layer_sweep"),
    }


def token_axis(labels: list[str]) -> dict:
    """An x axis with one tick per token, labelled with the (escaped) token."""
    return {
        "tickmode": "array",
        "tickvals": list(range(len(labels))),
        "ticktext": token_labels(labels),
        "tickangle": -60,
    }


def stacked_controls() -> list[dict]:
    return [MERGE_CONTROL, {**HIDE_SPECIAL_CONTROL, "value": "1"}]


def stacked_figures(
    entries: list[tuple[str, dict]], tokens: list[str], encoding: dict, view: dict[str, str]
) -> dict[str, FigureDict]:
    """Methods stacked (one row each, scaled to max |score| = 1) and their pairwise rank agreement."""
    from scipy.stats import spearmanr

    texts = tuple(encoding.get("texts") or ("", None))
    merge, hide = bool_choice(view, "merge"), bool_choice(view, "hide_special")
    rows = [
        units(tokens, encoding, np.asarray(result["scores"]), texts, merge, hide) for _, result in entries
    ]
    labels = rows[0][0]
    matrix = np.stack([values / (np.abs(values).max() or 1.0) for _, values in rows])
    names = [method for method, _ in entries]
    main = {
        "data": [
            {
                "type": "heatmap",
                "z": np.round(matrix, 5).tolist(),
                "x": list(range(len(labels))),
                "y": names,
                "colorscale": "RdBu",
                "zmid": 0,
                "zmin": -1,
                "zmax": 1,
                "hovertemplate": "%{y}<br>token %{x}<br>scaled score %{z:.3f}<extra></extra>",
            }
        ],
        "layout": {
            "title": {"text": "Attribution methods stacked (each row scaled to max |score| = 1)"},
            "xaxis": token_axis(labels),
            "yaxis": {"autorange": "reversed", "automargin": True},
            "height": 200 + 40 * len(names),
        },
        "config": download_config("attribution_methods_stacked"),
    }
    words = [
        i for i, label in enumerate(labels) if not (label.startswith("[") and label.endswith("]"))
    ] or None
    agreement = np.eye(len(names))
    for a in range(len(names)):
        for b in range(a + 1, len(names)):
            rho = spearmanr(matrix[a][words], matrix[b][words]).statistic
            agreement[a, b] = agreement[b, a] = 0.0 if np.isnan(rho) else rho
    aux = {
        "data": [
            {
                "type": "heatmap",
                "z": np.round(agreement, 4).tolist(),
                "x": names,
                "y": names,
                "colorscale": "RdBu",
                "zmid": 0,
                "zmin": -1,
                "zmax": 1,
                "texttemplate": "%{z:.2f}",
                "hovertemplate": "%{x} vs %{y}: rho %{z:.3f}<extra></extra>",
            }
        ],
        "layout": {
            "title": {"text": "Agreement: Spearman's rho between methods on this sentence"},
            "yaxis": {"autorange": "reversed", "automargin": True},
            "height": 180 + 50 * len(names),
        },
        "config": download_config("attribution_agreement"),
    }
    return {"main": main, "aux": aux}


def randomisation_figure(method: str, rows: dict) -> FigureDict:
    """Spearman's rho with the original map as more top blocks are re-initialised (Adebayo et al. 2018)."""
    x = rows["randomised_blocks"]
    traces = [
        {"type": "scatter", "mode": "lines+markers", "name": "rho", "x": x, "y": rows["spearman"]},
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": "rho of |scores|",
            "x": x,
            "y": rows["spearman_abs"],
            "line": {"dash": "dot"},
        },
    ]
    title = f"Sanity check ({method}): rank correlation with the original map as top blocks are randomised"
    return {
        "data": traces,
        "layout": {
            "title": {"text": title},
            "height": 360,
            "xaxis": {"title": {"text": "top blocks re-initialised"}, "dtick": 1},
            "yaxis": {"title": {"text": "Spearman's rho"}, "range": [-1, 1.05]},
        },
        "config": download_config(f"{method}_randomisation"),
    }
