"""The only holder of the live model: a private lock, reached through context managers, and its batcher.

Everything that computes with the model goes through :meth:`Runner.exclusive` (one caller at a time, for as
long as a method hooks or patches modules) or the micro-batched :meth:`Runner.clean_pass`. Every request and
job holds :meth:`Runner.using_model` for its whole duration, so a model swap never happens under it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from app.methods.callbacks import batches_may_yield
from app.modeling.encoding import Encoded, encode_for
from app.modeling.forward import CleanPass, clean_pass
from app.modeling.loading import LoadedModel
from app.services.batcher import MicroBatcher, guard_memory
from app.services.fair_lock import FairLock
from app.services.readers_writer import ReadersWriter
from app.settings import Settings


class Runner:
    """One resident model; computing with it is serialised by a lock that never leaves this class."""

    def __init__(self, loaded: LoadedModel, settings: Settings) -> None:
        self._loaded = loaded
        self.settings = settings
        self._lock = FairLock()  # held only while the model computes, never to store or render
        self._model_users = ReadersWriter()
        self._tokenizer_lock = threading.Lock()  # fast tokenizers refuse concurrent calls
        self.batcher = (
            MicroBatcher(
                self.exclusive,
                max_batch=settings.batch_max_size,
                wait_seconds=settings.batch_wait_ms / 1000,
                max_tokens=settings.batch_max_tokens,
            )
            if settings.batching
            else None
        )

    @contextmanager
    def using_model(self) -> Iterator[LoadedModel]:
        """Held by every request and job for its whole duration: the model cannot be swapped under it.
        Others may compute meanwhile; to compute, enter :meth:`exclusive`."""
        with self._model_users.reading():
            yield self._loaded

    @contextmanager
    def exclusive(self) -> Iterator[LoadedModel]:
        """The model for the caller alone (hooks and patches are safe); out-of-memory becomes a 503.
        Waiters are served in arrival order; a method may let them go first between two of its batches
        (``app.methods.callbacks.between_batches``)."""
        with self._lock, batches_may_yield(self._lock.step_aside), guard_memory(self._loaded):
            yield self._loaded

    def swap_model(self, loaded: LoadedModel) -> None:
        """Make ``loaded`` the resident model once no request or job is using the current one."""
        with self._model_users.writing(), self._lock:
            self._loaded = loaded

    def close(self) -> None:
        """Stop the micro-batcher's worker (after what is already queued)."""
        if self.batcher is not None:
            self.batcher.close()

    # what the rest of the app may know of the model without computing with it

    @property
    def revision(self) -> str:
        return self._loaded.revision

    @property
    def num_layers(self) -> int:
        return self._loaded.num_layers

    @property
    def num_units(self) -> int:
        return self._loaded.num_units

    @property
    def max_tokens(self) -> int:
        return min(self.settings.max_tokens, self._loaded.max_positions)

    def describe_model(self) -> dict[str, Any]:
        """The model's JSON identity (name, revision, sizes, device ...), as stored with each analysis."""
        return self._loaded.describe()

    def batching(self) -> dict[str, Any]:
        """Micro-batching settings and what the batcher has done so far."""
        settings = self.settings
        if self.batcher is None:
            return {"enabled": False}
        return {
            "enabled": True,
            "max_size": settings.batch_max_size,
            "wait_ms": settings.batch_wait_ms,
            "max_tokens": settings.batch_max_tokens,
            **self.batcher.stats.to_json(),
        }

    def fair_share(self) -> dict[str, Any]:
        """The per-request budget and per-client limit, and how the model lock is shared right now."""
        return {
            "max_request_cost": self.settings.max_request_cost,
            "max_requests_per_client": self.settings.max_requests_per_client,
            "waiting": self._lock.waiting,
            "handovers": self._lock.handovers,
        }

    def encode(self, text: str, text_pair: str | None = None) -> Encoded:
        """Encode an input for the loaded model within the configured limits."""
        with self._tokenizer_lock:
            return encode_for(
                self._loaded,
                text,
                text_pair,
                max_tokens=self.max_tokens,
                max_chars=self.settings.max_text_chars,
            )

    def token_strings(self, texts: list[str], max_tokens: int) -> list[list[str]]:
        """The tokens of each text as the model sees them (special tokens included, truncated)."""
        tokenizer = self._loaded.tokenizer
        with self._tokenizer_lock:
            ids = tokenizer(texts, truncation=True, max_length=max_tokens)["input_ids"]
            return [tokenizer.convert_ids_to_tokens(row) for row in ids]

    def clean_pass(self, encoded: Encoded, *, ffn: bool = False) -> CleanPass:
        """The clean forward pass of one input: micro-batched with concurrent requests when batching is on."""
        if self.batcher is not None:
            return self.batcher.clean_pass(encoded, ffn=ffn)
        with self.exclusive() as loaded:
            return clean_pass(loaded, encoded, ffn=ffn)
