"""Neuron index throughput in one process against Ray model workers, in the same run, on this machine.

    python -m bench.ray_index [--sentences 4000] [--shard-sentences 512] [--batch-size 32] [--repeats 2]

Starts its own Ray head on loopback (as the tests do) with this machine's CPUs, then indexes the same
corpus with the embedded model: in this process (all cores), with one Ray worker holding all cores, and
with two workers of half the cores each; runs are interleaved, the median is reported. Ray times include
starting the workers (each loads the model), reported apart. Peak memory per worker is the largest RSS
seen by a sampler every 0.1 s. Target: one Ray worker >= 90 % of the single process. Then a projection of a
1M-sentence BERT-base index on 8 GPUs, with its assumptions printed beside it.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import torch

from app.data import SAMPLE_CORPUS
from app.jobs.ray.engine import RayEngine
from app.jobs.sharded_index import build_state_sharded
from app.methods.neurons.corpora import plan_batches, read_corpus
from app.methods.neurons.index import build_state
from app.methods.neurons.stats import DEFAULT_K, IndexState
from app.modeling.loading import EMBEDDED, load_model
from app.settings import Settings
from bench.report import Table, write_report

WIKIPEDIA = Path(__file__).resolve().parents[2] / "shared" / "data" / "corpora" / "wikipedia_wikitext2.txt"
TARGET_RATIO = 0.9
# Projection assumptions (stated in the report): BERT-base vs all-MiniLM-L6-v2 FLOPs per token, and a GPU's
# sustained throughput on encoder forward passes with the index's fold (an assumption, not a measurement).
BERT_BASE = {"layers": 12, "hidden": 768, "ffn": 3072}
MINILM = {"layers": 6, "hidden": 384, "ffn": 1536}
ASSUMED_GPU_TFLOPS = 100.0  # sustained bf16 dense on an H100-class GPU: ~10 % of its 990 TFLOP/s peak


def start_head(cpus: int) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    command = [str(Path(sys.executable).parent / "ray"), "start", "--head", "--block", f"--port={port}"]
    command += ["--node-ip-address=127.0.0.1", f"--num-cpus={cpus}", "--num-gpus=0", "--disable-usage-stats"]
    command += ["--include-dashboard=false", f"--temp-dir={temp}"]
    head = subprocess.Popen(
        command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return head, f"127.0.0.1:{port}"


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PeakMemory:
    """Largest RSS of each of the engine's worker processes, sampled every 0.1 s."""

    def __init__(self, engine: RayEngine) -> None:
        self.engine, self.peaks, self._stop = engine, {}, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(0.1):
            for pid in list(self.engine.worker_pids):
                try:
                    rss = psutil.Process(pid).memory_info().rss
                except psutil.NoSuchProcess:
                    continue
                self.peaks[pid] = max(self.peaks.get(pid, 0), rss)


def run_ray(loaded, sentences, batch_size, address, workers, threads, shard):
    settings = Settings(
        ray_address=address, ray_workers=workers, ray_threads_per_worker=threads, ray_shard_sentences=shard
    )
    engine = RayEngine(settings)
    with PeakMemory(engine) as memory:
        start = time.perf_counter()
        state = build_state_sharded(loaded, sentences, runner=engine, k=DEFAULT_K, batch_size=batch_size)
        seconds = time.perf_counter() - start
    return state, seconds, engine.start_seconds, max(memory.peaks.values(), default=0)


def same(a: IndexState, b: IndexState) -> bool:
    return all(
        np.array_equal(x, y) if isinstance(x, np.ndarray) else x == y
        for x, y in zip(a.to_arrays().values(), b.to_arrays().values(), strict=True)
    )


def flops_per_token(shape: dict[str, int], tokens: float) -> float:
    """Forward FLOPs per token: 2 x (attention projections 4h^2 + FFN 2h*f) + attention scores 4*n*h."""
    hidden, ffn = shape["hidden"], shape["ffn"]
    return shape["layers"] * (2 * (4 * hidden * hidden + 2 * hidden * ffn) + 4 * tokens * hidden)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sentences", type=int, default=4000)
    parser.add_argument("--shard-sentences", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--data", type=Path, default=WIKIPEDIA if WIKIPEDIA.exists() else SAMPLE_CORPUS)
    args = parser.parse_args()
    cpus = len(os.sched_getaffinity(0))
    torch.set_num_threads(cpus)
    loaded = load_model(EMBEDDED, device="cpu")
    sentences = read_corpus(args.data, limit=args.sentences)
    shard = args.shard_sentences
    head, address = start_head(cpus)
    import ray

    for _ in range(120):
        try:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
            break
        except (ConnectionError, RuntimeError):
            time.sleep(1)
    modes = {
        "single process": None,
        f"Ray, 1 worker x {cpus} threads": (1, cpus),
        f"Ray, 2 workers x {max(1, cpus // 2)} threads": (2, max(1, cpus // 2)),
    }
    times = {name: [] for name in modes}
    starts = {name: [] for name in modes}
    peaks, equal = {}, {}
    try:
        reference = build_state(
            loaded, sentences, k=DEFAULT_K, batch_size=args.batch_size
        )  # warm-up, reference
        for _ in range(args.repeats):
            for name, workers in modes.items():
                if workers is None:
                    start = time.perf_counter()
                    build_state(loaded, sentences, k=DEFAULT_K, batch_size=args.batch_size)
                    times[name].append(time.perf_counter() - start)
                    continue
                state, seconds, started, peak = run_ray(
                    loaded, sentences, args.batch_size, address, *workers, shard
                )
                times[name].append(seconds)
                starts[name].append(started)
                peaks[name] = max(peaks.get(name, 0), peak)
                equal[name] = same(state, reference) if workers[1] == cpus else None
                print(name, f"{seconds:.1f} s", flush=True)
    finally:
        ray.shutdown()
        os.killpg(head.pid, signal.SIGTERM)
        head.wait(60)
    single = statistics.median(times["single process"])
    rows = []
    for name in modes:
        seconds = statistics.median(times[name])
        started = statistics.median(starts[name]) if starts[name] else 0.0
        rows.append(
            [
                name,
                f"{seconds:.1f}",
                f"{len(sentences) / seconds:.0f}",
                f"{single / seconds:.2f}",
                f"{started:.1f}" if starts[name] else "-",
                f"{len(sentences) / (seconds - started):.0f}" if starts[name] else "-",
                f"{peaks[name] / 2**20:.0f}" if name in peaks else "-",
                {True: "yes", False: "NO", None: "(other thread count)"}.get(equal.get(name), "-"),
            ]
        )
    table = Table(
        [
            "run",
            "wall s",
            "sentences/s",
            "x single process",
            "worker start s",
            "sentences/s after start",
            "peak RSS per worker MiB",
            "byte-equal to single process",
        ],
        rows,
        align_right=[False, True, True, True, True, True, True, False],
    )
    one_worker = rows[1]
    ratio = single / statistics.median(times[list(modes)[1]])
    plan = plan_batches(loaded, sentences, args.batch_size, None)
    tokens = float(np.mean([len(ids) for ids in plan.token_ids]))
    per_worker_rate = len(sentences) / (
        statistics.median(times[list(modes)[1]]) - statistics.median(starts[list(modes)[1]])
    )
    base_cost = flops_per_token(BERT_BASE, tokens) / flops_per_token(MINILM, tokens)
    cpu_base_rate = per_worker_rate / base_cost
    gpu_rate = ASSUMED_GPU_TFLOPS * 1e12 / (flops_per_token(BERT_BASE, tokens) * tokens)
    million = 1_000_000
    projection = Table(
        ["workers", "BERT-base sentences/s per worker", "1M sentences", "basis"],
        [
            [
                f"8 CPU workers like this one ({cpus} threads)",
                f"{cpu_base_rate:.0f}",
                f"{million / (8 * cpu_base_rate) / 3600:.1f} h",
                "measured rate / FLOPs ratio",
            ],
            [
                "8 GPUs (one worker each)",
                f"{gpu_rate:.0f}",
                f"{million / (8 * gpu_rate):.0f} s",
                f"assumed {ASSUMED_GPU_TFLOPS:.0f} TFLOP/s sustained",
            ],
        ],
    )
    steady = float(one_worker[5]) / (len(sentences) / single)
    notes = [
        f"One Ray worker reaches {ratio:.2f} of the single process's throughput over the whole job (target "
        ">= "
        f"{TARGET_RATIO}: {'met' if ratio >= TARGET_RATIO else 'NOT met'}), {steady:.2f} once its workers "
        f"have started: starting them (process, imports, model load, weight check) costs {one_worker[4]} s "
        "per job, paid once, which a corpus of this size does not amortise. The rest is the per-shard cost: "
        "a fresh state per shard, its transfer, and the join in the server, on the same two cores here.",
        f"Projection: the corpus averages {tokens:.1f} tokens per sentence; BERT-base costs {base_cost:.1f}x "
        f"all-MiniLM-L6-v2 per token ({flops_per_token(BERT_BASE, tokens) / 1e9:.2f} vs "
        f"{flops_per_token(MINILM, tokens) / 1e9:.2f} GFLOP). CPU rows scale the measured per-worker rate by "
        "that ratio. The GPU row is a FLOP model only, so an upper bound: it assumes each GPU sustains "
        f"{ASSUMED_GPU_TFLOPS:.0f} TFLOP/s on the encoder (about a tenth of an H100's bf16 peak) and that "
        "the index's fold keeps >= 80 % of plain forward throughput, as bench/gpu.py checks on a GPU; shards "
        "are large enough that the object store and the join in the server are not the limit. No GPU was "
        "used here.",
    ]
    write_report(
        "ray_index",
        f"Embedded all-MiniLM-L6-v2, {len(sentences)} sentences of {args.data.name}, "
        f"batch {args.batch_size}, k={DEFAULT_K}, shards of {shard} sentences, median of {args.repeats}.",
        [table, projection],
        notes,
    )


if __name__ == "__main__":
    main()
