"""Micro-batching: concurrent clean forward passes gathered for a few milliseconds and run as one batch.

Requests from different threads (analyses of different sentences, neuron panels) each ask for a clean pass
of one input. A single worker thread takes the first waiting request, keeps gathering until the batch is
full, the wait time is over, or every request known to be on its way has arrived, then runs the inputs as
right-padded batches (at most ``max_tokens`` padded tokens each) under the model lock and hands each caller
its own trimmed tensors. Out-of-memory on the device splits the batch in halves and retries; a single input
that still does not fit gets a clear 503.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch

from app.errors import BertscopeError
from app.modeling.encoding import Encoded
from app.modeling.forward import CleanPass, clean_passes
from app.modeling.loading import LoadedModel

log = logging.getLogger("bertscope.batcher")


class DeviceOutOfMemory(BertscopeError):
    """The device ran out of memory even for a single input."""

    code = "device_out_of_memory"
    status = 503


def out_of_memory(exc: BaseException) -> bool:
    """True for the device's out-of-memory error (CUDA or otherwise)."""
    return isinstance(exc, torch.OutOfMemoryError)


def free_device_memory(loaded: LoadedModel) -> None:
    """Return cached blocks to the device after an out-of-memory error."""
    if loaded.device.type == "cuda":
        torch.cuda.empty_cache()


@contextmanager
def guard_memory(loaded: LoadedModel) -> Iterator[None]:
    """Turn the device's out-of-memory error inside the block into a clear 503 (and free the cache)."""
    try:
        yield
    except Exception as exc:
        if not out_of_memory(exc):
            raise
        free_device_memory(loaded)
        raise DeviceOutOfMemory(
            "The device ran out of memory on this input; try a shorter text or retry later."
        ) from None


@dataclass
class _Request:
    encoded: Encoded
    ffn: bool
    future: Future = field(default_factory=Future)


@dataclass
class BatchStats:
    """What the batcher has done so far (shown by GET /api/model)."""

    batches: int = 0
    items: int = 0
    largest: int = 0
    splits: int = 0

    def to_json(self) -> dict[str, Any]:
        mean = self.items / self.batches if self.batches else 0.0
        return {
            "batches": self.batches,
            "items": self.items,
            "largest": self.largest,
            "mean_size": round(mean, 2),
            "oom_splits": self.splits,
        }


class _Ticket:
    """One announced request: queues its input once and stops counting as 'coming' exactly once."""

    def __init__(self, batcher: MicroBatcher) -> None:
        self._batcher = batcher
        self._arrived = False

    def arrive(self) -> None:
        if not self._arrived:
            self._arrived = True
            with self._batcher._coming_lock:
                self._batcher._coming -= 1

    def clean_pass(self, encoded: Encoded, *, ffn: bool = False) -> CleanPass:
        request = _Request(encoded, ffn)
        self._batcher._queue.put(request)
        self.arrive()
        return request.future.result()


class MicroBatcher:
    """Gathers concurrent clean-pass requests into padded batches run by one worker thread."""

    def __init__(
        self,
        exclusive: Callable[[], AbstractContextManager[LoadedModel]],
        *,
        max_batch: int,
        wait_seconds: float,
        max_tokens: int,
        run_batch: Callable[..., list[CleanPass]] = clean_passes,
    ) -> None:
        self._exclusive = exclusive  # the model for this thread alone while entered
        self.max_batch = max_batch
        self.wait_seconds = wait_seconds
        self.max_tokens = max_tokens
        self._run_batch = run_batch
        self._queue: queue.Queue[_Request | None] = queue.Queue()
        self._coming = 0  # requests announced by ``expecting`` and not yet queued
        self._coming_lock = threading.Lock()
        self.stats = BatchStats()
        self._thread = threading.Thread(target=self._work, name="bertscope-batcher", daemon=True)
        self._thread.start()

    @contextmanager
    def expecting(self) -> Iterator[_Ticket]:
        """Announce a request that will ask for a pass soon (while its text is being encoded), so the
        worker waits for it instead of running a batch without it; a lone request never waits."""
        ticket = _Ticket(self)
        with self._coming_lock:
            self._coming += 1
        try:
            yield ticket
        finally:
            ticket.arrive()

    def clean_pass(self, encoded: Encoded, *, ffn: bool = False) -> CleanPass:
        """Block until the clean pass of ``encoded`` has run (batched with whatever else is waiting)."""
        with self.expecting() as ticket:
            return ticket.clean_pass(encoded, ffn=ffn)

    def close(self) -> None:
        """Stop the worker after the requests already queued."""
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _gather(self, first: _Request) -> list[_Request]:
        items = [first]
        deadline = time.monotonic() + self.wait_seconds
        while len(items) < self.max_batch:
            with self._coming_lock:
                coming = self._coming
            if coming == 0 and self._queue.empty():
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                item = self._queue.get(timeout=min(remaining, 0.001) if coming else remaining)
            except queue.Empty:
                continue
            if item is None:
                self._queue.put(None)
                break
            items.append(item)
        return items

    def _work(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            items = self._gather(first)
            try:
                for chunk in self._chunks(items):
                    self._run(chunk)
            except BaseException as exc:  # the worker must survive anything; callers get the error
                log.exception("micro-batch failed")
                for item in items:
                    if not item.future.done():
                        item.future.set_exception(exc)

    def _chunks(self, items: list[_Request]) -> list[list[_Request]]:
        """Split by padded size: sorted by length, each chunk's ``count * longest`` within ``max_tokens``."""
        chunks: list[list[_Request]] = []
        for item in sorted(items, key=lambda request: request.encoded.length):
            current = chunks[-1] if chunks else None
            if current and (len(current) + 1) * item.encoded.length <= self.max_tokens:
                current.append(item)
            else:
                chunks.append([item])
        return chunks

    def _run(self, chunk: list[_Request]) -> None:
        inputs = [item.encoded for item in chunk]
        try:
            with self._exclusive() as loaded, guard_memory(loaded):
                passes = self._run_batch(loaded, inputs, ffn=any(item.ffn for item in chunk))
        except DeviceOutOfMemory as exc:
            if len(chunk) == 1:
                chunk[0].future.set_exception(exc)
                return
            self.stats.splits += 1
            half = len(chunk) // 2
            self._run(chunk[:half])
            self._run(chunk[half:])
            return
        self.stats.batches += 1
        self.stats.items += len(chunk)
        self.stats.largest = max(self.stats.largest, len(chunk))
        for item, clean in zip(chunk, passes, strict=True):
            item.future.set_result(clean)
