"""``bertscope neurons``: index corpora (every FFN neuron's top exemplars), describe neurons, list indexes."""

from __future__ import annotations

import json
from typing import Any

import click

from app.cli.common import cli_settings, fail, load_configured_model, model_options, ray_option, run_job_here
from app.cli.params import given_params, job_options
from app.errors import BertscopeError
from app.jobs.neurons import DescribeNeuronsParams, IndexNeuronsParams


@click.group("neurons")
def neurons_group() -> None:
    """Neuron activation indexes and descriptions (Mondal et al. 2024; Bolukbasi et al. 2021)."""


@neurons_group.command("index")
@ray_option
@click.option(
    "--corpus", "corpora", multiple=True, required=True, help="NAME=FILE (repeat for several corpora)."
)
@click.option(
    "--column",
    "columns",
    multiple=True,
    help="Text column of the CSV/TSV/JSONL corpora: COLUMN for all of them, or NAME=COLUMN for one (repeat).",
)
@click.option("--limit", type=int, help="Use only the first N sentences of each corpus.")
@job_options(IndexNeuronsParams, skip={"corpora"}, names={"k": ("-k", "--top-k")})
@model_options
def neurons_index(
    corpora: tuple[str, ...],
    columns: tuple[str, ...],
    limit: int | None,
    model: str | None,
    device: str | None,
    database_url: str | None,
    **options: Any,
) -> None:
    """Index every FFN neuron over each corpus (resumes an interrupted build), then describe them."""
    from app.methods.neurons.corpora import assign_columns, parse_corpus_spec

    settings = cli_settings(model=model, device=device, database_url=database_url)
    try:
        specs = []
        for spec in corpora:
            name, path = parse_corpus_spec(spec)
            specs.append({"name": name, "path": str(path), "column": None, "limit": limit})
        assign_columns(specs, columns)
        raw = {"corpora": specs, **given_params(IndexNeuronsParams, options)}
        outcome = run_job_here("index_neurons", raw, settings, "step")
    except BertscopeError as exc:
        fail(exc)
    print_description(outcome.result_id, settings)


@neurons_group.command("describe")
@ray_option
@job_options(DescribeNeuronsParams, names={"corpora": ("--corpus", "--corpora")})
@model_options
def neurons_describe(model: str | None, device: str | None, database_url: str | None, **options: Any) -> None:
    """Describe neurons over indexed corpora and compare them with random directions."""
    settings = cli_settings(model=model, device=device, database_url=database_url)
    try:
        outcome = run_job_here(
            "describe_neurons", given_params(DescribeNeuronsParams, options), settings, "step"
        )
    except BertscopeError as exc:
        fail(exc)
    print_description(outcome.result_id, settings)


@neurons_group.command("list")
@click.option(
    "--digest",
    is_flag=True,
    help="Also print each finished index's SHA-256 (equal digests: byte-equal builds, e.g. with and without "
    "--ray).",
)
@model_options
def neurons_list(model: str | None, device: str | None, database_url: str | None, digest: bool) -> None:
    """Neuron indexes and the latest description run of the configured model."""
    from app.store.db import make_engine
    from app.store.neuron_descriptions import DescriptionStore
    from app.store.neurons import NeuronStore

    settings = cli_settings(model=model, device=device, database_url=database_url)
    try:
        loaded = load_configured_model(settings)
        engine = make_engine(settings.database_url)
        indexes = NeuronStore(engine).list_for_revision(loaded.revision)
        described = DescriptionStore(engine).latest(loaded.revision)
    except BertscopeError as exc:
        fail(exc)
    if not indexes:
        click.echo(f"no neuron index for {loaded.name} @ {loaded.revision}")
    for info in indexes:
        state_digest = ""
        if digest and info.status == "done":
            state_digest = "  sha256 " + NeuronStore(engine).load_state(info.id).digest()
        click.echo(
            f"{info.id}  {info.corpus:<16} {info.status:<9} "
            f"{info.sentences_done}/{info.sentence_count} sentences k={info.k}{state_digest}"
        )
    if described:
        click.echo(json.dumps(described.summary, indent=2))


def print_description(result_id: str | None, settings: Any) -> None:
    """The summary of a description run (its units against random directions), or the index id."""
    from app.store.db import make_engine
    from app.store.neuron_descriptions import DescriptionStore

    try:
        described = DescriptionStore(make_engine(settings.database_url)).get(result_id)
    except BertscopeError:
        click.echo(f"index {result_id} built")
        return
    click.echo(
        f"description run {described.id}: {len(described.descriptor_set.get('labels', []))} descriptors"
    )
    click.echo(json.dumps(described.summary, indent=2))
