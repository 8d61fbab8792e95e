"""Neuron index throughput against plain batched forward passes, in the same run.

    python -m bench.neurons [--sentences 1000] [--batch-size 32] [--repeats 3] [--data FILE] [--threads N]

All three modes tokenise the corpus and run the same length-sorted batches through the bare embedded encoder:
``forward`` with no hooks, ``index`` building the full activation index (top-k, statistics, histograms) in
memory, ``index+store`` building it through a temporary SQLite store (sentences, checkpoints, finish with the
per-neuron summaries). Runs are interleaved and the median of ``--repeats`` is reported; the target is an
index throughput of at least 80% of the plain forward throughput. Process CPU time is printed beside wall
time: on a busy shared machine it is the steadier of the two.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
import time
from pathlib import Path

import torch

from app.data import SAMPLE_CORPUS
from app.jobs.neurons import index_corpus
from app.methods.neurons.corpora import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_TOKENS,
    plan_batches,
    read_corpus,
)
from app.methods.neurons.index import DEFAULT_CHECKPOINT_EVERY, build_state, run_encoder
from app.methods.neurons.stats import DEFAULT_K
from app.modeling.loading import EMBEDDED, load_model
from app.store.db import make_engine
from app.store.neurons import NeuronStore
from bench.report import Table, write_report

WIKIPEDIA = Path(__file__).resolve().parents[2] / "shared" / "data" / "corpora" / "wikipedia_wikitext2.txt"
DEFAULT_SENTENCES = 1000
DEFAULT_REPEATS = 3
TARGET_RATIO = 0.8


def synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def plain_forward(loaded, sentences, batch_size, max_tokens):
    plan = plan_batches(loaded, sentences, batch_size, max_tokens)
    with torch.inference_mode():
        for batch in plan.batches():
            run_encoder(loaded, batch)


def index_in_memory(loaded, sentences, batch_size, max_tokens):
    build_state(loaded, sentences, k=DEFAULT_K, batch_size=batch_size, max_tokens=max_tokens)


def index_with_store(loaded, sentences, batch_size, max_tokens):
    with tempfile.TemporaryDirectory() as directory:
        engine = make_engine(f"sqlite:///{Path(directory) / 'bench.db'}")
        index_corpus(
            loaded,
            NeuronStore(engine),
            "bench",
            "bench",
            sentences,
            k=DEFAULT_K,
            batch_size=batch_size,
            max_tokens=max_tokens,
            checkpoint_every=DEFAULT_CHECKPOINT_EVERY,
        )
        engine.dispose()


MODES = {"forward": plain_forward, "index": index_in_memory, "index+store": index_with_store}


def load_sentences(data: Path | None, count: int) -> tuple[list[str], str]:
    """``count`` sentences and a note saying where they came from (repeated when the file is short)."""
    note = ""
    if data is None:
        data = WIKIPEDIA if WIKIPEDIA.is_file() else SAMPLE_CORPUS
        if data == SAMPLE_CORPUS:
            note = f" ({WIKIPEDIA.name} is absent: using the shipped sample corpus)"
    sentences = read_corpus(data, limit=count)
    if len(sentences) < count:
        note += f" (its {len(sentences)} sentences repeated to reach {count})"
        sentences = list(itertools.islice(itertools.cycle(sentences), count))
    return sentences, f"{data.name}{note}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--sentences", type=int, default=DEFAULT_SENTENCES)
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument("--max-tokens", type=int, default=DEFAULT_MAX_TOKENS)
    parser.add_argument("--repeats", type=int, default=DEFAULT_REPEATS)
    parser.add_argument("--data", type=Path, default=None, help="one sentence per line (default: Wikipedia)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    loaded = load_model(EMBEDDED, device=args.device)
    sentences, origin = load_sentences(args.data, args.sentences)
    plain_forward(loaded, sentences[: args.batch_size], args.batch_size, args.max_tokens)  # warm-up
    wall: dict[str, list[float]] = {mode: [] for mode in MODES}
    cpu: dict[str, list[float]] = {mode: [] for mode in MODES}
    for _ in range(args.repeats):  # interleaved, so that load changes hit every mode alike
        for mode, run in MODES.items():
            synchronize()
            start, start_cpu = time.perf_counter(), time.process_time()
            run(loaded, sentences, args.batch_size, args.max_tokens)
            synchronize()
            wall[mode].append(time.perf_counter() - start)
            cpu[mode].append(time.process_time() - start_cpu)
    print(
        f"Neuron index on {loaded.name} ({args.device}, {torch.get_num_threads()} threads): "
        f"{len(sentences)} sentences from {origin}, batch {args.batch_size}, max {args.max_tokens} tokens, "
        f"k {DEFAULT_K}, median of {args.repeats}"
    )
    plain, plain_cpu = statistics.median(wall["forward"]), statistics.median(cpu["forward"])
    print(
        f"{'mode':<12} {'seconds':>8} {'sentences/s':>12} {'vs forward':>11} {'cpu s':>8} {'cpu vs fwd':>11}"
    )
    for mode in MODES:
        seconds, cpu_seconds = statistics.median(wall[mode]), statistics.median(cpu[mode])
        print(
            f"{mode:<12} {seconds:8.2f} {len(sentences) / seconds:12.1f} {plain / seconds:10.1%} "
            f"{cpu_seconds:8.2f} {plain_cpu / cpu_seconds:10.1%}"
        )
    print(f"target: index throughput >= {TARGET_RATIO:.0%} of forward")
    print(
        "(cpu = process CPU time of all threads, tokenizer and waiting thread pools included: steadier than "
        "wall time on a busy machine, but the target is judged on wall time)"
    )
    write_docs_table(args, len(sentences), origin, wall, cpu)


def write_docs_table(args, count: int, origin: str, wall: dict, cpu: dict) -> None:
    """The docs' table: sentences/s of each mode and its share of the plain forward throughput."""
    rate = {mode: count / statistics.median(wall[mode]) for mode in MODES}
    share = {mode: statistics.median(cpu["forward"]) / statistics.median(cpu[mode]) for mode in MODES}
    header = ["sentences", "threads", "repeats", "forward sent/s", "index sent/s (vs forward)"]
    header += ["index + SQLite store sent/s (vs forward)"]
    row = [f"{count:,}", torch.get_num_threads(), args.repeats, f"{rate['forward']:.1f}"]
    row += [f"{rate[mode]:.1f} ({rate[mode] / rate['forward']:.1%})" for mode in ("index", "index+store")]
    write_report(
        "neurons",
        f"Embedded model, sentences of {origin}, batch {args.batch_size}, at most {args.max_tokens} tokens, "
        f"k = {DEFAULT_K}; medians of the interleaved repeats.",
        [Table(header, [row], align_right=[True] * len(header))],
        [
            f"Target: index throughput >= {TARGET_RATIO:.0%} of forward (wall time). By process CPU time: "
            f"index {share['index']:.1%}, index + store {share['index+store']:.1%} of forward."
        ],
        device=args.device,
    )


if __name__ == "__main__":
    main()
