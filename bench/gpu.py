"""The GPU check: one script, one table, at most about 8 minutes on one GPU; skips cleanly without one.

    python -m bench.gpu [--quick]

Rows, each measured against its reference in the same run:

1. batched vs unbatched: every batchable method (attention, mixing, neuron panels) from one padded
   micro-batch of 8 sentences of different lengths against each sentence alone, in float32, float16 and
   bfloat16 (stated tolerances: 1e-4, 2e-2 and 1e-1 on normalised maps; half-precision rounding depends on
   the padded shape);
2. Value Zeroing at N = 64 on a bert-base-sized random model: ours against the per-layer reference
   (targets < 50 ms and >= 20x);
3. IBA per sentence against the reference-style implementation (speed-up, rank agreement);
4. neuron index throughput against plain forward passes over the same batches (target >= 80 %);
5. serving throughput with and without micro-batching: 16 clients on a real server (target >= 3x).

The table goes to docs/benchmarks/gpu.md with the GPU named. Without CUDA it prints why and writes nothing;
``--device cpu`` runs every row on the CPU as a dry run of the script (printed, not written).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from scipy.stats import spearmanr

from app.data import SAMPLE_CORPUS
from app.methods import METHODS
from app.methods.attribution.iba import IbaParams, InformationBottleneck
from app.methods.mixing.value_zeroing import ValueZeroing
from app.methods.neurons.corpora import read_corpus
from app.modeling.encoding import encode
from app.modeling.forward import clean_pass, clean_passes
from app.modeling.loading import EMBEDDED, load_model
from app.modeling.targets import bind_target
from bench.report import Table, write_report

TOLERANCE = {"float32": 1e-4, "float16": 2e-2, "bfloat16": 1e-1}
WIKIPEDIA = Path(__file__).resolve().parents[2] / "shared" / "data" / "corpora" / "wikipedia_wikitext2.txt"


def _texts(count: int) -> list[str]:
    return read_corpus(WIKIPEDIA if WIKIPEDIA.exists() else SAMPLE_CORPUS, limit=count)


DEVICE = "cuda"  # --device cpu runs the same code as a dry run (nothing written)


def _sync() -> None:
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def _seconds(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        _sync()
        start = time.perf_counter()
        function()
        _sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def batched_equality(dtype: str) -> list:
    """Largest |batched - alone| over every batchable method's arrays, 8 sentences in one micro-batch."""
    loaded = load_model(EMBEDDED, device=DEVICE, dtype=dtype)
    texts = sorted(_texts(40), key=len)[::5][:8]  # eight different lengths
    encoded = [encode(loaded.tokenizer, text, max_tokens=512, device=loaded.device) for text in texts]
    batched = clean_passes(loaded, encoded)
    worst, where = 0.0, ""
    for name, method in METHODS.items():
        if not method.batchable:
            continue
        for one, passed in zip(encoded, batched, strict=True):
            alone = method.from_pass(loaded, clean_pass(loaded, one)).to_dict()
            together = method.from_pass(loaded, passed).to_dict()
            for key, value in alone.items():
                gap = _relative_gap(value, together[key])
                if gap > worst:
                    worst, where = gap, f"{name}.{key}"
    limit = TOLERANCE[dtype]
    return [f"batched = unbatched, {dtype}", f"{worst:.1e} ({where})", f"<= {limit:g}", worst <= limit]


def _relative_gap(alone: object, together: object) -> float:
    """max |a - b| / max(1, max |a|) for numeric arrays of equal shape; 0 for anything else (tokens...)."""
    try:
        a, b = np.asarray(alone, dtype=np.float64), np.asarray(together, dtype=np.float64)
    except (TypeError, ValueError):
        return 0.0
    if a.shape != b.shape or not a.size or np.isnan(a).all():
        return 0.0
    return float(np.nanmax(np.abs(a - b)) / max(1.0, float(np.nanmax(np.abs(a)))))


def value_zeroing_speed(repeats: int) -> list[list]:
    from bench.value_zeroing import bert_base_random, sentence_of
    from tests.reference import value_zeroing as reference

    loaded = bert_base_random(DEVICE)
    encoded = sentence_of(loaded, 64)
    method = ValueZeroing()
    method.run(loaded, encoded, method.Params(), None)
    ours = _seconds(partial(method.run, loaded, encoded, method.Params(), None), repeats)
    per_layer = _seconds(partial(reference.per_layer, loaded, encoded), max(1, repeats // 3))
    return [
        ["Value Zeroing, bert-base, N = 64", f"{ours * 1e3:.1f} ms", "< 50 ms", ours < 0.05],
        [
            "Value Zeroing vs per-layer reference",
            f"{per_layer / ours:.1f}x",
            ">= 20x",
            per_layer / ours >= 20,
        ],
    ]


def iba_speed(sentences: int) -> list:
    from tests.reference.iba import iba_reference

    loaded = load_model(EMBEDDED, device=DEVICE)
    params, method = IbaParams(estimator="sentence"), InformationBottleneck()
    ours, theirs, agreement = [], [], []
    for text in _texts(sentences):
        encoded = encode(loaded.tokenizer, text, max_tokens=512, device=loaded.device)
        target = bind_target(loaded, None, encoded)
        _sync()
        start = time.perf_counter()
        scores = method.run(loaded, encoded, params, target).scores
        _sync()
        middle = time.perf_counter()
        reference = iba_reference(loaded, encoded, target, params)
        _sync()
        ours.append(middle - start)
        theirs.append(time.perf_counter() - middle)
        agreement.append(spearmanr(scores, reference.cpu().numpy()).statistic)
    ratio = statistics.median(theirs) / statistics.median(ours)
    return [
        "IBA per sentence vs reference",
        f"{statistics.median(ours) * 1e3:.0f} ms, {ratio:.1f}x, rho >= {min(agreement):.3f}",
        "faster, rho ~ 1",
        ratio > 1 and min(agreement) > 0.95,
    ]


def index_throughput(count: int) -> list:
    from bench.neurons import index_in_memory, plain_forward

    loaded = load_model(EMBEDDED, device=DEVICE)
    texts = _texts(count)
    plain_forward(loaded, texts[:64], 64, None)
    index_in_memory(loaded, texts[:64], 64, None)
    forward = _seconds(partial(plain_forward, loaded, texts, 64, None), 3)
    index = _seconds(partial(index_in_memory, loaded, texts, 64, None), 3)
    ratio = forward / index
    return [
        f"index vs plain forward, {count} sentences",
        f"{ratio:.0%} ({count / index:.0f} sentences/s)",
        ">= 80 %",
        ratio >= 0.8,
    ]


def serving_throughput(seconds: float) -> list:
    from bench.load import run_mode, sentences

    args = SimpleNamespace(clients=16, time_limit=seconds, device=DEVICE, model="embedded")
    texts = sentences(WIKIPEDIA if WIKIPEDIA.exists() else SAMPLE_CORPUS, 4000)
    on, off = run_mode(args, texts, batching=True), run_mode(args, texts, batching=False)
    rate_on, rate_off = len(on.latencies) / on.seconds, len(off.latencies) / off.seconds
    return [
        "serving, 16 clients, micro-batching on vs off",
        f"{rate_on:.0f} vs {rate_off:.0f} req/s ({rate_on / rate_off:.1f}x)",
        ">= 3x",
        rate_on / rate_off >= 3,
    ]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="Fewer repeats and shorter load phases.")
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"], help="cpu: a dry run.")
    args = parser.parse_args()
    global DEVICE
    DEVICE = args.device
    if DEVICE == "cuda" and not torch.cuda.is_available():
        print("bench.gpu: no CUDA device here; nothing measured, nothing written (run it on a GPU).")
        return 0
    started = time.perf_counter()
    rows = [batched_equality(dtype) for dtype in TOLERANCE]
    rows += value_zeroing_speed(5 if args.quick else 15)
    rows.append(iba_speed(5 if args.quick else 10))
    rows.append(index_throughput(1000 if args.quick else 4000))
    rows.append(serving_throughput(20.0 if args.quick else 60.0))
    table = Table(
        ["check", "measured", "target", "met"],
        [[check, measured, target, "yes" if met else "NO"] for check, measured, target, met in rows],
    )
    print(table.markdown())
    if DEVICE != "cuda":
        print("(dry run on the CPU: the figures are not GPU figures; nothing written)")
        return 0
    write_report(
        "gpu",
        "Embedded all-MiniLM-L6-v2 unless stated; the whole check took "
        f"{time.perf_counter() - started:.0f} s.",
        [table],
        device="cuda",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
