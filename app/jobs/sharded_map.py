"""The map-shaped corpus jobs on other workers (a Ray cluster): evaluations and probe features.

Each job's per-item computation is a pure method function ``function(loaded, items, **options)``: the job
cuts its items into shards, a worker runs the function on each shard, and the job joins the shard results
in item order with the method's own join (``extend``, or placing rows back). Shards follow the order the
single-process run takes the items in (its batches, for batched work), and random controls are seeded per
item, so a sharded run computes what the single-process run computes at the same torch thread count.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np

from app.jobs.contract import JobCancelled, ShardRunner
from app.jobs.ray.tasks import MapShard
from app.methods.callbacks import Exclusive, Progress, ShouldStop
from app.methods.neurons.corpora import plan_batches
from app.methods.neurons.descriptions import DirectionScores
from app.methods.neurons.directions import direction_scores
from app.methods.neurons.index import sentence_activations
from app.methods.neurons.units import NEURONS, UnitBasis
from app.methods.probes.features import FEATURE_BATCH, WordFeatures, compute_word_features, feature_order
from app.methods.probes.pipeline import FeatureSource
from app.methods.probes.treebank import TreeSentence
from app.modeling.loading import LoadedModel

MIN_SHARDS = 16  # per-item work (evaluations) is cut at least this fine, for balance and progress


def run_shards(
    runner: ShardRunner,
    loaded: LoadedModel,
    function: Callable[..., Any],
    items: Sequence[Any],
    *,
    options: dict[str, Any],
    shard_size: int,
    offset_option: str | None = None,
    progress: Progress | None = None,
    should_stop: ShouldStop = lambda: False,
) -> list[Any]:
    """``function(loaded, items[a:b], **options)`` per shard on ``runner``'s workers; the results in shard
    order. ``offset_option`` names the option that tells a shard where its items start."""
    starts = range(0, len(items), shard_size)
    shards = [
        MapShard(function, list(items[start : start + shard_size]), _with(options, offset_option, start))
        for start in starts
    ]
    results: dict[int, Any] = {}
    done = 0
    for index, result in runner.run(loaded, "map", shards, should_stop):
        results[index] = result
        done += len(shards[index])
        if progress is not None:
            progress(done, len(items))
    if len(results) < len(shards):
        raise JobCancelled
    return [results[index] for index in range(len(shards))]


def _with(options: dict[str, Any], name: str | None, value: int) -> dict[str, Any]:
    return options if name is None else {**options, name: value}


def evaluation_shard_size(runner: ShardRunner, count: int) -> int:
    """Items per shard of an evaluation: at most ``shard_sentences``, and at least MIN_SHARDS shards."""
    return max(1, min(runner.shard_sentences, -(-count // MIN_SHARDS)))


def batch_shard_size(runner: ShardRunner, batch_size: int) -> int:
    """Sentences per shard of batched work: ``shard_sentences`` rounded to whole batches."""
    return max(1, runner.shard_sentences // batch_size) * batch_size


def in_batch_order(
    runner: ShardRunner,
    loaded: LoadedModel,
    function: Callable[..., np.ndarray],
    texts: list[str],
    *,
    options: dict[str, Any],
    batch_size: int,
    max_tokens: int | None,
    progress: Progress | None = None,
    should_stop: ShouldStop = lambda: False,
) -> np.ndarray:
    """``function(loaded, texts, batch_size=, max_tokens=, **options)``, an array with a row per text that
    runs its texts in :func:`plan_batches` order, computed in shards of that order (the same batches, so
    the same numbers) and its rows put back in text order."""
    order = plan_batches(loaded, texts, batch_size, max_tokens).order
    parts = run_shards(
        runner,
        loaded,
        function,
        [texts[i] for i in order],
        options={**options, "batch_size": batch_size, "max_tokens": max_tokens},
        shard_size=batch_shard_size(runner, batch_size),
        progress=progress,
        should_stop=should_stop,
    )
    ordered = np.concatenate(parts)
    result = np.empty_like(ordered)
    result[order] = ordered
    return result


def sharded_activations(
    runner: ShardRunner,
    loaded: LoadedModel,
    *,
    batch_size: int,
    max_tokens: int | None,
    progress: Progress | None = None,
    should_stop: ShouldStop = lambda: False,
) -> Callable[[list[str]], np.ndarray]:
    """``activations_of(texts)`` for the neuron evaluation: :func:`sentence_activations` in shards."""
    return partial(
        in_batch_order,
        runner,
        loaded,
        sentence_activations,
        options={},
        batch_size=batch_size,
        max_tokens=max_tokens,
        progress=progress,
        should_stop=should_stop,
    )


def sharded_direction_scores(
    runner: ShardRunner, should_stop: ShouldStop, basis: UnitBasis = NEURONS
) -> DirectionScores:
    """The describe job's pass of the random directions over each corpus (in the space ``basis`` reads),
    in shards."""

    def scores_of(
        loaded: LoadedModel, sentences: list[str], directions: np.ndarray, layers: np.ndarray, batch_size: int
    ) -> np.ndarray:
        return in_batch_order(
            runner,
            loaded,
            direction_scores,
            sentences,
            options={"directions": directions, "layers": layers, "basis": basis},
            batch_size=batch_size,
            max_tokens=None,
            should_stop=should_stop,
        )

    return scores_of


def sharded_features(runner: ShardRunner, should_stop: ShouldStop) -> FeatureSource:
    """A probe job's word features computed in shards of :func:`feature_order` (its batches)."""
    return partial(_features, runner, should_stop)


def _features(
    runner: ShardRunner,
    should_stop: ShouldStop,
    loaded: LoadedModel,
    sentences: list[TreeSentence],
    max_tokens: int,
    progress: Progress | None,
    exclusive: Exclusive,
) -> WordFeatures:
    parts = run_shards(
        runner,
        loaded,
        compute_word_features,
        [sentences[i] for i in feature_order(sentences)],
        options={"max_tokens": max_tokens},
        shard_size=batch_shard_size(runner, FEATURE_BATCH),
        progress=progress,
        should_stop=should_stop,
    )
    features = WordFeatures([], [])
    for part in parts:
        features.extend(part)
    return features
