"""``bertscope datasets``: the uploaded datasets of a store, from a terminal (add a local file, list, delete).

A dataset added here is the same as one uploaded from a page: validated first, stored once per content, and
named in job data fields as ``dataset:<id>``.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from app.cli.common import cli_settings, fail
from app.errors import BertscopeError

KINDS = ["texts", "labelled", "treebank"]


def _datasets(database_url: str | None):
    from app.services.datasets import Datasets
    from app.store.datasets import DatasetStore
    from app.store.db import make_engine

    settings = cli_settings(database_url=database_url)
    return Datasets(DatasetStore(make_engine(settings.database_url)), settings)


@click.group("datasets")
def datasets_group() -> None:
    """Datasets (uploaded data files) that jobs read as dataset:<id>."""


@datasets_group.command("add")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", help="Dataset name (default: the file's stem).")
@click.option("--kind", type=click.Choice(KINDS), help="What the file holds (default: inferred).")
@click.option("--text-column", help="Text column of a table.")
@click.option("--label-column", help="Label column of a table (default: label).")
@click.option("--database-url", help="Store URL (default from settings).")
def datasets_add(
    file: Path,
    name: str | None,
    kind: str | None,
    text_column: str | None,
    label_column: str | None,
    database_url: str | None,
) -> None:
    """Validate FILE and store it as a dataset (the same file again is the same dataset)."""
    from app.services.datasets import Upload

    try:
        with file.open("rb") as stream:
            upload = Upload(stream, file.name, name, kind, text_column, label_column)  # type: ignore[arg-type]
            info, created = _datasets(database_url).upload(upload)
    except BertscopeError as exc:
        fail(exc)
    verb = "stored" if created else "already stored as"
    click.echo(
        f"{verb} dataset {info.id} {info.name!r}: {info.kind}, {info.rows} rows; use dataset:{info.id}"
    )


@datasets_group.command("list")
@click.option("--kind", type=click.Choice(KINDS), help="Only datasets of this kind.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--database-url", help="Store URL (default from settings).")
def datasets_list(kind: str | None, as_json: bool, database_url: str | None) -> None:
    """Stored datasets, newest first."""
    try:
        found = _datasets(database_url).list(kind)
    except BertscopeError as exc:
        fail(exc)
    if as_json:
        click.echo(json.dumps([info.to_json() for info in found], indent=2))
        return
    if not found:
        click.echo("no datasets")
    for info in found:
        click.echo(f"{info.id}  {info.name:<24} {info.kind:<9} {info.rows:>8} rows  {info.filename}")


@datasets_group.command("delete")
@click.argument("dataset_id")
@click.option("--database-url", help="Store URL (default from settings).")
def datasets_delete(dataset_id: str, database_url: str | None) -> None:
    """Delete a dataset and its content."""
    try:
        _datasets(database_url).delete(dataset_id)
    except BertscopeError as exc:
        fail(exc)
    click.echo(f"deleted dataset {dataset_id}")
