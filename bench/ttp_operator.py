"""Tree topological probe pseudo-label operator: vectorised (ours) against the plain loop, same run.

    python -m bench.ttp_operator [--sentences 2000] [--layers 7] [--repeats 5] [--device cpu|cuda]

A batch shaped like one epoch's labelling work: predicted depths for ``layers`` x ``sentences`` padded
sentences of EWT-like lengths (5-50 words). References: the loop as training code usually writes it
(tests/reference/topological.py: per sentence, sort the tensor row, walk its elements, write labels into a
tensor), and the same rule on plain Python floats already taken out of the tensor (the fastest a loop can
be; conversion not timed). Ours labels the whole batch with one sort and a running minimum. Prints median
seconds, speed-ups and whether every label agrees.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from app.methods.probes.topological import pseudo_depths
from bench.report import Table, write_report
from tests.reference.topological import pseudo_depths_loop, pseudo_depths_tensor_loop


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sentences", type=int, default=2000)
    parser.add_argument("--layers", type=int, default=7)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = parser.parse_args()
    generator = torch.Generator().manual_seed(0)
    lengths = torch.randint(5, 51, (args.sentences,), generator=generator)
    width = int(lengths.max())
    predicted = torch.rand(args.layers, args.sentences, width, generator=generator) * 8
    mask = (torch.arange(width)[None, :] < lengths[:, None]).expand(args.layers, -1, -1)
    predicted, mask = predicted.to(args.device), mask.to(args.device)

    def ours() -> torch.Tensor:
        labels = pseudo_depths(predicted, mask)
        if args.device == "cuda":
            torch.cuda.synchronize()
        return labels

    rows = [(layer, row, int(lengths[row])) for layer in range(args.layers) for row in range(args.sentences)]
    values = predicted.cpu().tolist()

    def loop() -> list[list[int]]:
        return [pseudo_depths_loop(values[layer][row][:count]) for layer, row, count in rows]

    fast, slow = [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        labels = ours()
        fast.append(time.perf_counter() - start)
        start = time.perf_counter()
        reference = loop()
        slow.append(time.perf_counter() - start)
    start = time.perf_counter()  # seconds per call: timed once
    tensor_reference = pseudo_depths_tensor_loop(predicted.cpu(), mask.cpu())
    tensor_s = time.perf_counter() - start
    labels = labels.cpu().long()
    agree = bool((labels == tensor_reference.long()).all()) and all(
        labels[layer, row, :count].tolist() == reference[i] for i, (layer, row, count) in enumerate(rows)
    )
    ours_s, loop_s = statistics.median(fast), statistics.median(slow)
    print(
        f"{args.layers} layers x {args.sentences} sentences (5-50 words), {args.device}, "
        f"{args.repeats} repeats, {torch.get_num_threads()} threads"
    )
    print("| implementation | seconds | ours is faster by |")
    print("| --- | --- | --- |")
    print(
        f"| loop over tensor elements (reference, timed once) | {tensor_s:.4f} | {tensor_s / ours_s:.0f}x |"
    )
    print(f"| loop over Python floats (conversion not timed) | {loop_s:.4f} | {loop_s / ours_s:.1f}x |")
    print(f"| vectorised (ours, median) | {ours_s:.4f} | 1.0x |")
    print(f"labels identical: {agree}")
    rows = [
        ["loop over tensor elements (reference, timed once)", f"{tensor_s:.4f}", f"{tensor_s / ours_s:.0f}x"],
        ["loop over Python floats (conversion not timed)", f"{loop_s:.4f}", f"{loop_s / ours_s:.1f}x"],
        ["vectorised (ours, median)", f"{ours_s:.4f}", "1.0x"],
    ]
    write_report(
        "ttp_operator",
        f"{args.layers} layers x {args.sentences} sentences (5-50 words), {args.repeats} repeats.",
        [Table(["implementation", "seconds", "ours is faster by"], rows, align_right=[False, True, True])],
        [f"Labels identical: {agree}."],
        device=args.device,
    )


if __name__ == "__main__":
    main()
