"""Probe figures over several seeds: the seeds a run trains with, and per-layer mean and spread.

A probe metric from one training run mixes what the layer encodes with the luck of one initialisation and
batch order; every figure of a probe set is therefore trained with several seeds and reported as the mean
and the sample standard deviation over them (``std`` is 0.0 for a single seed).
"""

from __future__ import annotations

import numpy as np

LayerMetrics = dict[str, dict[str, float | None]]  # layer (as a string) -> metric -> value


def seed_list(seed: int, count: int) -> list[int]:
    """The seeds of a run: ``seed``, ``seed + 1``, ... (``count`` of them); the first one is stored."""
    return [seed + offset for offset in range(count)]


def mean_and_spread(per_seed: list[LayerMetrics]) -> tuple[LayerMetrics, LayerMetrics]:
    """Per layer and metric: the mean over seeds and the sample standard deviation (ddof 1; 0 for one seed).

    A value missing (None) in some seed is averaged over the seeds that have it; None when no seed has it.
    """
    mean: LayerMetrics = {}
    spread: LayerMetrics = {}
    for layer in per_seed[0]:
        mean[layer], spread[layer] = {}, {}
        for metric in per_seed[0][layer]:
            values = [run[layer][metric] for run in per_seed if run[layer].get(metric) is not None]
            mean[layer][metric] = float(np.mean(values)) if values else None
            single = 0.0 if values else None
            spread[layer][metric] = float(np.std(values, ddof=1)) if len(values) > 1 else single
    return mean, spread
