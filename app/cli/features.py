"""``bertscope features``: sparse-autoencoder dictionaries (Gao et al. 2024) on one layer's activations."""

from __future__ import annotations

import json
from typing import Any

import click

from app.cli.common import cli_settings, fail, load_configured_model, model_options, run_job_here
from app.cli.neurons import print_description
from app.cli.params import given_params, job_options
from app.errors import BertscopeError
from app.jobs.feature_index import IndexFeaturesParams
from app.jobs.features import TrainDictionaryParams


@click.group("features")
def features_group() -> None:
    """Feature dictionaries: TopK sparse autoencoders trained on indexed corpora's activations."""


@features_group.command("train")
@job_options(TrainDictionaryParams, names={"corpora": ("--corpus", "--corpora")})
@model_options
def features_train(model: str | None, device: str | None, database_url: str | None, **options: Any) -> None:
    """Train a dictionary on one layer and site over indexed corpora; print its held-out metrics."""
    from app.store.db import make_engine
    from app.store.dictionaries import DictionaryStore

    settings = cli_settings(model=model, device=device, database_url=database_url)
    try:
        outcome = run_job_here(
            "train_dictionary", given_params(TrainDictionaryParams, options), settings, "step"
        )
        dictionary = DictionaryStore(make_engine(settings.database_url)).get(outcome.result_id)
    except BertscopeError as exc:
        fail(exc)
    click.echo(
        f"dictionary {dictionary.id} ({dictionary.name}): {dictionary.width} latents, k={dictionary.k}"
    )
    metrics = {key: value for key, value in dictionary.metrics.items() if key != "loss_curve"}
    click.echo(json.dumps(metrics, indent=2))


@features_group.command("index")
@job_options(IndexFeaturesParams, names={"corpora": ("--corpus", "--corpora"), "k": ("-k", "--top-k")})
@model_options
def features_index(model: str | None, device: str | None, database_url: str | None, **options: Any) -> None:
    """Index a dictionary's features over neuron-indexed corpora, then describe them beside random
    directions in its space (the illusion check); print the run's summary."""
    settings = cli_settings(model=model, device=device, database_url=database_url)
    try:
        outcome = run_job_here("index_features", given_params(IndexFeaturesParams, options), settings, "step")
    except BertscopeError as exc:
        fail(exc)
    print_description(outcome.result_id, settings)


@features_group.command("list")
@model_options
def features_list(model: str | None, device: str | None, database_url: str | None) -> None:
    """Finished dictionaries of the configured model, with their held-out FVU and L0."""
    from app.store.db import make_engine
    from app.store.dictionaries import DictionaryStore

    settings = cli_settings(model=model, device=device, database_url=database_url)
    try:
        loaded = load_configured_model(settings)
        dictionaries = DictionaryStore(make_engine(settings.database_url)).list_for_revision(loaded.revision)
    except BertscopeError as exc:
        fail(exc)
    if not dictionaries:
        click.echo(f"no dictionary for {loaded.name} @ {loaded.revision}")
    for d in dictionaries:
        click.echo(
            f"{d.id}  {d.name:<28} layer {d.layer} {d.site:<8} {d.width} latents k={d.k} "
            f"FVU {d.metrics['fvu']:.3f} L0 {d.metrics['l0']:.1f}"
        )
