"""The ``bertscope`` command: serve the dashboard, run analyses from a terminal, show the model."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from pydantic import TypeAdapter, ValidationError

from app.cli.common import (
    cli_settings,
    fail,
    load_configured_model,
    markdown_table,
    model_options,
    ray_option,
    run_job_here,
)
from app.cli.datasets import datasets_group
from app.cli.features import features_group
from app.cli.neurons import neurons_group
from app.cli.params import given_params, job_options
from app.cli.probes import probe_group
from app.errors import BertscopeError
from app.jobs.evaluations import EvalDegradationParams, EvalMixingParams, EvalNeuronsParams, LabelledDataSpec
from app.jobs.finetune import FinetuneParams
from app.jobs.heads import FitHeadParams
from app.settings import Settings


@click.group()
@click.version_option(package_name="bertscope")
def main() -> None:
    """bertscope: look inside BERT-family encoders."""


@main.command()
@click.option("--model", help="'embedded' (default), a local checkpoint directory or a hub id.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), help="Where the model runs.")
@click.option(
    "--dtype", type=click.Choice(["float32", "float16", "bfloat16"]), help="Half precision: CUDA only."
)
@click.option("--host", help="Interface to listen on (default 127.0.0.1).")
@click.option("--port", type=int, help="Port to listen on (default 8000).")
@click.option("--database-url", help="SQLAlchemy URL of the store (default: SQLite in the user data dir).")
def serve(**options: Any) -> None:
    """Start the dashboard and JSON API."""
    import uvicorn

    from app.main import create_app

    settings = cli_settings(**options)
    click.echo(f"loading model {settings.model!r} ...", err=True)
    try:
        loaded = load_configured_model(settings)
    except BertscopeError as exc:
        fail(exc)
    click.echo(
        f"model {loaded.name} on {loaded.device}; dashboard at http://{settings.host}:{settings.port}/",
        err=True,
    )
    uvicorn.run(create_app(settings, loaded), host=settings.host, port=settings.port, log_level="info")


def _parse_param(raw: str) -> tuple[str, Any]:
    if "=" not in raw:
        raise click.BadParameter(f"{raw!r} is not of the form key=value", param_hint="--param")
    key, value = raw.split("=", 1)
    try:
        return key.strip(), json.loads(value)
    except json.JSONDecodeError:
        return key.strip(), value


@main.command()
@click.argument("method")
@click.option("--text", required=True, help="The sentence to analyse.")
@click.option("--text-pair", help="Optional second sentence.")
@click.option("--param", "params", multiple=True, help="Method parameter key=value (repeatable).")
@click.option("--target", help='Target as JSON, e.g. \'{"kind": "zero_shot", "labels": ["good", "bad"]}\'.')
@model_options
@click.option("--json", "as_json", is_flag=True, help="Print the same JSON as POST /api/analyses.")
def analyze(
    method: str,
    text: str,
    text_pair: str | None,
    params: tuple[str, ...],
    target: str | None,
    model: str | None,
    device: str | None,
    database_url: str | None,
    as_json: bool,
) -> None:
    """Run METHOD on a text, store it, and print the result (or its JSON)."""
    from app.methods import get_method
    from app.services.analyses import AnalysisRequest, analysis_json, dumps
    from app.services.container import build_services
    from app.store.db import make_engine

    settings = cli_settings(model=model, device=device, database_url=database_url)
    # the per-request budget shares a server between users; this process is the caller's own
    settings = settings.model_copy(update={"max_request_cost": sys.maxsize})
    try:
        get_method(method)
        request = AnalysisRequest(
            method=method,
            text=text,
            text_pair=text_pair,
            params=dict(_parse_param(p) for p in params),
            target=None if target is None else TypeAdapter(dict).validate_json(target),
        )
        engine = make_engine(settings.database_url)
        services = build_services(load_configured_model(settings), engine, settings)
        analysis, cached = services.analyses.analyze(request)
    except BertscopeError as exc:
        fail(exc)
    except ValidationError as exc:
        raise click.UsageError(str(exc)) from None
    if as_json:
        click.echo(dumps(analysis_json(analysis, cached=cached)).decode())
        return
    _print_summary(analysis, cached)


def _print_summary(analysis: Any, cached: bool) -> None:
    click.echo(
        f"{analysis.method} on {analysis.model['name']} @ {analysis.model['revision']}"
        f"{' (cached)' if cached else ''}"
    )
    click.echo(f"tokens ({len(analysis.tokens)}): {' '.join(analysis.tokens)}")
    for key, value in analysis.result.items():
        shape = getattr(value, "shape", None)
        click.echo(f"result.{key}: {'array ' + 'x'.join(map(str, shape)) if shape is not None else value}")
    click.echo(f"stored as {analysis.id}: open {analysis.url} on the dashboard")


@main.group("eval")
def eval_group() -> None:
    """Faithfulness evaluations (run here with a progress bar; the dashboard runs them as jobs)."""


@eval_group.command("mixing")
@ray_option
@job_options(EvalMixingParams)
@click.option("--out", type=click.Path(dir_okay=False), help="Write the summary JSON here.")
@model_options
def eval_mixing(
    out: str | None, model: str | None, device: str | None, database_url: str | None, **options: Any
) -> None:
    """Spearman's rho between each method's rolled-out mixing row and blank-out, per layer."""
    settings = cli_settings(model=model, device=device, database_url=database_url)
    _evaluate("eval_mixing", given_params(EvalMixingParams, options), settings, "sentence", out)


@eval_group.command("degradation")
@ray_option
@job_options(EvalDegradationParams, skip={"method_params"})
@click.option("--param", "params", multiple=True, help="Method parameter METHOD.KEY=VALUE (repeatable).")
@click.option("--out", type=click.Path(dir_okay=False), help="Write the summary JSON here.")
@model_options
def eval_degradation(
    params: tuple[str, ...],
    out: str | None,
    model: str | None,
    device: str | None,
    database_url: str | None,
    **options: Any,
) -> None:
    """Remove the top-k% tokens by each attribution and record probability, accuracy, AOPC, ERASER metrics."""
    settings = cli_settings(model=model, device=device, database_url=database_url)
    raw = given_params(EvalDegradationParams, options)
    raw["method_params"] = {}
    for item in params:
        key, value = _parse_param(item)
        if "." not in key:
            raise click.BadParameter(f"{item!r} is not of the form METHOD.KEY=VALUE", param_hint="--param")
        method, name = key.split(".", 1)
        raw["method_params"].setdefault(method, {})[name] = value
    _evaluate("eval_degradation", raw, settings, "example", out)


@eval_group.command("neurons")
@ray_option
@click.option("--dataset", "datasets", multiple=True, required=True, help="NAME=FILE labelled TSV/CSV/JSONL.")
@click.option(
    "--label-names", "label_names", multiple=True, help="NAME=0:World,1:Sports,... (ag_news, sst2 known)."
)
@job_options(LabelledDataSpec, skip={"name", "path", "label_names"})
@job_options(EvalNeuronsParams, skip={"datasets"})
@click.option("--out", help="Also write the result JSON here.")
@model_options
def eval_neurons(
    datasets: tuple[str, ...],
    label_names: tuple[str, ...],
    model: str | None,
    device: str | None,
    database_url: str | None,
    out: str | None,
    **options: Any,
) -> None:
    """Precision@k / recall@k of neuron descriptions against label concepts (docs: evaluations)."""
    from app.methods.evaluation.neuron_descriptions import AG_NEWS_LABELS, SST2_LABELS

    settings = cli_settings(model=model, device=device, database_url=database_url)
    known = {"ag_news": AG_NEWS_LABELS, "sst2": SST2_LABELS}
    names = {key: dict(value) for key, value in known.items()}
    for item in label_names:
        name, _, pairs = item.partition("=")
        try:
            names[name] = dict(pair.split(":", 1) for pair in pairs.split(",") if pair)
        except ValueError:
            raise click.BadParameter(
                f"{item!r} is not NAME=LABEL:NAME,...", param_hint="--label-names"
            ) from None
    shared = given_params(LabelledDataSpec, options)  # text/label columns and limit of every dataset
    specs = []
    for item in datasets:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise click.BadParameter(f"{item!r} is not NAME=FILE", param_hint="--dataset")
        specs.append({"name": name, "path": path, **shared, "label_names": names.get(name)})
    raw = {"datasets": specs, **given_params(EvalNeuronsParams, options)}
    _evaluate("eval_neurons", raw, settings, "step", out)


def _evaluate(kind: str, raw: dict, settings: Settings, unit: str, out: str | None) -> None:
    """Run the evaluation job here, print and store its result."""
    try:
        outcome = run_job_here(kind, raw, settings, unit)
    except BertscopeError as exc:
        fail(exc)
    _report(outcome.evaluation, out)


def _report(evaluation: Any, out: str | None) -> None:
    """Print an evaluation's table and note, write its JSON."""
    from app.figures.evaluation import evaluation_view

    if out:
        Path(out).write_text(json.dumps(evaluation.to_json(), indent=2), encoding="utf-8")
    summary = evaluation.summary
    click.echo(markdown_table(evaluation_view(evaluation.kind, summary, evaluation.model_name)["table"]))
    count = summary.get("sentences", summary.get("examples"))
    click.echo(f"({count} examples; skipped {summary['skipped'] or 'none'})")
    click.echo(f"stored as evaluation {evaluation.id}" + (f"; JSON written to {out}" if out else ""))


@main.group("heads")
def heads_group() -> None:
    """Linear heads fitted on frozen pooled embeddings (selectable as the target {"kind": "head"})."""


@heads_group.command("fit")
@job_options(FitHeadParams)
@model_options
def heads_fit(model: str | None, device: str | None, database_url: str | None, **options: Any) -> None:
    """Fit a logistic-regression head, store it and report held-out accuracy."""
    settings = cli_settings(model=model, device=device, database_url=database_url)
    try:
        head = run_job_here("fit_head", given_params(FitHeadParams, options), settings, "text").head
    except BertscopeError as exc:
        fail(exc)
    metrics = head.metrics
    click.echo(
        f"head {head.name!r} ({head.id}) on {head.model_name} @ {head.model_revision}: labels {head.labels}"
    )
    click.echo(
        f"train accuracy {metrics['train_accuracy']:.4f} (n={metrics['train_size']}); held-out accuracy "
        f"{metrics['held_out_accuracy']:.4f} (n={metrics['held_out_size']}, {metrics['held_out']})"
    )
    click.echo(f'use it as target: {{"kind": "head", "head": "{head.name}"}}')


@heads_group.command("finetune")
@job_options(FinetuneParams)
@model_options
def heads_finetune(model: str | None, device: str | None, database_url: str | None, **options: Any) -> None:
    """Fine-tune the model end to end with a classification head; save a checkpoint --model DIR loads."""
    settings = cli_settings(model=model, device=device, database_url=database_url)
    try:
        raw = given_params(FinetuneParams, options)
        summary = run_job_here("finetune_classifier", raw, settings, "batch").summary
    except BertscopeError as exc:
        fail(exc)
    base = summary["base_model"]
    click.echo(f"fine-tuned {base['name']} @ {base['revision']}: labels {summary['labels']}")
    click.echo(
        f"dev accuracy {summary['dev_accuracy']:.4f} (n={summary['dev_rows']}, {summary['held_out']}); "
        f"{summary['train_rows']} training rows, {len(summary['epochs'])} epochs, {summary['seconds']:.0f} s"
    )
    click.echo(f"checkpoint: {summary['path']}")
    click.echo(f"analyse with it: bertscope serve --model {summary['path']}")


@heads_group.command("list")
@click.option("--model", help="Model to load (default from settings).")
@click.option("--database-url", help="Store URL (default from settings).")
def heads_list(model: str | None, database_url: str | None) -> None:
    """Heads fitted on the weights of the configured model."""
    from app.store.db import make_engine
    from app.store.heads import HeadStore

    settings = cli_settings(model=model, database_url=database_url)
    try:
        loaded = load_configured_model(settings)
        heads = HeadStore(make_engine(settings.database_url)).list_for_revision(loaded.revision)
    except BertscopeError as exc:
        fail(exc)
    if not heads:
        click.echo(f"no heads fitted on {loaded.name} @ {loaded.revision}")
    for head in heads:
        click.echo(
            f"{head.id}  {head.name:<20} labels={head.labels} "
            f"held-out accuracy={head.metrics['held_out_accuracy']:.4f}"
        )


@main.command("model")
@click.option("--model", help="Model to load (default from settings).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def model_command(model: str | None, device: str | None, as_json: bool) -> None:
    """Show which model is loaded, from where, on which device."""
    from app.modeling.targets import available_targets

    settings = cli_settings(model=model, device=device)
    try:
        loaded = load_configured_model(settings)
    except BertscopeError as exc:
        fail(exc)
    info = {**loaded.describe(), "targets": [t["kind"] for t in available_targets(loaded)]}
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    for key, value in info.items():
        click.echo(f"{key:>12}: {value}")


main.add_command(probe_group)
main.add_command(neurons_group)
main.add_command(datasets_group)
main.add_command(features_group)

if __name__ == "__main__":
    main()
