"""Results to bytes and back: numpy arrays in a compressed .npz, everything else as JSON inside it."""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np

_JSON_KEY = "__json__"


def pack(result: dict[str, Any]) -> bytes:
    """Serialise a result dict; arrays keep their dtype and shape exactly."""
    arrays = {key: value for key, value in result.items() if isinstance(value, np.ndarray)}
    plain = {key: value for key, value in result.items() if not isinstance(value, np.ndarray)}
    payload = np.frombuffer(json.dumps(plain).encode(), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays, **{_JSON_KEY: payload})
    return buffer.getvalue()


def unpack(data: bytes) -> dict[str, Any]:
    """Inverse of :func:`pack` (never unpickles)."""
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        result: dict[str, Any] = {key: archive[key] for key in archive.files if key != _JSON_KEY}
        result.update(json.loads(archive[_JSON_KEY].tobytes().decode()))
    return result
