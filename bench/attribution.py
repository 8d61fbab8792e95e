"""What each attribution method costs: time per sentence at N = 32 and 128, as multiples of a forward pass.

Every registered attribution method at its default parameters, on the embedded model, explaining the default
zero-shot target, in one run; the reference is a plain forward pass of the same input (``target.scores``), so
the ratios say how many forward passes' worth of work each method is, independent of the machine.

    python -m bench.attribution [--device cpu|cuda] [--repeats 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from app.methods import METHODS
from app.modeling.loading import EMBEDDED, load_model
from app.modeling.targets import ZeroShotTarget, bind_target
from bench.report import Table, write_report
from bench.value_zeroing import sentence_of

LENGTHS = [32, 128]


def median_seconds(run: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``repeats`` calls after one warm-up call."""
    run()
    times = []
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        run()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def load_average() -> str:
    try:
        with open("/proc/loadavg") as source:
            return " ".join(source.read().split()[:3])
    except OSError:
        return "?"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--methods", help="comma-separated subset (default: every attribution method)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    loaded = load_model(EMBEDDED, device=args.device)
    names = [name for name, method in METHODS.items() if method.kind == "attribution"]
    if args.methods:
        names = [name for name in names if name in args.methods.split(",")]
    before = load_average()
    forward: dict[int, float] = {}
    seconds: dict[tuple[str, int], float] = {}
    for length in LENGTHS:
        encoded = sentence_of(loaded, length)
        target = bind_target(loaded, ZeroShotTarget(), encoded)
        with torch.no_grad():
            forward[length] = median_seconds(
                lambda t=target, e=encoded: t.scores(**e.model_inputs()), args.repeats
            )
        for name in names:
            method = METHODS[name]
            params = method.Params()
            seconds[name, length] = median_seconds(
                lambda m=method, p=params, e=encoded, t=target: m.run(loaded, e, p, t), args.repeats
            )
            print(f"{name} N={length}: {seconds[name, length] * 1000:.1f} ms", flush=True)
    header = ["method"] + [f"N = {n}: ms" for n in LENGTHS] + [f"N = {n}: × forward" for n in LENGTHS]
    rows: list[list[object]] = [
        ["forward pass (reference)"] + [f"{forward[n] * 1000:.1f}" for n in LENGTHS] + ["1"] * len(LENGTHS)
    ]
    for name in sorted(names, key=lambda n: seconds[n, LENGTHS[-1]]):
        rows.append(
            [name]
            + [f"{seconds[name, n] * 1000:.1f}" for n in LENGTHS]
            + [f"{seconds[name, n] / forward[n]:.0f}" for n in LENGTHS]
        )
    setup = (
        f"Embedded model on {args.device}, {torch.get_num_threads()} threads, zero-shot target, every method "
        f"at its default parameters, median of {args.repeats} runs after a warm-up; load average {before} "
        f"before, {load_average()} after. "
        f"`python -m bench.attribution --device {args.device} --repeats {args.repeats}`"
    )
    table = Table(header, rows, align_right=[False] + [True] * (len(header) - 1))
    print(write_report("attribution", setup, [table], device=args.device))


if __name__ == "__main__":
    main()
