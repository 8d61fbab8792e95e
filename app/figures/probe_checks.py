"""What a probe set proves beyond its dev metrics, one section each with a reading in plain words:
the second treebank, the tree topological bracket judged with its spread, selectivity against a control
task (Hewitt & Liang, EMNLP 2019), description length (Voita & Titov, EMNLP 2020) and the amnesic check
(Elazar et al., TACL 2021, with LEACE, Belrose et al., NeurIPS 2023). No torch here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.figures.base import FigureDict

Section = dict[str, Any]  # id, title, reading (paragraphs), figure (or None), table {columns, rows}


def _fmt(value: Any, spread: Any = None) -> str:
    if value is None:
        return "–"
    return f"{value:.3f}" if spread is None else f"{value:.3f} ± {spread:.3f}"


def _layer_name(layer: str | int) -> str:
    return "0 (embeddings)" if str(layer) == "0" else str(layer)


def _best(layers: dict, metric: str) -> tuple[str, float] | None:
    scored = [(layer, values[metric]) for layer, values in layers.items() if values.get(metric) is not None]
    return max(scored, key=lambda item: item[1]) if scored else None


def _spread(report: dict, layer: str, metric: str) -> float | None:
    if len(report.get("seeds") or [0]) < 2:
        return None
    return report.get("layers_std", {}).get(layer, {}).get(metric)


def _line(name: str, x: list, y: list, colour: str, dash: str = "solid", spread: list | None = None) -> dict:
    trace = {
        "type": "scatter",
        "mode": "lines+markers",
        "name": name,
        "x": x,
        "y": y,
        "line": {"color": colour, "dash": dash},
    }
    if spread and any(value is not None for value in spread):
        trace["error_y"] = {"type": "data", "array": [value or 0.0 for value in spread], "visible": True}
    return trace


def _layout(title: str, y_title: str, **y_axis: Any) -> dict:
    return {
        "title": {"text": title},
        "xaxis": {"title": {"text": "layer (0 = embeddings)"}, "dtick": 1},
        "yaxis": {"title": {"text": y_title}, **y_axis},
        "height": 360,
    }


def seeds_section(metrics: dict) -> Section | None:
    """How many seeds the figures average, and how large the spread between them is."""
    seeds = metrics.get("seeds") or []
    if len(seeds) < 2:
        return None
    spreads = [
        value
        for values in metrics.get("layers_std", {}).values()
        for value in [values.get("uuas")]
        if value is not None
    ]
    largest = max(spreads) if spreads else 0.0
    reading = [
        f"Every figure of this set is the mean over {len(seeds)} seeds ({', '.join(map(str, seeds))}), shown "
        "as mean ± standard deviation. A difference between two layers smaller than their spread is not a "
        f"difference. Here the UUAS varies by at most {largest:.3f} between seeds at any layer.",
        f"The probes drawn on the Sentence page are those of seed {seeds[0]}.",
    ]
    table = {
        "columns": ["layer", *(f"UUAS, seed {seed}" for seed in seeds)],
        "rows": [
            [_layer_name(layer), *(_fmt(run[layer].get("uuas")) for run in metrics["per_seed"])]
            for layer in sorted(metrics["layers"], key=int)
        ],
    }
    return {"id": "seeds", "title": "Seeds", "reading": reading, "figure": None, "table": table}


def second_treebank_section(metrics: dict, name: str | None) -> Section | None:
    """The same probes measured on a held-out treebank (another genre) beside the dev treebank."""
    second = metrics.get("second")
    if not second:
        return None
    layers = sorted(metrics["layers"], key=int)
    x = [int(layer) for layer in layers]
    label = name or "the second treebank"
    rows = []
    for layer in layers:
        row = [_layer_name(layer)]
        for report in (metrics, second):
            values = report["layers"].get(layer, {})
            row += [_fmt(values.get(key), _spread(report, layer, key)) for key in ("uuas", "depth_spearman")]
        rows.append(row)
    chains = [report.get("baselines", {}).get("right_branching_uuas") for report in (metrics, second)]
    rows.append(["right-branching chain", _fmt(chains[0]), "–", _fmt(chains[1]), "–"])
    best_dev, best_second = _best(metrics["layers"], "uuas"), _best(second["layers"], "uuas")
    reading = [
        f"The probes were also measured on {label} ({second['sentences'].get('used', 0)} sentences), "
        "which they were not trained or stopped on. A layer that encodes trees, rather than the genre of "
        "the training treebank, keeps its UUAS there and stays above the right-branching chain."
    ]
    if best_dev and best_second:
        same = "the same layer" if best_dev[0] == best_second[0] else f"layer {best_second[0]}"
        reading.append(
            f"Best layer on the dev treebank: {best_dev[0]} (UUAS {best_dev[1]:.3f}); on {label}: {same} "
            f"(UUAS {best_second[1]:.3f}, chain {_fmt(chains[1])})."
        )
    figure: FigureDict = {
        "data": [
            _line("UUAS, dev", x, [metrics["layers"][la].get("uuas") for la in layers], "#1f6fb2"),
            _line(
                f"UUAS, {label}",
                x,
                [second["layers"].get(la, {}).get("uuas") for la in layers],
                "#1f6fb2",
                "dashdot",
                [_spread(second, la, "uuas") for la in layers],
            ),
        ],
        "layout": _layout(f"UUAS on the dev treebank and on {label}", "UUAS", range=[0, 1]),
    }
    table = {
        "columns": ["layer", "UUAS, dev", "depth Spearman, dev"]
        + [f"UUAS, {label}", f"depth Spearman, {label}"],
        "rows": rows,
    }
    title = "A second treebank"
    return {"id": "second", "title": title, "reading": reading, "figure": figure, "table": table}


def bracket_section(metrics: dict, name: str | None) -> Section | None:
    """The tree topological bracket X_ssp <= X_sp <= X_essp per layer, judged with the spread over seeds."""
    curves = metrics.get("topological")
    if not curves or "bracket" not in curves:
        return None
    judged = [("dev", curves)]
    second = (metrics.get("second") or {}).get("topological")
    if second and "bracket" in second:
        judged.append((name or "second treebank", second))
    reading = [
        "Li, Yin & Lin (EMNLP 2023) bound the supervised depth probe's held-out loss X_sp by two "
        "self-supervised ones: X_ssp (labels rebuilt from the probe's own ordering, a lower bound) and "
        "X_essp (the same labels in reversed order, an upper bound). A layer 'holds' when mean ± spread of "
        "the three are ordered, is 'violated' when they are ordered the wrong way beyond the spread, and "
        "'undecided' when the spreads overlap."
    ]
    for label, report in judged:
        verdicts = report["bracket"]
        counts = {verdict: verdicts.count(verdict) for verdict in ("holds", "violated", "undecided")}
        reading.append(
            f"On {label}: holds at {counts['holds']} of {len(verdicts)} layers, violated at "
            f"{counts['violated']}, undecided at {counts['undecided']}."
        )
    columns = ["layer"]
    for label, _ in judged:
        columns += [f"bracket, {label}"]
    rows = [
        [_layer_name(layer), *(report["bracket"][i] for _, report in judged)]
        for i, layer in enumerate(curves["layers"])
    ]
    return {
        "id": "bracket",
        "title": "Tree topological bracket",
        "reading": reading,
        "figure": None,
        "table": {"columns": columns, "rows": rows},
    }


def selectivity_section(metrics: dict) -> Section | None:
    """Real vs control-task metrics per layer and their difference, the selectivity (Hewitt & Liang 2019)."""
    report = metrics.get("selectivity")
    if not report:
        return None
    control = report["control"]
    layers = sorted(report["layers"], key=int)
    x = [int(layer) for layer in layers]
    rows = []
    for layer in layers:
        row = [_layer_name(layer)]
        for key in ("uuas", "depth_spearman"):
            row += [
                _fmt(metrics["layers"][layer].get(key), _spread(metrics, layer, key)),
                _fmt(control["layers"][layer].get(key), _spread(control, layer, key)),
                _fmt(report["layers"][layer].get(key), _spread(report, layer, key)),
            ]
        rows.append(row)
    best = _best(report["layers"], "uuas")
    reading = [
        "A probe can score well by memorising word types instead of reading structure from the layer. The "
        "control task gives every word type a fixed random place in a tree (attached to the sentence's first "
        "or last word), which a probe can only learn by memorising types; its probes are trained with the "
        "same rank, epochs and seeds as the real ones. Selectivity = real metric − control metric: high "
        "where the layer's trees are not explained by type memorisation."
    ]
    if best:
        reading.append(f"Highest UUAS selectivity at layer {best[0]}: {best[1]:.3f}.")
    reading.append(
        "UUAS selectivity is the cleaner number. Control depths take only the values 0, 1 and 2 (heavily "
        "tied ranks), so the control's depth Spearman is on a different scale; root accuracy is left out "
        "because the control's root is a position (the first word), not a type."
    )
    colours = {"uuas": "#1f6fb2", "depth_spearman": "#8e44ad"}
    names = {"uuas": "UUAS", "depth_spearman": "depth Spearman"}
    traces = []
    for key, colour in colours.items():
        traces.append(
            {
                "type": "bar",
                "name": f"selectivity, {names[key]}",
                "x": x,
                "y": [report["layers"][layer].get(key) for layer in layers],
                "marker": {"color": colour},
                **(
                    {"error_y": {"type": "data", "array": [_spread(report, la, key) or 0 for la in layers]}}
                    if len(report.get("seeds") or [0]) > 1
                    else {}
                ),
            }
        )
        traces.append(
            _line(
                f"{names[key]}, control task",
                x,
                [control["layers"][layer].get(key) for layer in layers],
                colour,
                "dot",
            )
        )
    figure: FigureDict = {
        "data": traces,
        "layout": {**_layout("Selectivity per layer (dev treebank)", "score"), "barmode": "group"},
    }
    columns = ["layer"]
    for name in names.values():
        columns += [f"{name}", f"{name}, control task", f"{name}, selectivity"]
    return {
        "id": "selectivity",
        "title": "Selectivity (control task)",
        "reading": reading,
        "figure": figure,
        "table": {"columns": columns, "rows": rows},
    }


def description_length_section(metrics: dict) -> Section | None:
    """Online code length of the depth labels per layer and the compression against a uniform code."""
    report = metrics.get("description_length")
    if not report:
        return None
    layers = report["layers"]
    rows = [
        [
            _layer_name(layer),
            f"{online / 1000:.1f}",
            f"{compression:.2f}",
            _fmt(accuracy),
        ]
        for layer, online, compression, accuracy in zip(
            layers, report["online_bits"], report["compression"], report["final_accuracy"], strict=True
        )
    ]
    best = max(range(len(layers)), key=lambda i: report["compression"][i])
    reading = [
        "How many bits does it take to send every word's depth to someone who has the layer's vectors? "
        "The online code (Voita & Titov, EMNLP 2020) sends the labels block by block, each block encoded "
        f"by a {report['probe']} probe trained on the blocks before it; a layer from which depth is easy to "
        "learn from few examples needs fewer bits. Compression = uniform code / online code, so layers "
        "compare without choosing a probe rank.",
        f"{report['num_words']:,} training words, {len(report['classes'])} depth classes "
        f"({', '.join(report['classes'])}), uniform code {report['uniform_bits'] / 1000:.1f} kbits. "
        f"Best compression at layer {layers[best]}: {report['compression'][best]:.2f}.",
    ]
    figure: FigureDict = {
        "data": [
            _line("compression (uniform / online)", layers, report["compression"], "#2a9d55"),
        ],
        "layout": _layout("Description length of depth per layer (online code)", "compression"),
    }
    columns = ["layer", "online code (kbits)", "compression", "accuracy on the last block"]
    return {
        "id": "description_length",
        "title": "Description length (MDL)",
        "reading": reading,
        "figure": figure,
        "table": {"columns": columns, "rows": rows},
    }


def amnesic_section(metrics: dict) -> Section | None:
    """What the model loses when bucketed depth is erased at layer L (LEACE) vs a random subspace."""
    report = metrics.get("amnesic")
    if not report:
        return None
    rows_in = report["rows"]
    scored = report.get("classifier") is not None and report["none"].get("accuracy") is not None
    columns = ["erased layer", "rank"]
    if scored:
        columns += ["accuracy, no erasure", "accuracy, LEACE", "accuracy, random"]
    columns += ["later layers' UUAS drop, LEACE", "later layers' UUAS drop, random", "UUAS per later layer"]
    rows = []
    for row in rows_in:
        cells = [_layer_name(row["layer"]), str(row["rank"])]
        if scored:
            cells += [_fmt(row["accuracy"].get(kind)) for kind in ("none", "leace", "random")]
        drops = row.get("mean_uuas_drop") or {}
        cells += [_fmt(drops.get("leace")), _fmt(drops.get("random"))]
        cells.append(
            " · ".join(
                f"{later}: {_fmt(none)} → {_fmt(leace)} / {_fmt(rand)}"
                for later, none, leace, rand in zip(
                    row["later_layers"],
                    row["uuas"]["none"],
                    row["uuas"]["leace"],
                    row["uuas"]["random"],
                    strict=True,
                )
            )
            or "–"
        )
        rows.append(cells)
    with_drops = [row for row in rows_in if (row.get("mean_uuas_drop") or {}).get("leace") is not None]
    reading = [
        "A probe that reads depth from a layer does not show that the model uses it. Here the depth the "
        f"probe reads (gold depth in buckets {', '.join(report.get('buckets', []))}) is erased from layer L "
        "with LEACE, fitted on the training treebank, and the erased states are fed on through the model. "
        "If later layers or the classifier lose more than when a random subspace of the same rank is "
        "erased, the model uses that information."
    ]
    if with_drops:
        worst = max(with_drops, key=lambda row: row["mean_uuas_drop"]["leace"])
        reading.append(
            f"The largest loss comes from erasing layer {worst['layer']}: later layers' UUAS drops by "
            f"{worst['mean_uuas_drop']['leace']:.3f} on average, against "
            f"{worst['mean_uuas_drop']['random']:.3f} for a random subspace of rank {worst['rank']}."
        )
    if scored:
        changes = [row["accuracy"]["leace"] - row["accuracy"]["none"] for row in rows_in]
        labelled = report.get("labelled") or {}
        count = labelled.get("rows") if isinstance(labelled, dict) else labelled
        reading.append(
            f"The {report['classifier']}'s accuracy changes by {min(changes):+.3f} to {max(changes):+.3f} "
            f"under LEACE (on {count} labelled texts)."
        )
    else:
        reading.append("No classifier was scored: give a fitted head and labelled texts to measure one.")
    x = [row["layer"] for row in with_drops]
    figure: FigureDict | None = None
    if with_drops:
        figure = {
            "data": [
                {
                    "type": "bar",
                    "name": name,
                    "x": x,
                    "y": [row["mean_uuas_drop"][kind] for row in with_drops],
                    "marker": {"color": colour},
                }
                for name, kind, colour in (
                    ("LEACE (depth erased)", "leace", "#e76f51"),
                    ("random subspace, same rank", "random", "#6c757d"),
                )
            ],
            "layout": {
                **_layout("Mean UUAS drop of later layers when layer L is erased", "UUAS drop"),
                "barmode": "group",
                "xaxis": {"title": {"text": "erased layer L"}, "dtick": 1},
            },
        }
    return {
        "id": "amnesic",
        "title": "Amnesic check (LEACE)",
        "reading": reading,
        "figure": figure,
        "table": {"columns": columns, "rows": rows},
    }


SectionBuilder = Callable[[dict, str | None], Section | None]


def probe_check_sections(metrics: dict, second_name: str | None = None) -> list[Section]:
    """Every section that applies to this probe set, in reading order."""
    builders: list[SectionBuilder] = [
        lambda m, _: seeds_section(m),
        second_treebank_section,
        bracket_section,
        lambda m, _: selectivity_section(m),
        lambda m, _: description_length_section(m),
        lambda m, _: amnesic_section(m),
    ]
    return [section for build in builders if (section := build(metrics, second_name)) is not None]
