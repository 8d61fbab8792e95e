"""The amnesic check on the embedded model: what does it lose when LEACE erases tree depth at layer L?

    python -m bench.amnesic [--threads 1] [--train 1000] [--dev 400] [--head-train 500] [--out result.json]

Elazar et al., "Amnesic Probing", TACL 2021, with LEACE (Belrose et al., NeurIPS 2023). Structural
probes (Hewitt & Manning, NAACL 2019) are trained on the first ``--train`` sentences of the shared UD EWT
train subset (early stopping on the next 200 train sentences); the depth erasers of every layer are fitted on
the same ``--train`` sentences; a head is fitted on the first ``--head-train`` SST-2 train rows
(``fit_head``). The table is measured on the first ``--dev`` sentences of the EWT dev split and the first
``--dev`` SST-2 dev rows: head accuracy and the UUAS of every later layer with no erasure, LEACE, and a
random erasure of the same rank.
Prints each stage's wall time with the load average (the machine may be shared). Without ``../shared`` it
says so and exits.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import torch

from app.methods.probes.amnesic import amnesic_table
from app.methods.probes.batches import make_batches
from app.methods.probes.erasure import fit_depth_erasers
from app.methods.probes.features import compute_word_features
from app.methods.probes.probe_maps import train_structural_probes
from app.methods.probes.treebank import read_conllu
from app.modeling.heads import fit_head
from app.modeling.loading import EMBEDDED, load_model

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
EWT = DATA / "ud-english-ewt"
SST2 = DATA / "sst2"
MAX_TOKENS = 512
EARLY_STOP = 200


def load() -> str:
    source = Path("/proc/loadavg")
    return " ".join(source.read_text().split()[:3]) if source.is_file() else "?"


def read_sst2(path: Path, limit: int) -> list[tuple[str, int]]:
    with path.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [(row["sentence"].strip(), int(row["label"])) for row in rows[:limit]]


class Clock:
    def __init__(self) -> None:
        self.stages: dict[str, float] = {}

    def run(self, name: str, fn):
        before, start = load(), time.perf_counter()
        value = fn()
        self.stages[name] = time.perf_counter() - start
        print(f"[{name}] {self.stages[name]:.1f} s (load {before} -> {load()})", flush=True)
        return value


def print_table(result: dict) -> None:
    print(
        "\nL  rank | acc none  LEACE  random | mean UUAS drop LEACE  random |"
        " UUAS per later layer none/LEACE/random"
    )
    for row in result["rows"]:
        acc = row["accuracy"]
        cells = "  ".join(
            f"{layer}:{none:.3f}/{leace:.3f}/{rand:.3f}"
            for layer, none, leace, rand in zip(
                row["later_layers"],
                row["uuas"]["none"],
                row["uuas"]["leace"],
                row["uuas"]["random"],
                strict=True,
            )
        )
        drop = row["mean_uuas_drop"]
        drops = "   -       -  " if drop["leace"] is None else f"{drop['leace']:+.4f} {drop['random']:+.4f}"
        print(
            f"{row['layer']}  {row['rank']:>4} | {acc['none']:.4f} {acc['leace']:.4f} {acc['random']:.4f} |"
            f" {drops} | {cells}"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--train", type=int, default=1000)
    parser.add_argument("--dev", type=int, default=400)
    parser.add_argument("--head-train", type=int, default=500)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if not EWT.is_dir() or not SST2.is_dir():
        print(f"Skipped: {DATA} (UD EWT and SST-2) is absent.")
        return
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    clock = Clock()
    loaded = clock.run("load model", lambda: load_model(EMBEDDED, device="cpu"))
    treebank = read_conllu(EWT / "en_ewt-ud-train-subset.conllu", args.train + EARLY_STOP)
    train, stop = treebank[: args.train], treebank[args.train :]
    dev = read_conllu(EWT / "en_ewt-ud-dev.conllu", args.dev)
    train_features = clock.run(
        "train features", lambda: compute_word_features(loaded, train, max_tokens=MAX_TOKENS)
    )
    stop_features = clock.run(
        "stop features", lambda: compute_word_features(loaded, stop, max_tokens=MAX_TOKENS)
    )
    layers = list(range(loaded.num_layers + 1))
    probes = clock.run(
        "train probes",
        lambda: train_structural_probes(
            make_batches(train_features), make_batches(stop_features), layers, loaded.hidden_size, seed=0
        ),
    )
    erasers = clock.run(
        "fit erasers", lambda: fit_depth_erasers(loaded, train, layers, max_tokens=MAX_TOKENS)
    )
    head_rows = read_sst2(SST2 / "train.tsv", args.head_train)
    labelled = read_sst2(SST2 / "dev.tsv", args.dev)
    head = clock.run(
        "fit head",
        lambda: fit_head(
            loaded,
            [t for t, _ in head_rows],
            [str(y) for _, y in head_rows],
            name="sst2-bench",
            params={},
            dev=([t for t, _ in labelled], [str(y) for _, y in labelled]),
        ),
    )
    print(f"head: {head.metrics}")
    last = [time.perf_counter()]

    def progress(done: int, total: int) -> None:
        print(
            f"  table {done}/{total} after {time.perf_counter() - last[0]:.0f} s (load {load()})", flush=True
        )

    result = clock.run(
        "amnesic table",
        lambda: amnesic_table(
            loaded, erasers, dev, probes, head, labelled, max_tokens=MAX_TOKENS, progress=progress
        ),
    )
    for layer, pair in erasers.items():
        print(
            f"eraser {layer}: rank {pair.rank}, "
            f"covariance trace ratio {pair.fit['covariance_trace_ratio']:.4f}"
        )
    print(
        f"fit: tokens {erasers[0].fit['tokens']}, buckets {erasers[0].fit['bucket_counts']}, "
        f"majority {erasers[0].fit['majority_share']:.4f}, skipped {erasers[0].fit['skipped_sentences']}"
    )
    print(f"dev probes (none): { {k: round(v['uuas'], 4) for k, v in result['none']['probes'].items()} }")
    print_table(result)
    print(
        f"\nstages (s): { {k: round(v, 1) for k, v in clock.stages.items()} }; table timings: "
        f"{ {k: round(v, 1) for k, v in result['timings'].items()} }; threads {args.threads}"
    )
    if args.out:
        args.out.write_text(json.dumps({"result": result, "stages": clock.stages}, indent=1))


if __name__ == "__main__":
    main()
