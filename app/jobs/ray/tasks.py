"""What a worker can compute for a job: the explicit table of shard tasks (no Ray import).

A shard task is ``(loaded, payload) -> result``: pure computation on the worker's model. The job (in the
server) cuts its work into payloads and joins the results in its own order, so a sharded run gives what a
single-process run gives.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.methods.neurons.corpora import BatchPlan
from app.methods.neurons.index import build_shard
from app.methods.neurons.stats import IndexState
from app.methods.neurons.units import NEURONS, UnitBasis
from app.modeling.loading import LoadedModel


@dataclass(frozen=True)
class IndexShard:
    """A slice of a corpus's batch plan (token ids only) to index into a state over the whole corpus."""

    plan: BatchPlan
    k: int
    num_sentences: int
    basis: UnitBasis = NEURONS  # what the index counts (a dictionary's features travel with their weights)

    def __len__(self) -> int:
        return len(self.plan.order)


def index_shard(loaded: LoadedModel, shard: IndexShard) -> IndexState:
    """The index state of one shard (sentence ids global; combined by the job)."""
    return build_shard(loaded, shard.plan, shard.k, shard.num_sentences, shard.basis)


@dataclass(frozen=True)
class MapShard:
    """Items of a job for ``function(loaded, items, **options) -> list`` (one result per item)."""

    function: Callable[..., list]
    items: list
    options: dict[str, Any]

    def __len__(self) -> int:
        return len(self.items)


def map_shard(loaded: LoadedModel, shard: MapShard) -> list:
    """``shard.function`` over the shard's items: a module-level function, pickled by reference."""
    return shard.function(loaded, shard.items, **shard.options)


SHARD_TASKS: dict[str, Callable[[LoadedModel, Any], Any]] = {"index": index_shard, "map": map_shard}
