"""A readers-writer lock: requests share the resident model; swapping it in waits until none uses it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class ReadersWriter:
    """Many readers (requests using the resident model) or one writer (the swap); a waiting writer goes
    first, so a stream of requests cannot starve it. Reading is reentrant: a thread that already reads
    reads again at once (waiting behind the writer, who waits for this thread, would deadlock)."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0
        self._depth = threading.local()  # how many times this thread is reading now

    @contextmanager
    def reading(self) -> Iterator[None]:
        depth = getattr(self._depth, "value", 0)
        if depth == 0:
            with self._condition:
                self._condition.wait_for(lambda: not self._writer and not self._writers_waiting)
                self._readers += 1
        self._depth.value = depth + 1
        try:
            yield
        finally:
            self._depth.value = depth
            if depth == 0:
                with self._condition:
                    self._readers -= 1
                    self._condition.notify_all()

    @contextmanager
    def writing(self) -> Iterator[None]:
        with self._condition:
            self._writers_waiting += 1
            self._condition.wait_for(lambda: not self._writer and self._readers == 0)
            self._writers_waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._condition:
                self._writer = False
                self._condition.notify_all()
