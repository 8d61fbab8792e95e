"""Helpers shared by the ``bertscope`` command groups: settings, model loading, errors, jobs, tables."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click
from pydantic import ValidationError

from app.errors import BertscopeError
from app.settings import Settings, get_settings

if TYPE_CHECKING:
    from app.modeling.loading import LoadedModel


def cli_settings(**overrides: Any) -> Settings:
    context = click.get_current_context(silent=True)
    if context is not None and "ray_address" in context.meta:  # given with --ray
        overrides.setdefault("ray_address", context.meta["ray_address"])
    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        return Settings(**given) if given else get_settings()
    except ValidationError as exc:
        raise click.UsageError(str(exc)) from None


def load_configured_model(settings: Settings) -> LoadedModel:
    from app.modeling.loading import load_model

    return load_model(
        settings.model, settings.device, settings.dtype, settings.hub_offline, settings.cache_dir
    )


def fail(exc: BertscopeError) -> None:
    click.echo(f"error ({exc.code}): {exc.message}", err=True)
    sys.exit(2)


def model_options(command: Callable) -> Callable:
    """--model, --device and --database-url, shared by the commands that load a model and use the store."""
    command = click.option("--database-url", help="Store URL (default from settings).")(command)
    command = click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]))(command)
    return click.option("--model", help="Model to load (default from settings).")(command)


def ray_option(command: Callable) -> Callable:
    """--ray, for the corpus jobs: run their shards on a Ray cluster (overrides BERTSCOPE_RAY_ADDRESS)."""

    def remember(context: click.Context, _: click.Parameter, value: str | None) -> None:
        if value:
            context.meta["ray_address"] = value

    return click.option(
        "--ray",
        metavar="ADDRESS|local",
        expose_value=False,
        callback=remember,
        help="Run the work on a Ray cluster: its head's HOST:PORT, or 'local' to start one here "
        "(default: BERTSCOPE_RAY_ADDRESS; unset: in this process).",
    )(command)


def markdown_table(table: dict) -> str:
    """A {"columns", "rows"} table as Markdown."""
    lines = ["| " + " | ".join(table["columns"]) + " |", "|" + " --- |" * len(table["columns"])]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in table["rows"]]
    return "\n".join(lines)


def run_job_here(kind: str, raw: dict, settings: Settings, unit: str) -> Any:
    """Run a job kind here, with a progress bar, and return its outcome."""
    from tqdm import tqdm

    from app.jobs.contract import JobContext, shard_runner
    from app.jobs.manager import execute
    from app.jobs.registry import parse_params
    from app.services.container import build_services
    from app.store.db import make_engine

    params = parse_params(kind, raw)
    services = build_services(load_configured_model(settings), make_engine(settings.database_url), settings)
    # jobs of several stages report abstract steps (a weighted 0-1000 scale): show a percentage instead
    bar_format = "{l_bar}{bar}| {elapsed}<{remaining}" if unit == "step" else None
    with tqdm(unit=unit, desc=kind.replace("_", " "), bar_format=bar_format) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        context = JobContext(
            services.runner, services.stores, settings, progress, shards=shard_runner(settings)
        )
        return execute(context, kind, params)
