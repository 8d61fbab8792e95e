"""What every job kind is: validated params and a function that runs them and says what it produced."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import BaseModel

from app.services.runner import Runner
from app.store.heads import FittedHead
from app.store.probes import ProbeSet
from app.store.records import Evaluation

Progress = Callable[[int, int], None]


@dataclass
class JobOutcome:
    """What a job produced: an evaluation summary, or a fitted head."""

    evaluation_kind: str = ""
    summary: dict = field(default_factory=dict)
    head: FittedHead | None = None
    probes: ProbeSet | None = None
    evaluation: Evaluation | None = None
    result_id: str | None = None  # what the job stored itself (e.g. a neuron index or description run)


@dataclass
class JobKind:
    params: type[BaseModel]
    run: Callable[[Runner, BaseModel, Progress], JobOutcome]
