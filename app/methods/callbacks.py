"""The callbacks a job hands to a long method: methods never see a store, a lock or a job.

- ``progress(done, total)``: report how far the work is (it may raise to cancel);
- ``should_stop()``: True when the work should end early, leaving a resumable state;
- ``checkpoint(state)``: keep a partial state somewhere safe;
- ``exclusive()``: a fresh context manager that holds the model for the caller while it is entered. Long
  methods enter it per batch, never around store writes or progress reports, so interactive requests
  interleave with their work.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

Progress = Callable[[int, int], None]
ShouldStop = Callable[[], bool]
Exclusive = Callable[[], AbstractContextManager[object]]


def no_exclusion() -> AbstractContextManager[object]:
    """``exclusive`` for a caller that owns the model alone (tests, the CLI's own process)."""
    return nullcontext()
