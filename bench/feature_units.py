"""Features as units beside neurons and random directions: indexing speed and the cross-corpus illusion check.

    python -m bench.feature_units [--train-sentences 4000] [--pair-sentences 2000] [--small-sentences 700]
                                  [--layer 3] [--steps 2000] [--throughput-sentences 1000] [--repeats 3]

One run, embedded model, CPU, a temporary store:

1. Index the neurons of the shared corpora: Wikipedia and Reuters (``--train-sentences`` each, the
   dictionary's training data; and their first ``--pair-sentences`` as the pair described below), the EWT
   dev treebank and SST-2 dev (``--small-sentences`` each).
2. Train a dictionary (``train_dictionary`` at its defaults: TopK SAE, 8x width, k = 32) on Wikipedia +
   Reuters at ``--layer`` (residual).
3. Throughput, interleaved, median of ``--repeats``: plain forward passes, the neuron index and the feature
   index over the same sentences. Target: feature indexing at >= 80 % of the plain forward throughput.
4. The illusion check (Bolukbasi et al. 2021) on two corpus pairs, wiki + news and EWT + SST-2: neurons
   (``describe_neurons``) and the dictionary's features (``index_features``) each described with 256
   random directions in their own space, the offline generator, seed 0.

Writes docs/benchmarks/feature_index.md and docs/benchmarks/feature_illusion.md.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from pathlib import Path

import torch

from app.jobs.manager import execute
from app.jobs.registry import parse_params
from app.methods.features.basis import FeatureBasis
from app.methods.neurons.corpora import plan_batches
from app.methods.neurons.index import build_state, run_encoder
from app.modeling.loading import EMBEDDED, load_model
from bench.job_store import temporary_jobs
from bench.neurons import plain_forward
from bench.report import Table, write_report

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FILES = {
    "wiki": (DATA / "corpora" / "wikipedia_wikitext2.txt", None),
    "news": (DATA / "corpora" / "news_reuters21578.txt", None),
    "ewt": (DATA / "ud-english-ewt" / "en_ewt-ud-dev.conllu", None),
    "sst": (DATA / "sst2" / "dev.tsv", "sentence"),
}
PAIRS = {"wiki + news": ("wiki_pair", "news_pair"), "EWT + SST-2": ("ewt", "sst")}
TARGET_RATIO = 0.8
BATCH = 32
MAX_TOKENS = 128
LABELS = ("consistent", "inconsistent", "corpus-specific", "undescribed")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def corpus_specs(args: argparse.Namespace) -> list[dict]:
    specs = []
    for name, (path, column) in FILES.items():
        small = name in ("ewt", "sst")
        limit = args.small_sentences if small else args.train_sentences
        specs.append({"name": name, "path": str(path), "column": column, "limit": limit})
        if not small:
            specs.append(
                {"name": f"{name}_pair", "path": str(path), "column": column, "limit": args.pair_sentences}
            )
    return specs


class _Stop(Exception):
    pass


def forward_to(loaded, module, sentences: list[str]) -> None:
    """Plain forward passes that stop at ``module`` (the blocks a feature index needs), no index work."""

    def stop(_module, _inputs, _output):
        raise _Stop

    handle = module.register_forward_hook(stop)
    try:
        plan = plan_batches(loaded, sentences, BATCH, MAX_TOKENS)
        with torch.inference_mode():
            for batch in plan.batches():
                try:
                    run_encoder(loaded, batch)
                except _Stop:
                    pass
    finally:
        handle.remove()


def throughput(loaded, basis, sentences: list[str], repeats: int) -> dict[str, list[float]]:
    """Wall seconds per mode, the modes interleaved."""
    site = basis.modules(loaded)[0]
    modes = {
        "forward": lambda: plain_forward(loaded, sentences, BATCH, MAX_TOKENS),
        "forward to the dictionary's layer": lambda: forward_to(loaded, site, sentences),
        "neuron index": lambda: build_state(loaded, sentences, batch_size=BATCH, max_tokens=MAX_TOKENS),
        "feature index": lambda: build_state(
            loaded, sentences, batch_size=BATCH, max_tokens=MAX_TOKENS, basis=basis
        ),
    }
    modes["feature index"]()  # warm-up: compiles the fold for this width
    wall: dict[str, list[float]] = {mode: [] for mode in modes}
    for _, (mode, run) in itertools.product(range(repeats), modes.items()):
        start = time.perf_counter()
        run()
        wall[mode].append(time.perf_counter() - start)
    return wall


def group_row(pair: str, name: str, group: dict, corpora: list[str]) -> list[str]:
    per = [group["per_corpus"][c] for c in corpora]
    described = " / ".join(f"{100 * p['described_fraction']:.1f} %" for p in per)
    stability = " / ".join("-" if p["mean_stability"] is None else f"{p['mean_stability']:.2f}" for p in per)
    labels = [f"{100 * group['labels'].get(label, 0):.1f} %" for label in LABELS]
    mean = group["mean_consistency"]
    return [
        pair,
        f"{name} ({group['units']:,})",
        described,
        stability,
        *labels,
        "-" if mean is None else f"{mean:.2f}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--train-sentences", type=int, default=4000)
    parser.add_argument("--pair-sentences", type=int, default=2000)
    parser.add_argument("--small-sentences", type=int, default=700)
    parser.add_argument("--layer", type=int, default=3)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--throughput-sentences", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    missing = [str(path) for path, _ in FILES.values() if not path.exists()]
    if missing:
        raise SystemExit(f"skipped: the shared data are absent ({', '.join(missing)})")
    loaded = load_model(EMBEDDED, device="cpu")
    with temporary_jobs(loaded) as (services, context):

        def job(kind: str, params: dict):
            start = time.perf_counter()
            outcome = execute(context, kind, parse_params(kind, params))
            seconds = time.perf_counter() - start
            log(f"{kind} {params.get('corpora', '')}: {seconds:.0f} s")
            return outcome, seconds

        job("index_neurons", {"corpora": corpus_specs(args), "describe": False})
        training = {
            "corpora": ["wiki", "news"],
            "layer": args.layer,
            "steps": args.steps,
            "index_features": False,
        }
        outcome, trained = job("train_dictionary", training)
        dictionary = services.stores.dictionaries.get(outcome.result_id)
        basis = FeatureBasis(dictionary)
        sentences = services.stores.neurons.sentences(
            services.stores.neurons.find(loaded.revision, "wiki").id, list(range(args.throughput_sentences))
        )
        wall = throughput(loaded, basis, [sentences[i] for i in range(len(sentences))], args.repeats)
        log({mode: [round(s, 2) for s in seconds] for mode, seconds in wall.items()})
        summaries, seconds = {}, {}
        for pair, names in PAIRS.items():
            describe = {"corpora": list(names), "directions": 256, "seed": 0}
            neurons, seconds[(pair, "neurons")] = job("describe_neurons", describe)
            features, seconds[(pair, "features")] = job(
                "index_features", {"dictionary": dictionary.id, **describe}
            )
            summaries[pair] = (
                services.stores.descriptions.get(neurons.result_id).summary,
                services.stores.descriptions.get(features.result_id).summary,
            )
    write_throughput(args, wall, len(sentences), dictionary)
    write_illusion(args, summaries, seconds, dictionary)


def write_throughput(args, wall: dict, count: int, dictionary) -> None:
    rate = {mode: count / statistics.median(seconds) for mode, seconds in wall.items()}
    partial = "forward to the dictionary's layer"
    rows = [
        [
            mode,
            f"{rate[mode]:.1f}",
            f"{rate[mode] / rate['forward']:.1%}",
            f"{rate[mode] / rate[partial]:.1%}",
        ]
        for mode in wall
    ]
    ratio = rate["feature index"] / rate["forward"]
    verdict = "met" if ratio >= TARGET_RATIO else "NOT met"
    write_report(
        "feature_index",
        f"Embedded model, the first {count:,} Wikipedia sentences, batch {BATCH}, at most {MAX_TOKENS} "
        f"tokens, k = 50 exemplars; {torch.get_num_threads()} threads; median of {args.repeats} interleaved "
        f"repeats. Feature index: the {dictionary.width:,} features of the layer-{dictionary.layer} "
        f"{dictionary.site} dictionary trained in the same run (every token encoded by the SAE, then the "
        "same fold as neurons).",
        [
            Table(
                ["mode", "sentences/s", "vs forward", f"vs forward to layer {dictionary.layer}"],
                rows,
                align_right=[False, True, True, True],
            )
        ],
        [
            f"Target: feature indexing >= {TARGET_RATIO:.0%} of forward: {ratio:.1%} ({verdict}). The "
            "feature index runs the blocks up to its layer only; against a plain forward pass over those "
            f"same blocks it runs at {rate['feature index'] / rate[partial]:.1%}: that is the cost of "
            "encoding and indexing the features."
        ],
        script="feature_units",
    )


def write_illusion(args, summaries: dict, seconds: dict, dictionary) -> None:
    rows = []
    where = f"L{dictionary.layer} {dictionary.site}"
    for pair, (neurons, features) in summaries.items():
        corpora = neurons["corpora"]
        rows.append(group_row(pair, "neurons", neurons["units"], corpora))
        rows.append(group_row(pair, f"SAE features {where}", features["units"], corpora))
        rows.append(group_row(pair, "random directions, FFN", neurons["random_directions"], corpora))
        rows.append(group_row(pair, f"random directions, {where}", features["random_directions"], corpora))
    header = [
        "corpora",
        "units",
        "described on 1st / 2nd",
        "stability 1st / 2nd",
        *LABELS,
        "mean consistency",
    ]
    timing = "; ".join(f"{pair} {what}: {value:.0f} s" for (pair, what), value in seconds.items())
    write_report(
        "feature_illusion",
        f"Embedded model; wiki + news: the first {args.pair_sentences:,} sentences of each shared corpus; "
        f"EWT + SST-2: the first {args.small_sentences} sentences of the EWT dev treebank and of SST-2 dev. "
        f"The dictionary: {dictionary.width:,} features at {where}, trained on {args.train_sentences:,} "
        "sentences each of Wikipedia and Reuters (so the wiki + news pair lies inside its training data, "
        "EWT + SST-2 outside). Offline descriptor generator, k = 50 exemplars, 256 random directions per "
        "run, seed 0.",
        [Table(header, rows)],
        [f"Wall time (index + describe for features, describe for neurons): {timing}."],
        script="feature_units",
    )


if __name__ == "__main__":
    main()
