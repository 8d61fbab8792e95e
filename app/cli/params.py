"""CLI options generated from a job's ``Params`` model: the one description of a job's parameters.

Every field becomes an option named after it (``text_col`` -> ``--text-col``) with the field's description
and default as help. Booleans are ``--x/--no-x``; ``Literal`` fields are choices; lists take commas or
repeated options (``--layers 1,2`` or ``--layers 1 --layers 2``); nested models and dicts take JSON. An
option left out is left out of the params, so the model's own default applies (nothing is repeated here);
an empty value of an optional field means null (``--label-col ''``). Validation is the model's.
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import click
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

F = TypeVar("F", bound=Callable[..., Any])
SCALARS = {int: click.INT, float: click.FLOAT, str: click.STRING}


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    """(the annotation without ``None``, whether ``None`` was allowed)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        optional = len(args) < len(typing.get_args(annotation))
        return (args[0] if len(args) == 1 else typing.Union[tuple(args)]), optional  # noqa: UP007
    return annotation, False


def _plain(annotation: Any) -> Any:
    """``str`` for ``Annotated[str, Field(max_length=64)]``: the type under its constraints."""
    return typing.get_args(annotation)[0] if typing.get_origin(annotation) is typing.Annotated else annotation


def _shape(annotation: Any) -> tuple[str, Any]:
    """How a field reads from the command line: ``flag``, ``choice``, ``scalar``, ``list`` or ``json``."""
    base, _ = _unwrap_optional(annotation)
    if base is bool:
        return "flag", None
    if typing.get_origin(base) is typing.Literal:
        return "choice", click.Choice([str(value) for value in typing.get_args(base)])
    if base in SCALARS:
        return "scalar", SCALARS[base]
    if typing.get_origin(base) is list and _plain(typing.get_args(base)[0]) in SCALARS:
        return "list", _plain(typing.get_args(base)[0])
    return "json", None


def _help(field: FieldInfo, shape: str) -> str:
    text = (field.description or "").rstrip(".")
    default = field.get_default(call_default_factory=True)
    if field.is_required():
        return text
    if default not in (None, PydanticUndefined, [], {}):
        shown = ",".join(map(str, default)) if isinstance(default, list) else default
        text = f"{text} (default: {shown})" if text else f"default: {shown}"
    if shape == "json":
        text = f"{text} [JSON]" if text else "JSON"
    return text


def job_options(
    model: type[BaseModel], *, skip: Iterable[str] = (), names: dict[str, tuple[str, ...]] | None = None
) -> Callable[[F], F]:
    """Decorate a click command with one option per field of ``model`` (except ``skip``); ``names`` gives a
    field other option names (e.g. ``{"k": ("-k", "--top-k")}``)."""
    skipped, renamed = set(skip), names or {}

    def decorate(command: F) -> F:
        for name, field in reversed(list(model.model_fields.items())):
            if name in skipped:
                continue
            shape, kind = _shape(field.annotation)
            declared = renamed.get(name, ("--" + name.replace("_", "-"),))
            options: dict[str, Any] = {"help": _help(field, shape)}
            if shape == "flag":
                long = declared[-1].removeprefix("--")
                declared = (*declared[:-1], f"--{long}/--no-{long}")
                options["default"] = None  # unset stays unset: the model's default applies
            elif shape == "list":
                options.update(multiple=True, metavar="A,B,...")
            else:
                options["type"] = kind if shape in ("choice", "scalar") else click.STRING
            options["required"] = field.is_required() and shape != "list"
            command = click.option(*declared, name, **options)(command)
        return command

    return decorate


def given_params(model: type[BaseModel], options: dict[str, Any]) -> dict[str, Any]:
    """Pop the generated options of ``model`` out of ``options``: the raw params the user gave."""
    raw: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        if name not in options:
            continue
        value = options.pop(name)
        shape, kind = _shape(field.annotation)
        if value is None or value == ():
            continue
        if value == "" and _unwrap_optional(field.annotation)[1]:
            raw[name] = None
        elif shape == "list":
            raw[name] = _list(name, value, kind)
        elif shape == "json":
            raw[name] = _json(name, value)
        else:
            raw[name] = value
    return raw


def _list(name: str, values: tuple[str, ...], kind: type) -> list[Any]:
    items = [item.strip() for value in values for item in value.split(",") if item.strip()]
    try:
        return [kind(item) for item in items]
    except ValueError:
        hint = "--" + name.replace("_", "-")
        raise click.BadParameter(f"expected {kind.__name__}s separated by commas", param_hint=hint) from None


def _json(name: str, value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        hint = "--" + name.replace("_", "-")
        raise click.BadParameter(f"not valid JSON ({exc})", param_hint=hint) from None
