"""ASGI middleware that limits how many analysis requests one client may have running at once.

A fair share of one resident model: with the lock's arrival order (``app.services.fair_lock``) and the
per-request budget (``BERTSCOPE_MAX_REQUEST_COST``), this keeps one client from queueing many slow requests
ahead of everyone else. A request over the limit is answered at once with 429, a JSON error naming the limit
and its setting, and ``Retry-After``. Clients are told apart by their address (behind a proxy, run the
server with forwarded headers trusted so that this is the user's address).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from app.api.responses import error_response

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
RETRY_AFTER_SECONDS = 1


class ClientConcurrencyLimit:
    """At most ``limit`` requests per client address in flight on the ``limited`` (method, path) pairs."""

    def __init__(
        self,
        app: Callable[[Scope, Receive, Send], Awaitable[None]],
        limit: int,
        limited: frozenset[tuple[str, str]] = frozenset({("POST", "/api/analyses")}),
    ) -> None:
        self.app = app
        self.limit = limit
        self.limited = limited
        # touched only on the event loop's thread, with no await between check and count: no lock needed
        self._running: Counter[str] = Counter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (scope["method"], scope["path"]) not in self.limited:
            await self.app(scope, receive, send)
            return
        client = (scope.get("client") or ("unknown", 0))[0]
        if self._running[client] >= self.limit:
            await self._refuse(scope, receive, send)
            return
        self._running[client] += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self._running[client] -= 1
            if not self._running[client]:
                del self._running[client]

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            429,
            "too_many_requests",
            f"This client already has {self.limit} analysis requests running (the limit, set by "
            f"BERTSCOPE_MAX_REQUESTS_PER_CLIENT); retry after {RETRY_AFTER_SECONDS} s or when one ends.",
        )
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        await response(scope, receive, send)
