"""The model lock, shared fairly: first come first served, and a long holder steps aside between batches.

A plain lock lets one slow request (LIME with thousands of samples, DecompX on 512 tokens) hold the model for
minutes while every other user waits. :class:`FairLock` serves waiters in the order they arrived, and gives a
holder a way to step aside at a safe point between two of its batches (:meth:`FairLock.step_aside`): if
anyone is waiting, the holder releases the lock and queues again *behind every newly arrived waiter*, so a
cheap request waits for at most one batch of a slow one, however many slow ones are running. A holder that
steps aside often (the slow ones) therefore never overtakes a holder that asks once (the cheap ones).

Methods reach :meth:`step_aside` through :func:`app.methods.callbacks.between_batches`, only at points where
no hook or patch of theirs is on the shared model.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque


class FairLock:
    """A non-reentrant lock with two FIFO queues: fresh acquirers first, then holders that stepped aside."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._held = False
        self._fresh: deque[int] = deque()
        self._resuming: deque[int] = deque()
        self._tickets = itertools.count()
        self.handovers = 0  # how many times a holder stepped aside for a waiter (for the stats)

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """Like ``threading.Lock.acquire``: wait in arrival order (at most ``timeout`` seconds when it is
        not negative; not at all when ``blocking`` is false); True once held."""
        if not blocking:
            timeout = 0
        return self._wait_in(self._fresh, None if timeout < 0 else timeout)

    def locked(self) -> bool:
        """Whether someone holds the lock now (as ``threading.Lock.locked``)."""
        return self.held

    def release(self) -> None:
        with self._condition:
            if not self._held:
                raise RuntimeError("FairLock released while not held")
            self._held = False
            self._condition.notify_all()

    def __enter__(self) -> FairLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    @property
    def held(self) -> bool:
        """Whether someone holds the lock now."""
        with self._condition:
            return self._held

    @property
    def waiting(self) -> int:
        """How many callers wait for the lock now."""
        with self._condition:
            return len(self._fresh) + len(self._resuming)

    def step_aside(self) -> bool:
        """Called by the holder between two batches: when anyone waits, let them go first and queue again
        behind every fresh waiter; return whether it stepped aside. Costs nothing when nobody waits."""
        with self._condition:
            if not self._held:
                raise RuntimeError("step_aside called without holding the lock")
            if not self._fresh and not self._resuming:
                return False
            self._held = False
            self.handovers += 1
            self._condition.notify_all()
        self._wait_in(self._resuming)
        return True

    def _wait_in(self, queue: deque[int], timeout: float | None = None) -> bool:
        with self._condition:
            ticket = next(self._tickets)
            queue.append(ticket)
            try:
                served = self._condition.wait_for(
                    lambda: not self._held and self._next() == ticket, timeout=timeout
                )
            except BaseException:
                queue.remove(ticket)
                self._condition.notify_all()
                raise
            if not served:  # timed out: leave the queue to whoever is behind
                queue.remove(ticket)
                self._condition.notify_all()
                return False
            queue.popleft()
            self._held = True
            return True

    def _next(self) -> int | None:
        """The ticket served next: the oldest fresh waiter, else the oldest holder that stepped aside."""
        if self._fresh:
            return self._fresh[0]
        return self._resuming[0] if self._resuming else None
