"""MkDocs hook: the configuration page's table, generated from ``app.settings.Settings`` at build time.

``docs/configuration.md`` holds the marker ``<!-- settings-table -->``; this hook replaces it with one row per
field (environment variable, default, accepted values, description), read from the pydantic-settings class,
so the page can never disagree with the code. A field without a ``description=`` fails the build.
"""

from __future__ import annotations

import inspect
import sys
import types
import typing
from pathlib import Path
from typing import Any

from annotated_types import Ge, Gt, Le, Lt, MaxLen, MinLen
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository, if bertscope is not installed
from app.settings import Settings

MARKER = "<!-- settings-table -->"
PAGE = "configuration.md"
FACTORY_VALUES = {list: "[]", dict: "{}"}  # factories whose value is the same on every machine
BOUNDS = {
    Ge: ("ge", ">= {}"),
    Gt: ("gt", "> {}"),
    Le: ("le", "<= {}"),
    Lt: ("lt", "< {}"),
    MinLen: ("min_length", "length >= {}"),
    MaxLen: ("max_length", "length <= {}"),
}


class MissingDescription(ValueError):
    """A Settings field has no description: the configuration page would have nothing to say about it."""


def env_name(name: str) -> str:
    """The environment variable pydantic-settings reads for field ``name``."""
    return f"{Settings.model_config.get('env_prefix', '')}{name}".upper()


def _code(text: str) -> str:
    return f"`{text}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_default(field: FieldInfo) -> str:
    """The default as it would be written in the environment; computed defaults say how they are computed."""
    factory = field.default_factory
    if factory is not None:
        if factory in FACTORY_VALUES:
            return _code(FACTORY_VALUES[factory])
        module = factory.__module__.lstrip("_")  # a C module's public name (_socket -> socket)
        return f"computed by `{module}.{factory.__qualname__}()`: {_summary(factory)}"
    value = field.default
    if value is PydanticUndefined:
        return "required"
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return _code(str(value).lower())
    if isinstance(value, int | float | str):
        return _code(str(value))
    return _code(repr(value))


def _one_of(choices: list[str]) -> str:
    return ", ".join(choices[:-1]) + f" or {choices[-1]}" if len(choices) > 1 else choices[0]


def _summary(function: Any) -> str:
    """The first sentence-like line of a docstring, skipping a builtin's signature line."""
    lines = [line.strip() for line in (inspect.getdoc(function) or "").splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith(f"{function.__name__}(")]
    return lines[0].rstrip(".") if lines else function.__name__


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return _one_of([_code(str(value)) for value in typing.get_args(annotation)])
    if origin in (typing.Union, types.UnionType):
        args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return " or ".join(_type_name(arg) for arg in args)
    if origin is list:
        (item,) = typing.get_args(annotation) or (Any,)
        return f"JSON list of {_type_name(item)}"
    names = {"str": "text", "int": "integer", "float": "number", "bool": _one_of(["`true`", "`false`"])}
    name = getattr(annotation, "__name__", str(annotation))
    return names.get(name, "secret text" if name == "SecretStr" else name)


def render_values(field: FieldInfo) -> str:
    """Accepted values: the type (or the literal choices) and any bounds the field declares."""
    limits = []
    for item in field.metadata:
        for kind, (attribute, template) in BOUNDS.items():
            if isinstance(item, kind):
                limit = getattr(item, attribute)
                limits.append(template.format(limit))
    text = _type_name(field.annotation)
    return f"{text}, {', '.join(limits)}" if limits else text


def settings_table() -> str:
    """The markdown table of every Settings field, in declaration order."""
    rows = ["| variable | default | values | meaning |", "| --- | --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        if not (field.description or "").strip():
            raise MissingDescription(f"Settings.{name} has no description= (app/settings.py)")
        cells = [_code(env_name(name)), render_default(field), render_values(field), field.description]
        rows.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    return "\n".join(rows)


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    """MkDocs event: fill the marker on the configuration page (and insist that it is there)."""
    if page.file.src_uri != PAGE:
        return markdown
    if MARKER not in markdown:
        raise ValueError(f"docs/{PAGE} lost its {MARKER} marker: the settings table has nowhere to go")
    return markdown.replace(MARKER, settings_table())
