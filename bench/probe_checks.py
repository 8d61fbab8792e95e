"""A probe set as the ``train_probes`` job trains it by default, on the shared EWT data, every check on.

Train: the shared EWT train subset (4,276 sentences). Dev (early stopping, reported metrics): the EWT dev
split without its ``reviews`` documents; second treebank: the 554 ``reviews`` sentences of the dev split, a
genre the dev metrics never saw. Options: the job's defaults (all layers, rank 128, 3 seeds, tree topological
curves, selectivity), plus, unless ``--no-amnesic``, the amnesic check scoring a head fitted on the first
``--head-train`` rows of SST-2 train on SST-2 dev. Prints the time of every stage and writes every table
the Probes page shows to ``docs/benchmarks/probe_checks[_seed<N>].md``.

    python -m bench.probe_checks --threads 2 [--seed 0] [--no-amnesic]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from app.figures.probe_checks import probe_check_sections
from app.figures.probe_set import probe_summary_table
from app.jobs.probes import TrainProbesParams, train_options
from app.methods.evaluation.texts import read_labelled
from app.methods.probes.pipeline import AmnesicInputs, train_probe_set
from app.methods.probes.treebank import TreeSentence, read_conllu
from app.modeling.heads import fit_head
from app.modeling.loading import EMBEDDED, load_model
from bench.report import Table, write_report

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
EWT = DATA / "ud-english-ewt"
SST2 = DATA / "sst2"
SECOND_GENRE = "reviews"
MAX_TOKENS = 512


def load() -> str:
    source = Path("/proc/loadavg")
    return " ".join(source.read_text().split()[:3]) if source.is_file() else "?"


def genre(sentence: TreeSentence) -> str:
    return sentence.sent_id.split("-", 1)[0]


def as_table(table: dict, caption: str = "") -> Table:
    return Table(table["columns"], table["rows"], caption)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0, help="first seed (the job's seed param)")
    parser.add_argument("--no-amnesic", action="store_true", help="skip the amnesic check")
    parser.add_argument("--head-train", type=int, default=2000, help="SST-2 train rows for the head")
    args = parser.parse_args()
    if not EWT.is_dir() or (not args.no_amnesic and not SST2.is_dir()):
        print(f"skipped: {DATA} (UD English EWT, SST-2) is absent")
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.threads:
        torch.set_num_threads(args.threads)
    loaded = load_model(EMBEDDED, device="cpu")
    train = read_conllu(EWT / "en_ewt-ud-train-subset.conllu")
    whole_dev = read_conllu(EWT / "en_ewt-ud-dev.conllu")
    dev = [sentence for sentence in whole_dev if genre(sentence) != SECOND_GENRE]
    second = [sentence for sentence in whole_dev if genre(sentence) == SECOND_GENRE]
    params = TrainProbesParams(
        treebank=str(EWT / "en_ewt-ud-train-subset.conllu"),
        dev=str(EWT / "en_ewt-ud-dev.conllu"),
        seed=args.seed,
        amnesic=not args.no_amnesic,
    )
    amnesic = None
    head_s = 0.0
    if params.amnesic:
        clock = time.perf_counter()
        texts, labels = read_labelled(SST2 / "train.tsv", "sentence", "label", args.head_train)
        dev_texts, dev_labels = read_labelled(SST2 / "dev.tsv", "sentence", "label")
        head = fit_head(loaded, texts, labels, name="sst2", params={}, dev=(dev_texts, dev_labels))
        head_s = time.perf_counter() - clock
        print(f"head fitted in {head_s:.1f} s: {head.metrics}", flush=True)
        amnesic = AmnesicInputs(head, list(zip(dev_texts, dev_labels, strict=True)))
    before, wall, last = load(), time.perf_counter(), [0.0]

    def progress(done: int, total: int) -> None:
        if time.perf_counter() - last[0] > 30:
            last[0] = time.perf_counter()
            print(f"  {done / total:.0%} after {last[0] - wall:.0f} s (load {load()})", flush=True)

    trained = train_probe_set(
        loaded,
        train,
        dev,
        train_options(params),
        max_tokens=MAX_TOKENS,
        progress=progress,
        second=second,
        amnesic=amnesic,
    )
    wall_s = time.perf_counter() - wall
    metrics = trained.metrics
    metrics["second"]["name"] = f"EWT dev, {SECOND_GENRE}"
    timings = metrics["timings"]
    stages = [[name.removesuffix("_s"), f"{seconds:.1f}"] for name, seconds in timings.items()]
    default_s = sum(value for key, value in timings.items() if key != "amnesic_s")
    stages += [["all but the amnesic check", f"{default_s:.1f}"], ["all (wall)", f"{wall_s:.1f}"]]
    if head_s:
        stages.append(["fitting the SST-2 head (before the run, not part of it)", f"{head_s:.1f}"])
    print(f"done in {wall_s:.1f} s; load {before} -> {load()}; stages {timings}", flush=True)
    tables = [
        Table(["stage", "seconds"], stages, f"Time per stage (load average {before} before, {load()} after)"),
        as_table(probe_summary_table(metrics), "Dev metrics per layer, mean ± std over the seeds"),
    ]
    notes = []
    for section in probe_check_sections(metrics, metrics["second"]["name"]):
        tables.append(as_table(section["table"], f"**{section['title']}**"))
        notes += section["reading"]
    setup = (
        f"Embedded model; train {len(train)} sentences (shared EWT train subset); dev {len(dev)} sentences "
        f"(EWT dev without `{SECOND_GENRE}`); second treebank {len(second)} sentences "
        f"(EWT dev `{SECOND_GENRE}`); "
        f"the job's default options, first seed {args.seed}"
        + (
            f"; amnesic check scoring a head fitted on {args.head_train} SST-2 train rows, on SST-2 dev."
            if amnesic
            else "."
        )
        + f" `python -m bench.probe_checks --threads {args.threads} --seed {args.seed}"
        + (" --no-amnesic`" if args.no_amnesic else "`")
    )
    name = "probe_checks" + ("_no_amnesic" if args.no_amnesic else "")
    name += "" if args.seed == 0 else f"_seed{args.seed}"
    print(write_report(name, setup, tables, notes))


if __name__ == "__main__":
    main()
