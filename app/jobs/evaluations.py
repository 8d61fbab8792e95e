"""Evaluation jobs: faithfulness of mixing methods, degradation tests of attribution methods, neuron
descriptions against labelled concepts (see app.methods.evaluation)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from functools import partial
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.jobs.contract import JobContext, JobOutcome
from app.jobs.data_files import data_field, text_column_field
from app.jobs.neurons import MAX_CORPORA
from app.jobs.sharded_map import evaluation_shard_size, run_shards, sharded_activations
from app.methods import METHODS
from app.methods.evaluation.degradation import Mode, Order, evaluate_degradation
from app.methods.evaluation.mixing_faithfulness import RANDOM, Row, evaluate_mixing
from app.methods.evaluation.texts import read_labelled, read_texts
from app.methods.features.activations import feature_maxima
from app.modeling.loading import LoadedModel
from app.modeling.targets import HeadLookup, HeadTarget, LinearHead, TargetSpec

MIXING_METHODS = [name for name, method in METHODS.items() if method.kind == "mixing"]


def choices(names: list[str]) -> dict[str, Any]:
    """Schema extra of a ``list[str]`` field whose items are ``names``: the page's form offers exactly those
    (the field's validator still checks them, with an error that lists the valid ones)."""
    return {"items": {"type": "string", "enum": list(names)}}


def known_names(names: list[str], valid: list[str], kind: str) -> list[str]:
    """``names`` unchanged if every one is valid; otherwise an error listing the valid names."""
    unknown = [name for name in names if name not in valid]
    if unknown:
        raise ValueError(f"unknown {kind} method(s) {', '.join(unknown)}; valid: {', '.join(valid)}")
    return names


class EvalMixingParams(BaseModel):
    """Faithfulness of mixing methods against blank-out (see mixing_faithfulness)."""

    model_config = ConfigDict(extra="forbid")
    data: str = data_field(
        "texts",
        title="Data file",
        description="Texts: an uploaded dataset, or a TSV/CSV/JSONL/text file on the server.",
    )
    column: str | None = text_column_field()
    limit: int | None = Field(
        None, ge=1, le=100_000, title="Sentences", description="Use only the first N texts."
    )
    methods: list[str] = Field(
        [*MIXING_METHODS, RANDOM],
        min_length=1,
        description="Mixing methods to evaluate; random is the control.",
        json_schema_extra=choices([*MIXING_METHODS, RANDOM]),
    )
    row: Row = Field(
        "auto",
        description="Mixing row compared with blank-out (auto: [CLS], or [MASK] for masked-token targets).",
    )
    target: TargetSpec | None = Field(
        None,
        description="What to explain (default: the model's natural target).",
        json_schema_extra={"widget": "target", "advanced": True},
    )

    @field_validator("methods")
    @classmethod
    def _known_methods(cls, names: list[str]) -> list[str]:
        return known_names(names, [*MIXING_METHODS, RANDOM], "mixing")


def run_eval_mixing(context: JobContext, params: EvalMixingParams) -> JobOutcome:
    """Run the mixing faithfulness evaluation."""
    texts = read_texts(context.data_path(params.data), params.column, params.limit)
    methods = {name: METHODS.get(name) for name in params.methods}
    options = {
        "methods": methods,
        "target_spec": params.target,
        "row": params.row,
        "max_tokens": context.model.max_tokens,
    }
    with context.model.using_model() as loaded:
        evaluation = _evaluate(context, loaded, evaluate_mixing, texts, options, "first_text")
    return JobOutcome("mixing", evaluation.summary())


def _evaluate(
    context: JobContext,
    loaded: LoadedModel,
    function: Callable[..., Any],
    items: list,
    options: dict[str, Any],
    offset_option: str,
) -> Any:
    """``function(loaded, items, **options)`` here, holding the model per item; or, with a Ray cluster, in
    shards on its workers, joined in item order with the evaluation's ``extend``."""
    if context.shards is None:
        return function(
            loaded, items, **options, exclusive=context.model.exclusive, progress=context.progress
        )
    parts = run_shards(
        context.shards,
        loaded,
        function,
        items,
        options=options,
        shard_size=evaluation_shard_size(context.shards, len(items)),
        offset_option=offset_option,
        progress=context.progress,
        should_stop=context.should_stop,
    )
    evaluation = parts[0]
    for part in parts[1:]:
        evaluation.extend(part)
    return evaluation


ATTRIBUTION_METHODS = [name for name, method in METHODS.items() if method.kind == "attribution"]
DEGRADATION_DEFAULTS = ["iba", "integrated_gradients", "lime", "occlusion", RANDOM]


class EvalDegradationParams(BaseModel):
    """Degradation test of attribution methods (see app.methods.evaluation.degradation)."""

    model_config = ConfigDict(extra="forbid")
    data: str = data_field(
        "texts",
        title="Data file",
        description="Texts (a label column for gold labels): an uploaded dataset, or a TSV/CSV (header) "
        "or JSONL file on the server.",
    )
    text_col: str | None = text_column_field()
    label_col: str | None = Field(
        "label", title="Label column", description="Gold label column; null = explain the prediction."
    )
    limit: int | None = Field(
        None, ge=1, le=100_000, title="Examples", description="Use only the first N rows."
    )
    methods: list[str] = Field(
        list(DEGRADATION_DEFAULTS),
        min_length=1,
        description="Attribution methods to test; random is the control.",
        json_schema_extra=choices([*ATTRIBUTION_METHODS, RANDOM]),
    )
    mode: Mode = Field(
        "delete", title="Removal", description="Remove tokens (delete) or replace them by [MASK] (mask)."
    )
    order: Order = Field("most", description="Remove the most or the least important tokens first.")
    target: TargetSpec | None = Field(
        None,
        description='e.g. a fitted head: {"kind": "head", "head": "sst2"}.',
        json_schema_extra={"widget": "target", "fitted_heads": True},
    )
    method_params: dict[str, dict] = Field(
        default_factory=dict,
        description='Params per method, e.g. {"lime": {"samples": 500}}.',
        json_schema_extra={"widget": "json", "advanced": True},
    )
    seed: int = Field(
        0,
        ge=0,
        le=2**31 - 1,
        description="Random seed (the same seed gives the same result).",
        json_schema_extra={"advanced": True},
    )

    @field_validator("methods")
    @classmethod
    def _known_methods(cls, names: list[str]) -> list[str]:
        return known_names(names, [*ATTRIBUTION_METHODS, RANDOM], "attribution")

    @field_validator("method_params")
    @classmethod
    def _valid_method_params(cls, values: dict[str, dict]) -> dict[str, dict]:
        for name, params in values.items():
            if name not in ATTRIBUTION_METHODS:
                raise ValueError(f"method_params names unknown method {name!r}")
            METHODS[name].Params.model_validate(params)
        return values


def run_eval_degradation(context: JobContext, params: EvalDegradationParams) -> JobOutcome:
    """Run the degradation test."""
    if params.label_col:
        texts, labels = read_labelled(
            context.data_path(params.data), params.text_col, params.label_col, params.limit
        )
        rows: list[tuple[str, str | None]] = list(zip(texts, labels, strict=True))
    else:
        data = context.data_path(params.data)
        rows = [(text, None) for text in read_texts(data, params.text_col, params.limit)]
    with context.model.using_model() as loaded:
        options = {
            "methods": {name: METHODS.get(name) for name in params.methods},
            "target_spec": params.target,
            "mode": params.mode,
            "order": params.order,
            "method_params": params.method_params,
            "heads": _head_lookup(context, loaded, params.target),
            "max_tokens": context.model.max_tokens,
            "seed": params.seed,
        }
        evaluation = _evaluate(context, loaded, evaluate_degradation, rows, options, "first_row")
    return JobOutcome("degradation", evaluation.summary())


def _head_lookup(context: JobContext, loaded: LoadedModel, target: TargetSpec | None) -> HeadLookup:
    """Fitted heads by id or name from the store; for Ray workers (no store), the target's head itself."""

    def from_store(key: str) -> LinearHead:
        return context.stores.heads.find(key, loaded.revision)

    if context.shards is None:
        return from_store
    found = {target.head: from_store(target.head)} if isinstance(target, HeadTarget) else {}
    return found.__getitem__


class LabelledDataSpec(BaseModel):
    """A labelled file whose labels are the sentence-level concepts of the neuron evaluation."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64, examples=["ag_news"], description="Dataset name.")
    path: str = data_field(
        "labelled",
        description="An uploaded labelled dataset, or a labelled TSV/CSV/JSONL file on the server.",
    )
    text_col: str | None = Field(None, description="Text column (default: sentence, text, or the first).")
    label_col: str = Field("label", description="Label column.")
    label_names: dict[str, str] | None = Field(None, description='e.g. {"0": "World", "1": "Sports"}.')
    limit: int | None = Field(None, ge=10, le=1_000_000, description="Use only the first N rows.")


class EvalNeuronsParams(BaseModel):
    """Precision@k / recall@k of unsupervised neuron descriptions against label concepts (AUROC truth)."""

    model_config = ConfigDict(extra="forbid")
    datasets: list[LabelledDataSpec] = Field(
        min_length=1,
        max_length=MAX_CORPORA,
        description="Labelled datasets whose labels are the concepts.",
        json_schema_extra={"widget": "labelled_datasets"},
    )
    exemplars: int = Field(50, ge=1, le=1000, description="Top sentences per neuron.")
    top: int = Field(2, ge=1, le=20, description="k of precision@k and recall@k.")
    threshold: float = Field(0.75, gt=0.5, le=1.0, description="AUROC a true concept must reach.")
    directions: int | None = Field(
        None, ge=0, le=100_000, description="Random directions (default: one per unit)."
    )
    seed: int = Field(0, ge=0, le=2**31 - 1, description="Random seed (the same seed gives the same result).")
    basis: Literal["neurons", "features"] = Field(
        "neurons", description="Units to evaluate: FFN neurons, or the features of a trained dictionary."
    )
    dictionary: str | None = Field(
        None, max_length=200, description="Dictionary id or name for basis 'features' (default: the newest)."
    )


def _held_unless_sharded(context: JobContext) -> AbstractContextManager[object]:
    """The model held for the whole in-process evaluation; nothing held while Ray workers compute."""
    return nullcontext() if context.shards is not None else context.model.exclusive()


def run_eval_neurons(context: JobContext, params: EvalNeuronsParams) -> JobOutcome:
    """Run the neuron description evaluation (app.methods.evaluation.neuron_descriptions)."""
    from app.methods.evaluation.neuron_descriptions import evaluate_neuron_descriptions
    from app.methods.evaluation.texts import read_labelled

    datasets, names = [], {}
    for spec in params.datasets:
        texts, labels = read_labelled(context.data_path(spec.path), spec.text_col, spec.label_col, spec.limit)
        datasets.append((spec.name, texts, labels))
        if spec.label_names:
            names[spec.name] = spec.label_names
    context.progress(0, 1)
    with context.model.using_model() as loaded, _held_unless_sharded(context):
        sharded, basis = None, params.basis
        if params.basis == "features":
            dictionary = context.stores.dictionaries.find(params.dictionary, loaded.revision)
            sharded = partial(
                feature_maxima,
                loaded,
                dictionary.sae(),
                dictionary.layer,
                dictionary.site,
                batch_size=context.settings.neuron_batch_size,
            )
        elif context.shards is not None:
            sharded = sharded_activations(
                context.shards,
                loaded,
                batch_size=context.settings.neuron_batch_size,
                max_tokens=None,
                progress=context.progress,
                should_stop=context.should_stop,
            )
        evaluation = evaluate_neuron_descriptions(
            loaded,
            datasets,
            label_names=names or None,
            exemplars=params.exemplars,
            top=params.top,
            threshold=params.threshold,
            seed=params.seed,
            directions=params.directions,
            batch_size=context.settings.neuron_batch_size,
            activations_of=sharded,
            basis=basis,
        )
    context.progress(1, 1)
    summary = evaluation.summary()
    summary["table"] = evaluation.table()
    summary["examples"] = sum(len(texts) for _, texts, _ in datasets)
    summary["skipped"] = 0
    if params.basis == "features":
        described = dictionary.describe()
        summary["dictionary"] = {key: described[key] for key in ("id", "name", "layer", "site", "width", "k")}
    return JobOutcome("neurons", summary)
