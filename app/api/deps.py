"""Request-scoped access to the runner and its helpers."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import Request

from app.errors import BertscopeError
from app.services.runner import Runner


class ModelNotReady(BertscopeError):
    """The model is still loading (or failed to load)."""

    code = "model_not_ready"
    status = 503


def get_runner(request: Request) -> Runner:
    """The app's runner; 503 while the model is not loaded."""
    runner = request.app.state.runner
    if runner is None:
        raise ModelNotReady("The model is not loaded yet; try again in a few seconds.")
    return runner


def use_runner(request: Request) -> Iterator[Runner]:
    """The runner, held for the whole request so that a model swap waits for it (API routes)."""
    runner = get_runner(request)
    with runner.using_model():
        yield runner
