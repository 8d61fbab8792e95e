"""DecompX on real sentences: the sum checks on SST-2 dev, and agreement with the full-tensor reference.

    python -m bench.decompx_check [--sentences 20] [--reference 3] [--threads 1]

For each of the first ``--sentences`` SST-2 dev sentences on the embedded model (float32): the largest
|sum of a token's vectors - its real hidden state| over all blocks, relative to the size of the summed terms;
the zero-shot scores' decomposition error; the FFN linearisation diagnostics. Then, for ``--reference``
sentences, the embedded model in float64 against ``tests/reference/decompx.py`` (every step on the full
tensor, each bias split by its own dot products, no hooks, no chunking): the largest difference of the
final decompositions, relative to their size.
"""

from __future__ import annotations

import argparse
import copy
import statistics
from pathlib import Path

import torch

from app.methods import METHODS
from app.methods.decomposition.decompx import decompose
from app.modeling.encoding import encode
from app.modeling.loading import EMBEDDED, load_model
from app.modeling.targets import ZeroShotTarget, bind_target
from tests.reference.decompx import reference_states

SST2_DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "sst2" / "dev.tsv"


def sentences(count: int) -> list[str]:
    lines = SST2_DEV.read_text(encoding="utf-8").splitlines()[1:]
    return [line.split("\t")[0].strip() for line in lines[:count]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sentences", type=int, default=20)
    parser.add_argument("--reference", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    loaded = load_model(EMBEDDED, device="cpu")
    method = METHODS["decompx"]
    relative, score_errors, gaps, ffn_errors, lengths = [], [], [], [], []
    for text in sentences(args.sentences):
        encoded = encode(loaded.tokenizer, text, max_tokens=512)
        result = method.run(loaded, encoded, method.Params(), bind_target(loaded, ZeroShotTarget(), encoded))
        checks = result.checks
        relative.append(max(e / s for e, s in zip(checks["sum_error"], checks["scale"], strict=True)))
        score_errors.append(result.decomposition_error)
        gaps.append(statistics.mean(checks["ffn_component_gap"]))
        ffn_errors.append(max(checks["ffn_sum_error"]))
        lengths.append(encoded.length)
    span = f"{min(lengths)}-{max(lengths)} tokens"
    print(f"{len(lengths)} SST-2 dev sentences, {span}, embedded model, float32")
    print(
        f"  max over blocks |sum - real| / sum|vectors|: max {max(relative):.2e}, median "
        f"{statistics.median(relative):.2e}"
    )
    print(f"  zero-shot |sum of class scores - real cosine|: max {max(score_errors):.2e}")
    print(f"  FFN |sum of linearised outputs - real FFN output|: max {max(ffn_errors):.2e}")
    print(
        f"  FFN component gap sum|act(u) - m u| / sum|m u| (mean over blocks): median "
        f"{statistics.median(gaps):.3f}, range {min(gaps):.3f}-{max(gaps):.3f}"
    )
    double = copy.deepcopy(loaded)
    double.model = double.model.double()
    double.dtype = torch.float64
    for text in sentences(args.reference):
        encoded = encode(double.tokenizer, text, max_tokens=512)
        ours = decompose(double, encoded).state
        theirs = reference_states(double, encoded)[-1]
        size = float(theirs.abs().sum(dim=1).max())
        print(
            f"  float64 vs reference ({encoded.length} tokens): max |difference| / size "
            f"{float((ours - theirs).abs().max()) / size:.2e}"
        )


if __name__ == "__main__":
    main()
