"""Request-scoped access to the services (never to the model or its lock)."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import Request

from app.errors import BertscopeError
from app.services.container import Services


class ModelNotReady(BertscopeError):
    """The model is still loading (or failed to load)."""

    code = "model_not_ready"
    status = 503


def get_services(request: Request) -> Services:
    """The app's services; 503 while the model is not loaded."""
    services = request.app.state.services
    if services is None:
        raise ModelNotReady("The model is not loaded yet; try again in a few seconds.")
    return services


def use_services(request: Request) -> Iterator[Services]:
    """The services, with the model held for the whole request so that a model swap waits for it."""
    services = get_services(request)
    with services.runner.using_model():
        yield services
