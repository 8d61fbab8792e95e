"""ASGI middleware that refuses request bodies larger than the configured limit with a JSON 413.

Ordinary requests are buffered up to ``max_bytes``. Uploads (the paths in ``streamed``) pass through as they
arrive, counted: a declared length over their limit is refused before a byte is read, and a body that grows
past it (e.g. chunked) ends the request with a 413 as soon as it does; nothing is held in memory here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from app.api.responses import error_response
from app.errors import BertscopeError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class BodySizeLimit:
    """Buffer each HTTP body up to ``max_bytes``; anything larger is answered with 413 and never parsed."""

    def __init__(
        self,
        app: Callable[[Scope, Receive, Send], Awaitable[None]],
        max_bytes: int,
        streamed: dict[str, tuple[int, str]] | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.streamed = streamed or {}  # path -> (limit, the setting that sets it)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in {"GET", "HEAD", "OPTIONS"}:
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if scope["path"] in self.streamed:
            await self._stream(scope, receive, send, declared)
            return
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._reject(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(b"".join(chunks), receive), send)

    async def _stream(self, scope: Scope, receive: Receive, send: Send, declared: bytes | None) -> None:
        """Pass an upload through, counted; an answer sent before its body has all arrived closes the
        connection, so the server stops reading what is left (e.g. the rest of a 2 GB file)."""
        limit, setting = self.streamed[scope["path"]]
        body = _CountedBody(receive, limit, setting)

        async def closing_send(message: Message) -> None:
            if message["type"] == "http.response.start" and not body.complete:
                message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
            await send(message)

        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _too_large(limit, setting)(scope, receive, closing_send)
            return
        await self.app(scope, body.receive, closing_send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _too_large(self.max_bytes, "BERTSCOPE_MAX_REQUEST_BYTES")(scope, receive, send)


class RequestTooLarge(BertscopeError):
    """A streamed request body grew past its limit (raised while the route reads it)."""

    code = "request_too_large"
    status = 413


def _too_large_message(limit: int, setting: str) -> str:
    return f"The request body exceeds {limit} bytes (setting {setting})."


def _too_large(limit: int, setting: str) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    return error_response(413, "request_too_large", _too_large_message(limit, setting))


class _CountedBody:
    """``receive`` that counts body bytes, raises :class:`RequestTooLarge` once they pass ``limit``, and
    knows whether the whole body has arrived."""

    def __init__(self, receive: Receive, limit: int, setting: str) -> None:
        self._receive = receive
        self.limit = limit
        self.setting = setting
        self.size = 0
        self.complete = False

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] != "http.request":
            return message
        self.size += len(message.get("body", b""))
        self.complete = not message.get("more_body", False)
        if self.size > self.limit:
            raise RequestTooLarge(_too_large_message(self.limit, self.setting))
        return message


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
