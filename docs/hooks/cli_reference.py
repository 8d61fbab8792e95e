"""MkDocs hook: the CLI page's command reference, generated from the ``bertscope`` click group at build time.

``docs/cli.md`` holds the marker ``<!-- cli-reference -->``; this hook replaces it with one section per
command: its usage line, its help text and a table of its options (names, type, default, help) as click
itself reports them. Job commands take their options from the jobs' Params models (``app/cli/params.py``),
so the page, the ``--help`` output and the API schema say the same thing.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository, if bertscope is not installed
from app.cli import main

MARKER = "<!-- cli-reference -->"
PAGE = "cli.md"


def _cell(text: str) -> str:
    return " ".join(text.replace("|", "\\|").split())


def _commands(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], click.Command]]:
    """Every leaf command under ``group`` with its path of names, in alphabetical order."""
    found = []
    for name in sorted(group.commands):
        command = group.commands[name]
        if isinstance(command, click.Group):
            found += _commands(command, (*path, name))
        else:
            found.append(((*path, name), command))
    return found


def _option_row(parameter: click.Parameter, context: click.Context) -> str:
    names = ", ".join(f"`{name}`" for name in [*parameter.opts, *parameter.secondary_opts])
    record = parameter.get_help_record(context)
    help_text = record[1] if record else ""
    kind = parameter.type.name.upper() if not getattr(parameter, "is_flag", False) else "flag"
    if isinstance(parameter.type, click.Choice):
        kind = " \\| ".join(f"`{choice}`" for choice in parameter.type.choices)
    return f"| {names} | {kind} | {_cell(help_text)} |"


def cli_reference() -> str:
    """Markdown sections for every command of ``bertscope``."""
    sections = []
    for path, command in _commands(main):
        context = click.Context(command, info_name=" ".join(("bertscope", *path)))
        usage = " ".join(command.collect_usage_pieces(context))
        lines = [f"### `bertscope {' '.join(path)}`", "", f"`{context.info_name} {usage}`", ""]
        if command.help:
            lines += [command.help.strip(), ""]
        options = [p for p in command.get_params(context) if isinstance(p, click.Option) and p.name != "help"]
        if options:
            lines += ["| option | value | what it does |", "| --- | --- | --- |"]
            lines += [_option_row(parameter, context) for parameter in options]
            lines.append("")
        sections.append("\n".join(lines))
    return "\n".join(sections)


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    if page.file.src_uri != PAGE:
        return markdown
    if MARKER not in markdown:
        raise ValueError(f"docs/{PAGE} lost its marker {MARKER}: the command reference has nowhere to go")
    return markdown.replace(MARKER, cli_reference())
