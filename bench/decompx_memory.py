"""DecompX's memory and time on CPU: peak resident memory at N = 128 and 512 tokens, one fresh process each.

    python -m bench.decompx_memory [--tokens 128 512] [--methods decompx decompx_mixing] [--threads 1]

Each measurement runs in its own process (``ru_maxrss`` is a process-lifetime peak): load the embedded model,
run one plain forward pass on the N-token input (the baseline peak), then the method with a zero-shot
target. Prints the peak above the baseline, the size of one decomposition state ([N, N + 1, hidden] float32,
the one tensor DecompX must hold), and the seconds per input against the forward pass. The input is SST-2
dev sentences joined and cut to exactly N word pieces ([CLS] ... [SEP]).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

SST2_DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "sst2" / "dev.tsv"
FALLBACK = "a gripping , funny and deeply moving film that never lets go of its characters ."


def peak_mib() -> float:
    """This process's peak resident memory so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def text_of(tokens: int, loaded) -> object:
    """An Encoded input of exactly ``tokens`` word pieces: SST-2 dev sentences joined, cut, [SEP] kept."""
    from app.modeling.encoding import encode

    lines = SST2_DEV.read_text(encoding="utf-8").splitlines()[1:] if SST2_DEV.exists() else [FALLBACK] * 200
    text = " ".join(line.split("\t")[0] for line in lines[:100])
    long = encode(loaded.tokenizer, text, max_tokens=10**6)
    keep = list(range(tokens - 1)) + [long.length - 1]
    index = torch.tensor(keep)

    def cut(tensor):
        return None if tensor is None else tensor[:, index]

    return dataclasses.replace(
        long,
        input_ids=cut(long.input_ids),
        attention_mask=cut(long.attention_mask),
        token_type_ids=cut(long.token_type_ids),
        tokens=[long.tokens[i] for i in keep],
        word_ids=[long.word_ids[i] for i in keep],
        sequence_ids=[long.sequence_ids[i] for i in keep],
        offsets=[long.offsets[i] for i in keep],
        special=[long.special[i] for i in keep],
    )


def worker(tokens: int, method_name: str, threads: int) -> dict:
    torch.set_num_threads(threads)
    from app.methods import METHODS
    from app.modeling.loading import EMBEDDED, load_model
    from app.modeling.targets import ZeroShotTarget, bind_target

    loaded = load_model(EMBEDDED, device="cpu")
    encoded = text_of(tokens, loaded)
    target = bind_target(loaded, ZeroShotTarget(), encoded)
    loaded_peak = peak_mib()
    start = time.perf_counter()
    with torch.no_grad():
        loaded.adapter.encoder(loaded.model)(**encoded.model_inputs())
    forward_s = time.perf_counter() - start
    baseline = peak_mib()
    method = METHODS[method_name]
    start = time.perf_counter()
    result = method.run(loaded, encoded, method.Params(), target if method.requires == "target" else None)
    seconds = time.perf_counter() - start
    return {
        "method": method_name,
        "tokens": encoded.length,
        "threads": threads,
        "loaded_mib": round(loaded_peak, 1),
        "baseline_mib": round(baseline, 1),
        "peak_mib": round(peak_mib(), 1),
        "above_baseline_mib": round(peak_mib() - baseline, 1),
        "state_mib": round(tokens * (tokens + 1) * loaded.hidden_size * 4 / 2**20, 1),
        "forward_s": round(forward_s, 3),
        "seconds": round(seconds, 2),
        "decomposition_error": getattr(result, "decomposition_error", None),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, nargs="+", default=[128, 512])
    parser.add_argument("--methods", nargs="+", default=["decompx"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--worker", nargs=2, metavar=("TOKENS", "METHOD"))
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(int(args.worker[0]), args.worker[1], args.threads)))
        return
    with open("/proc/loadavg") as handle:
        print(f"load average before: {handle.read().split()[:3]}")
    print("method          N   peak MiB  baseline  above  state MiB  seconds  forward s  x forward")
    for method in args.methods:
        for tokens in args.tokens:
            command = [sys.executable, "-m", "bench.decompx_memory", "--threads", str(args.threads)]
            output = subprocess.run(
                [*command, "--worker", str(tokens), method], capture_output=True, text=True, check=True
            ).stdout
            row = json.loads(output.strip().splitlines()[-1])
            print(
                f"{row['method']:<14} {row['tokens']:>4} {row['peak_mib']:>9} {row['baseline_mib']:>9} "
                f"{row['above_baseline_mib']:>6} {row['state_mib']:>10} {row['seconds']:>8} "
                f"{row['forward_s']:>10} {row['seconds'] / max(row['forward_s'], 1e-9):>10.0f}"
            )
    with open("/proc/loadavg") as handle:
        print(f"load average after: {handle.read().split()[:3]}")


if __name__ == "__main__":
    main()
