"""Training a feature dictionary (TopK SAE) on 2 CPU cores: the issue's speed case, measured end to end.

    python -m bench.features [--sentences 4000] [--layer 3] [--site residual] [--steps 2000]

Indexes 4,000 sentences each of the shared Wikipedia and Reuters corpora with the embedded model (a
temporary store), then runs the ``train_dictionary`` job on both at its defaults (8x width, k = 32,
2,000 steps of 1,024 tokens), and reports the wall time and the held-out metrics. Target: under 10 minutes.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from app.jobs.manager import execute
from app.jobs.registry import parse_params
from app.methods.evaluation.neuron_descriptions import AG_NEWS_LABELS, SST2_LABELS
from app.modeling.loading import EMBEDDED, load_model
from bench.job_store import temporary_jobs
from bench.report import Table, write_report

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CORPORA = DATA / "corpora"
LABELLED = [
    {
        "name": "ag_news",
        "path": str(DATA / "ag-news" / "test.tsv"),
        "text_col": "text",
        "label_names": AG_NEWS_LABELS,
    },
    {"name": "sst2", "path": str(DATA / "sst2" / "dev.tsv"), "label_names": SST2_LABELS},
]
FILES = {"wiki": CORPORA / "wikipedia_wikitext2.txt", "news": CORPORA / "news_reuters21578.txt"}


def evaluation_table(evaluations: dict[str, dict]) -> Table:
    """Per basis and its controls: units in the basis, evaluated units, precision / recall @1 and @2."""
    rows = []
    for basis, summary in evaluations.items():
        entries = [(basis, summary["metrics"]["at_k"])]
        if "random_directions" in summary["control"]:
            entries.append((f"random directions ({basis})", summary["control"]["random_directions"]["at_k"]))
        entries.append((f"permutation ({basis})", summary["control"]["permutation"]))
        for label, at_k in entries:
            units = summary["counts"]["neurons"]
            rows.append([label, units, at_k["2"]["evaluated"], _pair(at_k["1"]), _pair(at_k["2"])])
    return Table(
        ["units", "units in basis", "evaluated", "precision / recall @1", "precision / recall @2"], rows
    )


def _pair(entry: dict) -> str:
    precision, recall = entry.get("precision"), entry.get("recall")
    if precision is None or recall is None:
        return "-"
    return f"{precision:.3f} / {recall:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sentences", type=int, default=4000)
    parser.add_argument("--layer", type=int, default=3)
    parser.add_argument("--site", default="residual", choices=["residual", "ffn"])
    parser.add_argument("--steps", type=int, default=2000)
    args = parser.parse_args()
    missing = [str(path) for path in FILES.values() if not path.exists()]
    if missing:
        raise SystemExit(f"skipped: the shared corpora are absent ({', '.join(missing)})")
    loaded = load_model(EMBEDDED, device="cpu")
    with temporary_jobs(loaded) as (services, context):
        corpora = [{"name": name, "path": str(path), "limit": args.sentences} for name, path in FILES.items()]
        start = time.perf_counter()
        execute(
            context, "index_neurons", parse_params("index_neurons", {"corpora": corpora, "describe": False})
        )
        indexed = time.perf_counter() - start
        params = {"corpora": list(FILES), "layer": args.layer, "site": args.site, "steps": args.steps}
        start = time.perf_counter()
        outcome = execute(context, "train_dictionary", parse_params("train_dictionary", params))
        trained = time.perf_counter() - start
        dictionary = services.stores.dictionaries.get(outcome.result_id)
        evaluations = {
            basis: execute(
                context, "eval_neurons", parse_params("eval_neurons", {"datasets": LABELLED, "basis": basis})
            ).evaluation.summary
            for basis in ("neurons", "features")
        }
    metrics = dictionary.metrics
    splice = metrics["splice"]
    rows = [
        ["index both corpora", f"{indexed:.0f} s", ""],
        [
            "train + evaluate the dictionary",
            f"{trained:.0f} s",
            "< 600 s" + (" (met)" if trained < 600 else " (NOT met)"),
        ],
        ["latents x dimension", f"{dictionary.width} x {metrics['dimension']}", f"k = {dictionary.k}"],
        ["held-out FVU", f"{metrics['fvu']:.3f}", f"{metrics['heldout_tokens']} held-out tokens"],
        ["held-out L0", f"{metrics['l0']:.1f}", ""],
        [
            "dead latents (training) / never active (held-out)",
            f"{metrics['dead_in_training']} / {metrics['never_active_heldout']}",
            "",
        ],
        ["tokens seen in training", f"{metrics['tokens_seen']:,}", ""],
        [
            "spliced in: prediction kept",
            f"{splice['prediction_agreement']:.3f}",
            f"{splice['sentences']} held-out sentences, zero-shot target",
        ],
        ["spliced in: |change of p(predicted)|", f"{splice['mean_abs_probability_change']:.4f}", ""],
        ["spliced in: last-layer cosine", f"{splice['last_layer_cosine']:.4f}", ""],
    ]
    write_report(
        "features_eval",
        "The neuron-description evaluation (docs: neurons, Evaluation) on 1,000 AG News test rows + the 872 "
        "SST-2 dev rows, seed 0, 50 exemplars, AUROC threshold 0.75, run over the FFN neurons of all layers "
        f"and over the features of the dictionary above (layer {args.layer} {args.site}); random directions "
        "are drawn in each basis's own space (per layer for neurons, the layer's activations for features).",
        [evaluation_table(evaluations)],
        script="features",
    )
    write_report(
        "features",
        f"Embedded all-MiniLM-L6-v2, {args.sentences} sentences each of Wikipedia and Reuters (every 10th "
        f"held out), layer {args.layer} {args.site}, the job's defaults otherwise ({args.steps} steps).",
        [Table(["what", "measured", "note"], rows)],
    )


if __name__ == "__main__":
    main()
