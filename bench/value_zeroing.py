"""Value Zeroing speed: our batched implementation against the slow references, in the same run.

    python -m bench.value_zeroing [--device cpu|cuda] [--model embedded|bert-base-random] [--repeats 5]

References (tests/reference/value_zeroing.py): ``per_layer`` re-runs layer l once per zeroed token (as the
published code does, L x N layer calls); ``full_forward`` runs the whole model once per zeroed (layer, token)
pair (L x N model passes). Prints the median time of each and our speed-up ratios for N = 16, 32, 64, 128.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from functools import partial

import torch
from transformers import BertConfig, BertModel

from app.methods.mixing.value_zeroing import ValueZeroing
from app.modeling.encoding import Encoded, encode
from app.modeling.loading import EMBEDDED, LoadedModel, load_model, wrap_model
from bench.report import Table, write_report
from tests.reference import value_zeroing as reference


def bert_base_random(device: str) -> LoadedModel:
    """bert-base-sized (12 layers, 768 hidden, 12 heads) random weights with the embedded tokenizer."""
    tokenizer = load_model(EMBEDDED, device="cpu").tokenizer
    config = BertConfig(vocab_size=len(tokenizer), attn_implementation="eager")
    return wrap_model(
        BertModel(config), tokenizer, name="bert-base-random", source="random", device=torch.device(device)
    )


def sentence_of(loaded: LoadedModel, tokens: int) -> Encoded:
    """An input of exactly ``tokens`` tokens ([CLS] + words + [SEP])."""
    words = "the quick brown fox jumps over a lazy dog while it rains".split()
    text = " ".join(words[i % len(words)] for i in range(tokens - 2))
    encoded = encode(loaded.tokenizer, text, max_tokens=10_000, device=loaded.device)
    assert encoded.length == tokens, encoded.length
    return encoded


def median_seconds(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        function()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--model", default="embedded", choices=["embedded", "bert-base-random"])
    parser.add_argument("--sizes", default="16,32,64,128")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--reference-repeats", type=int, default=3)
    args = parser.parse_args()
    loaded = (
        load_model(EMBEDDED, device=args.device)
        if args.model == "embedded"
        else bert_base_random(args.device)
    )
    method = ValueZeroing()
    machine = torch.cuda.get_device_name() if args.device == "cuda" else f"{platform.processor() or 'cpu'}"
    print(
        f"model {loaded.name} ({loaded.num_layers} layers, hidden {loaded.hidden_size}) on {args.device}: "
        f"{machine}, {torch.get_num_threads()} threads, torch {torch.__version__}"
    )
    columns = ["N", "ours ms", "per-layer ms", "full-fwd ms", "x per-layer", "x full-fwd"]
    widths = [5, 10, 13, 12, 12, 11]
    print(" ".join(f"{name:>{width}}" for name, width in zip(columns, widths, strict=True)))
    rows = []
    for size in [int(value) for value in args.sizes.split(",")]:
        encoded = sentence_of(loaded, size)
        method.run(loaded, encoded, method.Params(), None)  # warm-up
        ours = median_seconds(partial(method.run, loaded, encoded, method.Params(), None), args.repeats)
        per_layer = median_seconds(partial(reference.per_layer, loaded, encoded), args.reference_repeats)
        full = median_seconds(partial(reference.full_forward, loaded, encoded), args.reference_repeats)
        print(
            f"{size:>5} {ours * 1e3:>10.1f} {per_layer * 1e3:>13.1f} {full * 1e3:>12.1f} "
            f"{per_layer / ours:>11.1f}x {full / ours:>10.1f}x"
        )
        rows.append(
            [size, f"{ours * 1e3:.1f}", f"{per_layer * 1e3:.1f}", f"{full * 1e3:.1f}"]
            + [f"{per_layer / ours:.1f}x", f"{full / ours:.1f}x"]
        )
    write_report(
        "value_zeroing",
        f"Model {loaded.name} ({loaded.num_layers} layers, hidden {loaded.hidden_size}); N tokens per input; "
        f"median of {args.repeats} (ours) and {args.reference_repeats} (references).",
        [Table(columns, rows, align_right=[True] * len(columns))],
        device=args.device,
    )


if __name__ == "__main__":
    main()
