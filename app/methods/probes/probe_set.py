"""A trained structural probe set: distance and depth maps of several layers of one model revision."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from app.errors import NotFound
from app.ids import new_id


@dataclass
class ProbeSet:
    """Distance and depth probes [layer, rank, hidden] of the listed layers, and how well they did."""

    name: str
    model_name: str
    model_revision: str
    layers: list[int]
    distance: np.ndarray
    depth: np.ndarray
    params: dict
    metrics: dict
    # the amnesic check's erasures, flat (``amnesic.{layer}.{leace|random}.{left|right|bias}``), so that the
    # erasure can be re-applied and re-measured from what is stored
    erasers: dict[str, np.ndarray] = field(default_factory=dict)
    id: str = field(default_factory=new_id)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def rank(self) -> int:
        return int(self.distance.shape[1])

    def for_layer(self, layer: int) -> tuple[np.ndarray, np.ndarray]:
        """The distance and depth maps [rank, hidden] of ``layer``."""
        if layer not in self.layers:
            raise NotFound(f"Probe set {self.id} has no probe for layer {layer}; layers: {self.layers}.")
        index = self.layers.index(layer)
        return self.distance[index], self.depth[index]

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "model_name": self.model_name,
            "model_revision": self.model_revision,
            "layers": self.layers,
            "rank": self.rank,
            "params": self.params,
            "metrics": self.metrics,
            "created_at": self.created_at.isoformat(),
        }
