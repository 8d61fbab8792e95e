"""Refuse state-changing requests that a browser sends from another site (cross-site request forgery).

Browsers attach ``Origin`` to every cross-origin POST, forms included; a request whose Origin names another
host than the one it was sent to is refused with 403, unless that origin is listed in
``BERTSCOPE_CORS_ORIGINS``. Clients that are not browsers (curl, scripts, the CLI) send no Origin and pass.
Behind a reverse proxy, forward the original ``Host`` header (e.g. nginx ``proxy_set_header Host $host``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from app.api.responses import error_response

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable, Callable], Awaitable[None]]
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def _host_and_port(value: str) -> tuple[str, int | None]:
    parts = urlsplit(value if "//" in value else f"//{value}")
    try:
        port = parts.port
    except ValueError:
        port = None
    return (parts.hostname or "").lower(), port


def same_host(origin: str, host: str) -> bool:
    """Whether an ``Origin`` header names the host (and port, where both give one) of a ``Host`` header."""
    origin_host, origin_port = _host_and_port(origin)
    host_name, host_port = _host_and_port(host)
    if not origin_host or origin_host != host_name:
        return False
    return origin_port is None or host_port is None or origin_port == host_port


class CrossSiteRefusal:
    """ASGI middleware: 403 for unsafe requests whose Origin is neither this host nor a trusted origin."""

    def __init__(self, app: ASGIApp, trusted_origins: list[str]) -> None:
        self.app = app
        self.trusted = {origin.rstrip("/") for origin in trusted_origins}

    async def __call__(self, scope: Scope, receive: Callable, send: Callable) -> None:
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS:
            headers = {key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]}
            origin = headers.get("origin")
            trusted = not origin or origin.rstrip("/") in self.trusted
            if not trusted and not same_host(origin, headers.get("host", "")):
                response = error_response(
                    403,
                    "cross_origin_refused",
                    f"Requests from {origin} are refused: this server accepts changes only from its own "
                    "pages (or origins listed in BERTSCOPE_CORS_ORIGINS).",
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
