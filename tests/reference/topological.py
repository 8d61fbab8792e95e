"""Reference pseudo-label operators of the tree topological probe (Li, Yin & Lin, EMNLP 2023).

- ``pseudo_depths_tensor_loop``: written as training code usually is: a loop over the sentences of a
  padded batch tensor and over the sorted words of each, comparing tensor elements and writing labels into
  a zeros tensor (how the probe relabels every step);
- ``pseudo_depths_loop``: one sentence as a list of floats, the operator exactly as stated.
"""

from __future__ import annotations

import torch


def pseudo_depths_tensor_loop(
    predicted: torch.Tensor, mask: torch.Tensor, reverse: bool = False
) -> torch.Tensor:
    """[..., word] predictions -> integer pseudo-depths (0 on padding), one sentence at a time."""
    flat = predicted.detach().reshape(-1, predicted.shape[-1])
    flat_mask = mask.reshape(-1, mask.shape[-1])
    labels = torch.zeros_like(flat)
    for row in range(flat.shape[0]):
        count = int(flat_mask[row].sum())
        values, order = torch.sort(flat[row, :count], stable=True)
        current = torch.zeros(count)
        for j in range(count):
            if j < 2:
                current[j] = j + 1
            else:
                previous = current[j - 1]
                same = torch.abs(values[j] - previous) < torch.abs(previous + 1 - values[j])
                current[j] = previous if same else previous + 1
        if reverse:
            current = current.flip(0)
        labels[row, order] = current
    return labels.reshape(predicted.shape)


def pseudo_depths_loop(predicted: list[float]) -> list[int]:
    """The operator on one sentence, as a plain loop over the sorted predictions (the operator of
    :mod:`app.methods.probes.topological` as its docstring states it)."""
    order = sorted(range(len(predicted)), key=lambda i: predicted[i])
    labels = [0] * len(predicted)
    previous = 0
    for rank, index in enumerate(order):
        if rank < 2:
            current = rank + 1
        else:
            x = predicted[index]
            current = previous if abs(x - previous) < abs(previous + 1 - x) else previous + 1
        labels[index] = current
        previous = current
    return labels
