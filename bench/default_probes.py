"""The default probe set: is the shipped UD EWT slice large enough, and does it train quickly enough?

    python -m bench.default_probes [--threads 2] [--full-limit N] [--no-full]

Trains structural probes (Hewitt & Manning, NAACL 2019) on the embedded model twice, with the options of the
default set (``app/jobs/probes.py`` ``default_probe_params``) and its dev slice for early stopping:
(a) on the whole shared UD English EWT train subset (``../shared/data/ud-english-ewt``), (b) on the slice the
package ships (``app/data/ud_ewt_train_slice.conllu``), the exact job the first ``serve`` runs. Both are then
evaluated on the full shared EWT dev split. Prints the dev UUAS per layer of both, the difference at the best
layer (target: within 0.02) and the training time of the default set (target: under 3 minutes on 2 CPU cores),
with the machine load (``/proc/loadavg``: the machine may be shared), and writes the table to
``docs/benchmarks/default_probes.md``. Without ``../shared`` it says so and exits.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from app.jobs.probes import TrainProbesParams, default_probe_params, train_options
from app.methods.probes.features import compute_word_features
from app.methods.probes.pipeline import TrainedProbes, train_probe_set
from app.methods.probes.scoring import evaluate_probes
from app.methods.probes.treebank import read_conllu
from app.modeling.loading import EMBEDDED, LoadedModel, load_model
from bench.report import Table, write_report

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "ud-english-ewt"
FULL_TRAIN = SHARED / "en_ewt-ud-train-subset.conllu"
FULL_DEV = SHARED / "en_ewt-ud-dev.conllu"
MAX_UUAS_GAP = 0.02
MAX_TRAIN_S = 180.0


def load() -> str:
    """The 1, 5 and 15 minute load averages (the machine may be shared)."""
    source = Path("/proc/loadavg")
    return " ".join(source.read_text().split()[:3]) if source.is_file() else "?"


def train(
    loaded: LoadedModel, treebank: Path, params: TrainProbesParams, label: str
) -> tuple[TrainedProbes, dict]:
    """One probe set as the train_probes job trains it; wall and CPU seconds, load before and after."""
    sentences, dev = read_conllu(treebank, params.limit), read_conllu(params.dev)
    before = load()
    wall, cpu = time.perf_counter(), time.process_time()
    last = [0.0]

    def progress(done: int, total: int) -> None:
        if time.perf_counter() - last[0] > 15:
            last[0] = time.perf_counter()
            print(f"  {label}: {done / total:.0%} after {last[0] - wall:.0f} s", flush=True)

    trained = train_probe_set(
        loaded, sentences, dev, train_options(params, params.layers), max_tokens=512, progress=progress
    )
    timing = {
        "sentences": len(sentences),
        "wall_s": time.perf_counter() - wall,
        "cpu_s": time.process_time() - cpu,
        "load_before": before,
        "load_after": load(),
        "stages": trained.metrics.get("timings", {}),
        "epochs": trained.weights.history.get("epochs"),
    }
    print(f"{label}: {timing}", flush=True)
    return trained, timing


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--full-limit", type=int, default=None, help="use only N sentences of the subset")
    args = parser.parse_args()
    if not FULL_TRAIN.is_file() or not FULL_DEV.is_file():
        print(f"skipped: {SHARED} is absent (the shared UD English EWT data is needed for this benchmark)")
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.threads:
        torch.set_num_threads(args.threads)
    loaded = load_model(EMBEDDED, device="cpu")
    params = TrainProbesParams(**default_probe_params())
    slice_set, slice_time = train(loaded, Path(params.treebank), params, "slice")
    full_params = params.model_copy(update={"limit": args.full_limit})
    full_set, full_time = train(loaded, FULL_TRAIN, full_params, "full subset")
    dev = read_conllu(FULL_DEV)
    dev_features = compute_word_features(loaded, dev, max_tokens=512)
    full_uuas = evaluate_probes(dev_features, full_set.weights)["layers"]
    slice_uuas = evaluate_probes(dev_features, slice_set.weights)["layers"]
    report(loaded, params, full_uuas, slice_uuas, full_time, slice_time, len(dev))


def report(
    loaded: LoadedModel,
    params: TrainProbesParams,
    full: dict,
    sliced: dict,
    full_time: dict,
    slice_time: dict,
    dev_count: int,
) -> None:
    layers = sorted(full, key=int)
    rows = [
        [
            layer,
            f"{full[layer]['uuas']:.4f}",
            f"{sliced[layer]['uuas']:.4f}",
            f"{sliced[layer]['uuas'] - full[layer]['uuas']:+.4f}",
        ]
        for layer in layers
    ]
    best_full = max(full[layer]["uuas"] for layer in layers)
    best_slice = max(sliced[layer]["uuas"] for layer in layers)
    gap = best_full - best_slice
    verdict = "OK" if gap <= MAX_UUAS_GAP else "TOO LARGE"
    fits = "OK" if slice_time["wall_s"] < MAX_TRAIN_S else "TOO SLOW"
    for row in [["layer", "full subset", "slice", "slice - full"], *rows]:
        print("  ".join(f"{cell:>12}" for cell in row))
    print(
        f"best layer UUAS: full {best_full:.4f}, slice {best_slice:.4f}, gap {gap:+.4f} "
        f"({verdict}, target <= {MAX_UUAS_GAP})"
    )
    print(
        f"default set training: {slice_time['wall_s']:.1f} s wall, {slice_time['cpu_s']:.1f} s CPU on "
        f"{torch.get_num_threads()} threads, load {slice_time['load_before']} -> {slice_time['load_after']} "
        f"({fits}, target < {MAX_TRAIN_S:.0f} s); full subset: {full_time['wall_s']:.1f} s wall"
    )
    table = Table(
        [
            "layer",
            f"full subset ({full_time['sentences']:,} sentences)",
            f"slice ({slice_time['sentences']:,} sentences)",
            "slice - full",
        ],
        rows,
        align_right=[False, True, True, True],
    )
    times = Table(
        ["trained on", "sentences", "wall s", "CPU s", "load average (1, 5, 15 min) before -> after"],
        [
            [
                name,
                f"{t['sentences']:,}",
                f"{t['wall_s']:.1f}",
                f"{t['cpu_s']:.1f}",
                f"{t['load_before']} -> {t['load_after']}",
            ]
            for name, t in (("slice (the default set)", slice_time), ("full subset", full_time))
        ],
        align_right=[False, True, True, True, False],
    )
    options = {
        key: value for key, value in params.model_dump().items() if key not in ("treebank", "dev", "name")
    }
    write_report(
        "default_probes",
        f"Dev UUAS of structural probes on {loaded.name}, trained with the default set's options {options} "
        f"(early stopping on the shipped dev slice), evaluated on all {dev_count:,} sentences of UD English "
        f"EWT dev. Best layer: full subset {best_full:.4f}, slice {best_slice:.4f}, gap {gap:+.4f} "
        f"(target <= {MAX_UUAS_GAP}: {verdict}).",
        [table, times],
        notes=[
            "Wall time depends on the machine's load (it may be shared); CPU time is process CPU time of "
            "all threads."
        ],
    )


if __name__ == "__main__":
    main()
