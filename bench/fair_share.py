"""Fair share under load: cheap requests while clients send the costliest LIME requests the budget admits.

    python -m bench.fair_share [--cheap-clients 16] [--slow-clients 4] [--requests 160] [--device cpu|cuda]

Starts its own ``bertscope serve`` on loopback (fresh SQLite store, micro-batching on, no start-up jobs, the
per-client limit raised because every client here shares one address). Phase 1 (unloaded): ``--cheap-clients``
threads send raw-attention requests, each on a different sentence, and their latencies are recorded. Phase 2
(loaded): ``--slow-clients`` threads keep sending LIME requests sized to the per-request budget (samples =
budget / tokens - 1, batch size 64), and once they hold the model the cheap clients send the same number of
attention requests again. Reports p50/p95 of the cheap requests in both phases and their ratio, how many
LIME requests finished, and how often the model lock changed hands between batches.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from bench.load import WIKIPEDIA, sentences, start_server
from bench.report import Table, write_report

TARGET = {"kind": "zero_shot", "labels": ["good", "bad"]}
SLOW_TEXT = " ".join(["The committee approved the new budget after a long debate about the schools."] * 4)


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def cheap_phase(base: str, texts: list[str], clients: int) -> list[float]:
    """Latencies (s) of one attention request per text, sent by ``clients`` threads."""

    def one(text: str) -> float:
        with httpx.Client(base_url=base, timeout=600) as client:
            clock = time.perf_counter()
            response = client.post("/api/analyses", json={"method": "attention", "text": text})
            response.raise_for_status()
            return time.perf_counter() - clock

    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(one, texts))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cheap-clients", type=int, default=16)
    parser.add_argument("--slow-clients", type=int, default=4)
    parser.add_argument("--requests", type=int, default=320, help="cheap requests per phase")
    parser.add_argument("--budget", type=int, default=1_000_000, help="BERTSCOPE_MAX_REQUEST_COST")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model", default="embedded")
    args = parser.parse_args()
    if not WIKIPEDIA.is_file():
        print(f"skipped: {WIKIPEDIA} is absent")
        return
    texts = sentences(WIKIPEDIA, 2 * args.requests + 8)
    env = {
        "BERTSCOPE_MAX_REQUESTS_PER_CLIENT": "64",
        "BERTSCOPE_MAX_REQUEST_COST": str(args.budget),
        "BERTSCOPE_TRAIN_PROBES_ON_START": "false",
    }
    with tempfile.TemporaryDirectory() as tmp:
        process, base = start_server(Path(tmp), True, args.device, args.model, env)
        try:
            with httpx.Client(base_url=base, timeout=600) as client:
                for text in texts[:8]:
                    client.post(
                        "/api/analyses", json={"method": "attention", "text": text}
                    ).raise_for_status()
                tokens = len(
                    client.post("/api/analyses", json={"method": "attention", "text": SLOW_TEXT}).json()[
                        "tokens"
                    ]
                )
            samples = args.budget // tokens - 1
            unloaded = cheap_phase(base, texts[8 : 8 + args.requests], args.cheap_clients)
            stop, finished, seeds = threading.Event(), [], itertools.count()

            def slow_client() -> None:
                with httpx.Client(base_url=base, timeout=3600) as client:
                    while not stop.is_set():
                        params = {"samples": samples, "batch_size": 64, "seed": next(seeds)}
                        body = {"method": "lime", "text": SLOW_TEXT, "params": params, "target": TARGET}
                        try:
                            response = client.post("/api/analyses", json=body)
                        except httpx.HTTPError:  # the server is stopped under it at the end
                            return
                        response.raise_for_status()
                        finished.append(response.json()["id"])

            slow = [threading.Thread(target=slow_client, daemon=True) for _ in range(args.slow_clients)]
            for thread in slow:
                thread.start()
            time.sleep(3.0)  # the LIME requests are inside their batches
            clock = time.perf_counter()
            loaded = cheap_phase(base, texts[8 + args.requests : 8 + 2 * args.requests], args.cheap_clients)
            loaded_s = time.perf_counter() - clock
            stop.set()
            handovers = httpx.get(f"{base}/api/model", timeout=30).json()["fair_share"]
        finally:
            process.kill()  # the LIME requests still running would hold a graceful shutdown for minutes
            process.wait(60)
    rows = [
        ["unloaded", str(len(unloaded)), f"{quantile(unloaded, 0.5):.0f}", f"{quantile(unloaded, 0.95):.0f}"],
        [
            "4 LIME clients at the budget",
            str(len(loaded)),
            f"{quantile(loaded, 0.5):.0f}",
            f"{quantile(loaded, 0.95):.0f}",
        ],
    ]
    ratio = quantile(loaded, 0.95) / quantile(unloaded, 0.95)
    notes = [
        f"p95 loaded / unloaded: {ratio:.2f} (target: under 3). LIME requests: {samples} samples on "
        f"{tokens} tokens each (cost {(samples + 1) * tokens:,} of the budget {args.budget:,}); "
        f"{len(finished)} finished during the {loaded_s:.0f} s of the loaded phase; model lock handed over "
        f"between batches {handovers.get('handovers', '?')} times.",
        f"Mean cheap latency: unloaded {statistics.mean(unloaded) * 1000:.0f} ms, loaded "
        f"{statistics.mean(loaded) * 1000:.0f} ms.",
    ]
    setup = (
        f"{args.cheap_clients} clients sending raw-attention requests (a different Wikipedia sentence each), "
        f"alone and while {args.slow_clients} clients send LIME requests sized to the per-request budget; "
        f"micro-batching on; {args.model} model on {args.device}. `python -m bench.fair_share`"
    )
    table = Table(["phase", "cheap requests", "p50 ms", "p95 ms"], rows, "Attention latency")
    print(write_report("fair_share", setup, [table], notes))


if __name__ == "__main__":
    main()
