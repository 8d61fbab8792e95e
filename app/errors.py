"""Domain exceptions: each carries a machine code, an HTTP status and a message a person can act on."""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import ValidationError


class BertscopeError(Exception):
    """Base of every error the user can cause; never surfaces as an HTTP 500."""

    code = "bad_request"
    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RayWorkFailed(BertscopeError):
    """The Ray cluster cannot be reached, its workers cannot load the model, or a shard failed for good."""

    code = "ray_failed"
    status = 503


class InvalidInput(BertscopeError):
    """The text, params or target cannot be used as given."""

    code = "invalid_input"
    status = 422


class InputTooLong(BertscopeError):
    """The input exceeds the configured token or size limit."""

    code = "input_too_long"
    status = 413


class OverBudget(BertscopeError):
    """A request whose estimated cost is over the per-request budget; the message names both and what to
    do instead."""

    code = "over_budget"
    status = 422


class UnknownMethod(BertscopeError):
    """No method with that name is registered."""

    code = "unknown_method"
    status = 422

    def __init__(self, name: str, valid: Iterable[str]) -> None:
        super().__init__(f"Unknown method {name!r}. Valid methods: {', '.join(sorted(valid))}.")


class NotFound(BertscopeError):
    """A stored object (analysis, probe, ...) does not exist."""

    code = "not_found"
    status = 404


class UnsupportedArchitecture(BertscopeError):
    """The checkpoint's ``model_type`` has no adapter."""

    code = "unsupported_architecture"
    status = 422


class ModelNotFound(BertscopeError):
    """A model path or hub id could not be loaded."""

    code = "model_not_found"
    status = 404


class TargetNotAvailable(BertscopeError):
    """The requested prediction target does not exist for the loaded model."""

    code = "target_not_available"
    status = 422


class StoreUnavailable(BertscopeError):
    """The database cannot be reached right now."""

    code = "store_unavailable"
    status = 503


class DatasetInvalid(InvalidInput):
    """A data file cannot be used: the message names the file, and the line and column where there is one."""

    code = "dataset_invalid"
    status = 422

    def __init__(
        self,
        filename: str,
        problem: str,
        *,
        line: int | None = None,
        column: str | None = None,
        byte: int | None = None,
    ) -> None:
        where = [filename]
        where += [f"line {line}"] if line is not None else []
        where += [f"column {column!r}"] if column is not None else []
        where += [f"byte {byte}"] if byte is not None else []
        super().__init__(f"{', '.join(where)}: {problem}")
        self.filename, self.problem = filename, problem
        self.line, self.column, self.byte = line, column, byte


class DatasetTooLarge(BertscopeError):
    """A data file is over a configured limit (rows, bytes); the message names the limit and its setting."""

    code = "dataset_too_large"
    status = 413

    def __init__(self, filename: str, limit: int, unit: str, setting: str) -> None:
        super().__init__(
            f"{filename} has more than {limit} {unit}: the limit is {limit} {unit}, set by {setting}."
        )
        self.filename, self.limit, self.unit, self.setting = filename, limit, unit, setting


def format_validation_error(error: ValidationError, prefix: str = "") -> str:
    """One readable line per problem: ``params.steps: Input should be a valid integer``."""
    parts = []
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"] if part != "body")
        parts.append(f"{prefix}{location}: {item['msg']}" if location else f"{prefix}{item['msg']}")
    return "; ".join(parts)
