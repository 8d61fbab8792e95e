"""What :class:`app.store.neurons.NeuronStore` returns: plain records, no database session attached."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass
class NeuronIndexInfo:
    """One stored index without its arrays."""

    id: str
    model_name: str
    model_revision: str
    corpus: str
    corpus_source: str
    corpus_hash: str
    sentence_count: int
    k: int
    max_tokens: int
    num_layers: int
    num_units: int
    status: str
    sentences_done: int
    tokens: int
    params: dict
    created_at: datetime
    updated_at: datetime
    basis: str = "neurons"  # what the index counts (app.methods.neurons.units)

    def to_json(self) -> dict[str, Any]:
        return {
            **self.__dict__,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass
class NeuronSummary:
    layer: int
    unit: int
    mean: float | None
    std: float | None
    minimum: float | None
    maximum: float | None
    top_mean: float | None


@dataclass
class NeuronPage:
    total: int  # neurons matching the filter
    items: list[NeuronSummary]


@dataclass
class Exemplar:
    sentence: str
    sentence_id: int
    position: int  # token position in the truncated tokenisation, [CLS] = 0
    activation: float


@dataclass
class NeuronDetail:
    """What the neuron page shows: exemplars best first, statistics and the histogram."""

    index_id: str
    layer: int
    unit: int
    exemplars: list[Exemplar]
    count: int
    mean: float | None
    std: float | None
    minimum: float | None
    maximum: float | None
    histogram_edges: list[float]  # HISTOGRAM_BINS + 1 inner edges
    histogram: list[int]  # [underflow, bins..., overflow]
