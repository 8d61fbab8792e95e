"""Load test: 16 concurrent HTTP clients against a real ``bertscope serve`` on loopback, batching on and off.

    python -m bench.load [--clients 16] [--requests 320] [--time-limit 240] [--device cpu|cuda] [--data FILE]

For each mode the script starts its own server (fresh SQLite store, no start-up indexing), warms it up, then
lets ``--clients`` threads send a fixed, mixed sequence of analyses: mostly methods whose forward pass the
micro-batcher can share (raw attention, attention rollout, attention norms, ALTI) and some that keep the
model to themselves (gradient x input). Every request uses a different sentence, so none is a cache hit.
Both modes send the identical sequence. It reports throughput, p50/p95/p99 latency, errors, and the server's
resident memory at the start, the end and its peak (sampled every half second), then the throughput ratio.
Finally it measures the cache: the same Integrated Gradients request twice, miss vs hit.
Bounded: at most ``--requests`` requests and ``--time-limit`` seconds per mode.
"""

from __future__ import annotations

import argparse
import itertools
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.report import Table, write_report
from tests.server import free_port

WIKIPEDIA = Path(__file__).resolve().parents[2] / "shared" / "data" / "corpora" / "wikipedia_wikitext2.txt"
MIX = [
    "attention",
    "attention_rollout",
    "attention",
    "attention_norm",
    "attention",
    "alti",
    "attention_rollout",
    "gradient_x_input",
]


@dataclass
class Outcome:
    """What one mode measured."""

    mode: str
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)
    batching: dict = field(default_factory=dict)
    cache: str = ""

    def quantile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else float("nan")


def sentences(path: Path, count: int) -> list[str]:
    """Distinct sentences of 5..60 words from a one-sentence-per-line corpus."""
    seen: dict[str, None] = {}
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            text = line.strip()
            if 5 <= len(text.split()) <= 60 and "=" not in text:
                seen[text] = None
                if len(seen) == count:
                    break
    if len(seen) < count:
        raise SystemExit(f"{path} has only {len(seen)} usable sentences; {count} are needed.")
    return list(seen)


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MiB (Linux /proc)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def start_server(
    directory: Path, batching: bool, device: str, model: str, extra_env: dict[str, str] | None = None
) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "BERTSCOPE_INDEX_SAMPLE_ON_START": "false",
        "BERTSCOPE_BATCHING": str(batching).lower(),
        **(extra_env or {}),
    }
    command = [sys.executable, "-m", "app.cli", "serve", "--model", model, "--device", device]
    command += ["--port", str(port), "--database-url", f"sqlite:///{directory / 'store.db'}"]
    log = open(directory / "server.log", "w")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited; see {directory / 'server.log'}")
        try:
            if httpx.get(f"{base}/api/health", timeout=2).status_code == 200:
                return process, base
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    process.kill()
    raise SystemExit("server did not become healthy in 300 s")


def run_mode(args, texts: list[str], batching: bool) -> Outcome:
    outcome = Outcome("batching on" if batching else "batching off")
    with tempfile.TemporaryDirectory() as tmp:
        process, base = start_server(Path(tmp), batching, args.device, args.model)
        try:
            with httpx.Client(base_url=base, timeout=120) as warm:
                for method in dict.fromkeys(MIX):
                    warm.post("/api/analyses", json={"method": method, "text": f"Warm up {method} please."})
            work: queue.Queue[tuple[str, str]] = queue.Queue()
            for method, text in zip(itertools.cycle(MIX), texts, strict=False):
                work.put((method, text))
            stop = threading.Event()
            sampler = threading.Thread(target=sample_memory, args=(process.pid, outcome, stop), daemon=True)
            sampler.start()
            deadline = time.monotonic() + args.time_limit
            start = time.perf_counter()
            clients = [
                threading.Thread(target=client, args=(base, work, outcome, deadline))
                for _ in range(args.clients)
            ]
            for thread in clients:
                thread.start()
            for thread in clients:
                thread.join()
            outcome.seconds = time.perf_counter() - start
            stop.set()
            sampler.join()
            outcome.batching = httpx.get(f"{base}/api/model", timeout=30).json().get("batching", {})
            if batching:
                outcome.cache = cache_check(base)
        finally:
            process.terminate()
            process.wait(timeout=30)
    return outcome


def client(base: str, work: queue.Queue, outcome: Outcome, deadline: float) -> None:
    with httpx.Client(base_url=base, timeout=300) as http:
        while time.monotonic() < deadline:
            try:
                method, text = work.get_nowait()
            except queue.Empty:
                return
            started = time.perf_counter()
            try:
                response = http.post(
                    "/api/analyses", params={"include_result": "false"}, json={"method": method, "text": text}
                )
                ok = response.status_code == 201 and not response.json()["cached"]
                error = None if ok else f"{method}: {response.status_code} {response.text[:200]}"
            except httpx.HTTPError as exc:
                error = f"{method}: {exc.__class__.__name__}: {exc}"
            if error:
                outcome.errors.append(error)
            else:
                outcome.latencies.append(time.perf_counter() - started)


def sample_memory(pid: int, outcome: Outcome, stop: threading.Event) -> None:
    while not stop.is_set():
        outcome.rss_mb.append(rss_mb(pid))
        stop.wait(0.5)
    outcome.rss_mb.append(rss_mb(pid))


def cache_check(base: str) -> str:
    body = {"method": "integrated_gradients", "text": "The cache should answer this one the second time."}
    with httpx.Client(base_url=base, timeout=300) as http:
        started = time.perf_counter()
        first = http.post("/api/analyses", params={"include_result": "false"}, json=body).json()
        miss = time.perf_counter() - started
        hits = []
        for _ in range(20):
            started = time.perf_counter()
            again = http.post("/api/analyses", params={"include_result": "false"}, json=body).json()
            hits.append(time.perf_counter() - started)
    hit = statistics.median(hits)
    assert not first["cached"] and again["cached"] and first["id"] == again["id"]
    line = f"cache: miss {miss * 1000:.1f} ms, hit (median of 20) {hit * 1000:.2f} ms"
    line += f" -> hit {miss / hit:.0f}x faster"
    print(line)
    return line


def quarters(samples: list[float]) -> list[float]:
    """The samples at 0, 25, 50, 75 and 100% of the run (memory growth that levels off vs a leak)."""
    last = len(samples) - 1
    return [samples[round(last * q)] for q in (0, 0.25, 0.5, 0.75, 1.0)]


def report(outcomes: list[Outcome], args: argparse.Namespace) -> None:
    columns = ["mode", "requests", "errors", "seconds", "req/s", "p50 ms", "p95 ms", "p99 ms"]
    columns += ["RSS MiB at 0/25/50/75/100% of the run", "batches"]
    print("| " + " | ".join(columns) + " |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for o in outcomes:
        rate = len(o.latencies) / o.seconds if o.seconds else 0.0
        memory = " / ".join(f"{value:.0f}" for value in quarters(o.rss_mb)) if o.rss_mb else "n/a"
        stats = o.batching
        batches = (
            f"{stats.get('batches')} (mean {stats.get('mean_size')}, max {stats.get('largest')})"
            if stats.get("enabled")
            else "-"
        )
        print(
            f"| {o.mode} | {len(o.latencies)} | {len(o.errors)} | {o.seconds:.1f} | {rate:.2f} | "
            f"{o.quantile(0.5):.0f} | {o.quantile(0.95):.0f} | {o.quantile(0.99):.0f} | "
            f"{memory} | {batches} |"
        )
        for error in o.errors[:5]:
            print(f"  error: {error}")
    on, off = outcomes
    ratio = (len(on.latencies) / on.seconds) / (len(off.latencies) / off.seconds)
    print(f"throughput with batching / without: {ratio:.2f}x (target on GPU: >= 3x)")
    write_docs_table(outcomes, args, ratio)


def write_docs_table(outcomes: list[Outcome], args: argparse.Namespace, ratio: float) -> None:
    """The docs' table: one row per mode, with the allocator setting the server ran under."""
    arenas = os.environ.get("MALLOC_ARENA_MAX", "unset (glibc)")
    header = ["MALLOC_ARENA_MAX", "mode", "requests", "errors", "req/s", "p50 ms", "p95 ms", "p99 ms"]
    header += ["RSS MiB at 0/25/50/75/100 % of the run", "batches (mean size, largest)"]
    rows = []
    for o in outcomes:
        stats = o.batching
        batches = (
            f"{stats.get('batches')} ({stats.get('mean_size')}, {stats.get('largest')})"
            if stats.get("enabled")
            else "-"
        )
        memory = " / ".join(f"{value:.0f}" for value in quarters(o.rss_mb)) if o.rss_mb else "n/a"
        rate = len(o.latencies) / o.seconds if o.seconds else 0.0
        rows.append(
            [arenas, o.mode, len(o.latencies), len(o.errors), f"{rate:.2f}", f"{o.quantile(0.5):.0f}"]
            + [f"{o.quantile(0.95):.0f}", f"{o.quantile(0.99):.0f}", memory, batches]
        )
    notes = [f"Throughput with batching / without: {ratio:.2f}x."]
    notes += [
        f"Cache ({outcome.mode}): {outcome.cache.removeprefix('cache: ')}."
        for outcome in outcomes
        if outcome.cache
    ]
    write_report(
        "load",
        f"{args.clients} concurrent HTTP clients against `bertscope serve --model {args.model}` on loopback, "
        f"at most {args.requests} requests per mode, mix {', '.join(dict.fromkeys(MIX))}; every sentence "
        "different (no cache hits).",
        [Table(header, rows, align_right=[False, False] + [True] * 6)],
        notes,
        device=args.device,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=320)
    parser.add_argument("--time-limit", type=float, default=240.0, help="seconds per mode")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--data", type=Path, default=WIKIPEDIA)
    args = parser.parse_args()
    if not args.data.exists():
        raise SystemExit(f"{args.data} not found: pass --data with one sentence per line.")
    texts = sentences(args.data, args.requests)
    print(f"{args.clients} clients, {args.requests} requests per mode, device {args.device}")
    print(f"mix: {MIX}")
    outcomes = [run_mode(args, texts, batching=True), run_mode(args, texts, batching=False)]
    report(outcomes, args)


if __name__ == "__main__":
    main()
