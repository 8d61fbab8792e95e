"""The callbacks a job hands to a long method: methods never see a store, a lock or a job.

- ``progress(done, total)``: report how far the work is (it may raise to cancel);
- ``should_stop()``: True when the work should end early, leaving a resumable state;
- ``checkpoint(state)``: keep a partial state somewhere safe;
- ``exclusive()``: a fresh context manager that holds the model for the caller while it is entered. Long
  methods enter it per batch, never around store writes or progress reports, so interactive requests
  interleave with their work.
- ``between_batches()``: called by a method that runs many batches under one hold of the model, at a point
  where none of its hooks or patches is on the shared model: the server may let waiting requests use the
  model there (``app.services.fair_lock``). It does nothing outside the server or when nobody waits.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

Progress = Callable[[int, int], None]
ShouldStop = Callable[[], bool]
Exclusive = Callable[[], AbstractContextManager[object]]


def no_exclusion() -> AbstractContextManager[object]:
    """``exclusive`` for a caller that owns the model alone (tests, the CLI's own process)."""
    return nullcontext()


_holder = threading.local()  # the step-aside callable of the model hold this thread is in, if any


def between_batches() -> None:
    """A safe point between two batches: waiting requests may use the model before the next one."""
    step_aside = getattr(_holder, "step_aside", None)
    if step_aside is not None:
        step_aside()


@contextmanager
def batches_may_yield(step_aside: Callable[[], object]) -> Iterator[None]:
    """Within this block, :func:`between_batches` on this thread calls ``step_aside`` (set by the holder
    of the model lock)."""
    previous = getattr(_holder, "step_aside", None)
    _holder.step_aside = step_aside
    try:
        yield
    finally:
        _holder.step_aside = previous
