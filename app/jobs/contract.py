"""The job contract: long work per corpus or dataset (index, describe, train, evaluate, fit, load a model).

A job kind is one pydantic ``Params`` model (it generates the API schema, the CLI options and the page's
form) and ``run(context, params) -> JobOutcome``. ``context`` carries what a job may touch:

- ``model``: access to the resident model, only through :meth:`ModelAccess.using_model` (no swap under it)
  and :meth:`ModelAccess.exclusive` (compute with it, per batch); no lock is ever handed out;
- ``stores``: the database's stores (resumable jobs keep their checkpoints there);
- ``progress(done, total)``, ``should_stop()``: reported to and asked of the manager. Methods receive these
  callbacks (and ``checkpoint`` / ``exclusive``, see :mod:`app.methods.callbacks`), never the context.

A job's result is written by the manager in the transaction that marks the job done (evaluations), or
stored by the job itself before it returns its id (indexes, description runs, heads, probe sets).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel

from app.methods.callbacks import Progress, ShouldStop
from app.methods.probes.probe_set import ProbeSet
from app.modeling.heads import FittedHead
from app.modeling.loading import LoadedModel
from app.settings import Settings
from app.store.records import Evaluation
from app.store.stores import Stores


class ShardRunner(Protocol):
    """Runs a job's shards elsewhere (a Ray cluster: :mod:`app.jobs.ray.engine`); None in the context means
    the job computes in this process."""

    shard_sentences: int

    def run(
        self, loaded: LoadedModel, task: str, payloads: Sequence[Any], should_stop: ShouldStop
    ) -> Iterator[tuple[int, Any]]: ...


def shard_runner(settings: Settings) -> ShardRunner | None:
    """The Ray engine when ``settings.ray_address`` is set (only then is Ray imported), else None."""
    if not settings.ray_address:
        return None
    from app.jobs.ray.engine import RayEngine

    return RayEngine(settings)


class JobCancelled(Exception):
    """Raised inside a job when its cancellation was requested."""


class ModelAccess(Protocol):
    """The resident model as a job may use it (the services' runner implements this)."""

    @property
    def max_tokens(self) -> int: ...

    @property
    def revision(self) -> str: ...

    def describe_model(self) -> dict[str, Any]: ...

    def using_model(self) -> AbstractContextManager[LoadedModel]: ...

    def exclusive(self) -> AbstractContextManager[LoadedModel]: ...

    def swap_model(self, loaded: LoadedModel) -> None: ...


@dataclass
class JobContext:
    """Everything a running job is given."""

    model: ModelAccess
    stores: Stores
    settings: Settings
    progress: Progress
    should_stop: ShouldStop = lambda: False
    shards: ShardRunner | None = None  # where corpus shards run (a Ray cluster); None: here

    def data_path(self, value: str) -> str:
        """A file the readers can open for a data field's value (a server path or ``dataset:<id>``)."""
        from app.jobs.data_files import local_path

        return local_path(value, self.stores, self.settings)

    def stop_if_asked(self) -> None:
        """End the job here when its cancellation was requested."""
        if self.should_stop():
            raise JobCancelled


@dataclass
class JobOutcome:
    """What a job produced: an evaluation summary, a fitted head or probe set, or the id of what it stored."""

    evaluation_kind: str = ""
    summary: dict = field(default_factory=dict)
    head: FittedHead | None = None
    probes: ProbeSet | None = None
    evaluation: Evaluation | None = None
    result_id: str | None = None  # what the job stored itself (e.g. a neuron index or description run)


@dataclass(frozen=True)
class JobKind:
    """One kind of job: its params model, what it runs, and a title for pages and ``--help``."""

    Params: type[BaseModel]
    run: Callable[[JobContext, BaseModel], JobOutcome]
    title: str
    admin_only: bool = False  # never opened to everyone (setting open_dataset_jobs), e.g. loading a model
