"""``bertscope probe``: train structural probes on a treebank, evaluate them on another, list them."""

from __future__ import annotations

import json
import textwrap
from typing import Any

import click

from app.cli.common import (
    cli_settings,
    fail,
    load_configured_model,
    markdown_table,
    model_options,
    ray_option,
    run_job_here,
)
from app.cli.params import given_params, job_options
from app.errors import BertscopeError
from app.figures.probe_checks import probe_check_sections
from app.figures.probe_set import probe_summary_table as probe_table
from app.jobs.probes import TrainProbesParams


@click.group("probe")
def probe_group() -> None:
    """Structural probes (Hewitt & Manning 2019) and the tree topological probe (Li, Yin & Lin 2023)."""


@probe_group.command("train")
@ray_option
@job_options(TrainProbesParams)
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
@model_options
def probe_train(
    as_json: bool, model: str | None, device: str | None, database_url: str | None, **options: Any
) -> None:
    """Train distance and depth probes for every layer, store them, report dev metrics per layer."""
    settings = cli_settings(model=model, device=device, database_url=database_url)
    try:
        probes = run_job_here(
            "train_probes", given_params(TrainProbesParams, options), settings, "step"
        ).probes
    except BertscopeError as exc:
        fail(exc)
    if as_json:
        click.echo(json.dumps(probes.describe(), indent=2))
        return
    click.echo(f"probe set {probes.name!r} ({probes.id}) on {probes.model_name} @ {probes.model_revision}")
    click.echo(markdown_table(probe_table(probes.metrics)))
    second_name = (probes.metrics.get("second") or {}).get("name")
    for section in probe_check_sections(probes.metrics, second_name):
        click.echo(f"\n## {section['title']}\n")
        for paragraph in section["reading"]:
            click.echo(textwrap.fill(paragraph, 100) + "\n")
        click.echo(markdown_table(section["table"]))
    timings = probes.metrics.get("timings", {})
    click.echo("time: " + ", ".join(f"{key} {value:.1f}" for key, value in timings.items()))


@probe_group.command("eval")
@click.option("--treebank", required=True, help="CoNLL-U treebank to evaluate on.")
@click.option("--probe", "probe_id", help="Probe set id or name (default: the newest for the model).")
@click.option("--layer", type=int, help="Only this layer.")
@click.option("--all-layers", is_flag=True, help="Every probed layer (the default).")
@click.option("--limit", type=int, help="Use only the first N sentences.")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
@model_options
def probe_eval(
    treebank: str,
    probe_id: str | None,
    layer: int | None,
    all_layers: bool,
    limit: int | None,
    as_json: bool,
    model: str | None,
    device: str | None,
    database_url: str | None,
) -> None:
    """UUAS, distance Spearman, root accuracy and depth Spearman per layer, beside the chain baseline."""
    from tqdm import tqdm

    from app.methods.probes.features import compute_word_features
    from app.methods.probes.probe_maps import ProbeWeights
    from app.methods.probes.scoring import evaluate_probes
    from app.methods.probes.treebank import read_conllu
    from app.store.db import make_engine
    from app.store.probes import ProbeStore

    if layer is not None and all_layers:
        raise click.UsageError("Give --layer or --all-layers, not both.")
    settings = cli_settings(model=model, device=device, database_url=database_url)
    try:
        sentences = read_conllu(treebank, limit)
        loaded = load_configured_model(settings)
        probes = ProbeStore(make_engine(settings.database_url)).find(probe_id, loaded.revision)
        layers = [layer] if layer is not None else probes.layers
        if layer is not None:
            probes.for_layer(layer)
        index = [probes.layers.index(item) for item in layers]
        weights = ProbeWeights(layers, probes.distance[index], probes.depth[index])
        with tqdm(total=len(sentences), unit="sentence", desc="features") as bar:
            features = compute_word_features(
                loaded,
                sentences,
                max_tokens=min(settings.max_tokens, loaded.max_positions),
                progress=lambda done, total: bar.update(done - bar.n),
            )
        report = evaluate_probes(features, weights)
    except BertscopeError as exc:
        fail(exc)
    report.update({"probe_id": probes.id, "treebank": treebank, "model_revision": loaded.revision})
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo(markdown_table(probe_table(report)))


@probe_group.command("list")
@click.option("--model", help="Model to load (default from settings).")
@click.option("--database-url", help="Store URL (default from settings).")
def probe_list(model: str | None, database_url: str | None) -> None:
    """Probe sets trained on the weights of the configured model."""
    from app.store.db import make_engine
    from app.store.probes import ProbeStore

    settings = cli_settings(model=model, database_url=database_url)
    try:
        loaded = load_configured_model(settings)
        sets = ProbeStore(make_engine(settings.database_url)).list_for_revision(loaded.revision)
    except BertscopeError as exc:
        fail(exc)
    if not sets:
        click.echo(f"no probe sets trained on {loaded.name} @ {loaded.revision}")
    for probes in sets:
        best = max(
            (values.get("uuas") or 0.0 for values in probes.metrics.get("layers", {}).values()), default=0.0
        )
        click.echo(
            f"{probes.id}  {probes.name:<24} layers={probes.layers} rank={probes.rank} "
            f"best dev UUAS={best:.3f}"
        )
