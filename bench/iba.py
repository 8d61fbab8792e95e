"""IBA speed and agreement: ours against the reference-style implementation, in the same run.

    python -m bench.iba [--device cpu|cuda] [--sentences 20] [--data FILE]

The reference (tests/reference/iba.py) runs as the published code does: every weight requires grad and the
whole model runs forward at every step. Ours freezes the weights, runs the blocks below the bottleneck once
and batches the noise samples. Prints seconds per sentence, the speed-up, and Spearman's rho between the two
attributions per sentence (they must agree).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from scipy.stats import spearmanr

from app.data import SAMPLE_CORPUS
from app.methods.attribution.iba import IbaParams, InformationBottleneck, default_layer
from app.methods.evaluation.texts import read_texts
from app.modeling.encoding import encode
from app.modeling.loading import EMBEDDED, load_model
from app.modeling.targets import bind_target
from bench.report import Table, write_report
from tests.reference.iba import iba_reference

SST2_DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "sst2" / "dev.tsv"


def timed(function, *args):
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    value = function(*args)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return value, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--sentences", type=int, default=20)
    parser.add_argument("--data", default=str(SST2_DEV if SST2_DEV.is_file() else SAMPLE_CORPUS))
    args = parser.parse_args()
    loaded = load_model(EMBEDDED, device=args.device)
    texts = read_texts(args.data, limit=args.sentences)
    params = IbaParams(estimator="sentence")  # the published code's estimator, as the reference
    method = InformationBottleneck()
    ours_times, reference_times, agreement = [], [], []
    for text in texts:
        encoded = encode(loaded.tokenizer, text, max_tokens=512, device=loaded.device)
        target = bind_target(loaded, None, encoded)
        ours, ours_seconds = timed(lambda e=encoded, t=target: method.run(loaded, e, params, t).scores)
        reference, reference_seconds = timed(iba_reference, loaded, encoded, target, params)
        ours_times.append(ours_seconds)
        reference_times.append(reference_seconds)
        agreement.append(spearmanr(ours, reference.cpu().numpy()).statistic)
    ours_median, reference_median = statistics.median(ours_times), statistics.median(reference_times)
    print(
        f"IBA on {loaded.name} ({args.device}, {torch.get_num_threads()} threads), "
        f"{len(texts)} sentences from "
        f"{Path(args.data).name}, layer {default_layer(loaded.num_layers)}, {params.steps} steps x "
        f"{params.samples} samples"
    )
    print(f"ours      median {ours_median * 1e3:8.1f} ms/sentence")
    print(f"reference median {reference_median * 1e3:8.1f} ms/sentence")
    print(
        f"speed-up {reference_median / ours_median:.2f}x; Spearman(ours, reference) "
        f"min {min(agreement):.4f}, mean {statistics.mean(agreement):.4f}"
    )
    rows = [
        ["ours", f"{ours_median * 1e3:.1f}", "1.00x"],
        ["reference", f"{reference_median * 1e3:.1f}", f"{reference_median / ours_median:.2f}x"],
    ]
    write_report(
        "iba",
        f"IBA on {loaded.name}, {len(texts)} sentences from {Path(args.data).name}, block "
        f"{default_layer(loaded.num_layers)}, {params.steps} steps x {params.samples} samples (defaults).",
        [
            Table(
                ["implementation", "median ms per sentence", "time vs ours"],
                rows,
                align_right=[False, True, True],
            )
        ],
        [
            f"Spearman's rho between ours and the reference per sentence: min {min(agreement):.4f}, "
            f"mean {statistics.mean(agreement):.4f}."
        ],
        device=args.device,
    )


if __name__ == "__main__":
    main()
