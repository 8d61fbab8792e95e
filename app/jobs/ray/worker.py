"""A model worker: the model loaded once in a (Ray actor) process, running shards of corpus jobs.

Plain Python, so that it imports without Ray; :mod:`app.jobs.ray.engine` wraps it with ``ray.remote``. A
worker loads the same weights as the server (checked by their revision hash before any shard runs), with its
own torch thread count: CPU matrix products round differently at different thread counts, so a sharded build
equals a single-process build byte for byte only at the same count.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch

from app.jobs.ray.tasks import SHARD_TASKS
from app.modeling.loading import load_model


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker loads and how: the model source as the server loaded it, device, dtype, threads."""

    source: str
    device: str
    dtype: str
    threads: int


class ModelWorker:
    """One model copy; ``run(task, payload)`` computes one shard with it (see :data:`SHARD_TASKS`)."""

    def __init__(self, spec: WorkerSpec) -> None:
        torch.set_num_threads(spec.threads)
        self.loaded = load_model(spec.source, spec.device, spec.dtype, offline=True)

    def identity(self) -> tuple[int, str]:
        """This worker's process id and the revision (weights hash) of the model it loaded."""
        return os.getpid(), self.loaded.revision

    def run(self, task: str, payload: Any) -> Any:
        """Compute one shard of ``task`` (a name in :data:`SHARD_TASKS`)."""
        return SHARD_TASKS[task](self.loaded, payload)
