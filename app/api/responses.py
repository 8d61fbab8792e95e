"""JSON responses: numpy-aware serialisation and the uniform error body."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from app.services.analyses import dumps


class NumpyJSONResponse(JSONResponse):
    """JSON response that serialises numpy arrays natively (large attention matrices stay fast)."""

    def render(self, content: Any) -> bytes:
        return dumps(content)


def error_body(code: str, message: str) -> dict:
    """The documented error shape: ``{"error": {"code": ..., "message": ...}}``."""
    return {"error": {"code": code, "message": message}}


def error_response(status: int, code: str, message: str) -> NumpyJSONResponse:
    return NumpyJSONResponse(error_body(code, message), status_code=status)
