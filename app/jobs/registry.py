"""The kinds of long work that run as jobs: their params (validated before queueing) and what they run."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.errors import InvalidInput
from app.jobs.contract import JobKind, JobOutcome, Progress
from app.jobs.model import LoadModelParams, run_load_model
from app.jobs.neurons import (
    DescribeNeuronsParams,
    EvalNeuronsParams,
    IndexNeuronsParams,
    run_describe_neurons,
    run_eval_neurons,
    run_index_neurons,
)
from app.methods import METHODS
from app.methods.evaluation.degradation import Mode, Order, evaluate_degradation
from app.methods.evaluation.mixing_faithfulness import RANDOM, Row, evaluate_mixing
from app.methods.evaluation.texts import read_labelled, read_texts
from app.methods.probes.pipeline import TrainOptions, train_probe_set
from app.methods.probes.probe_maps import DEFAULT_RANK, MAX_EPOCHS
from app.methods.probes.topological import TTP_EPOCHS
from app.methods.probes.treebank import read_conllu
from app.modeling.heads import fit_head
from app.modeling.targets import TargetSpec
from app.services.runner import Runner
from app.store.probes import ProbeSet

MIXING_METHODS = [name for name, method in METHODS.items() if method.kind == "mixing"]


def known_names(names: list[str], valid: list[str], kind: str) -> list[str]:
    """``names`` unchanged if every one is valid; otherwise an error listing the valid names."""
    unknown = [name for name in names if name not in valid]
    if unknown:
        raise ValueError(f"unknown {kind} method(s) {', '.join(unknown)}; valid: {', '.join(valid)}")
    return names


class EvalMixingParams(BaseModel):
    """Faithfulness of mixing methods against blank-out (see mixing_faithfulness)."""

    model_config = ConfigDict(extra="forbid")
    data: str = Field(description="Path of a TSV/CSV/JSONL/text file on the server.")
    column: str | None = Field(None, description="Text column (default: sentence, text, or the first).")
    limit: int | None = Field(None, ge=1, le=100_000, description="Use only the first N texts.")
    methods: list[str] = Field(default_factory=lambda: [*MIXING_METHODS, RANDOM], min_length=1)
    row: Row = "auto"
    target: TargetSpec | None = None

    @field_validator("methods")
    @classmethod
    def _known_methods(cls, names: list[str]) -> list[str]:
        return known_names(names, [*MIXING_METHODS, RANDOM], "mixing")


def run_eval_mixing(runner: Runner, params: EvalMixingParams, progress: Progress) -> JobOutcome:
    """Run the mixing faithfulness evaluation."""
    texts = read_texts(params.data, params.column, params.limit)
    methods = {name: METHODS.get(name) for name in params.methods}
    evaluation = evaluate_mixing(
        runner.loaded,
        texts,
        methods,
        params.target,
        row=params.row,
        max_tokens=runner.max_tokens,
        model_lock=runner.lock,
        progress=progress,
    )
    return JobOutcome("mixing", evaluation.summary())


class FitHeadParams(BaseModel):
    """Fit a logistic-regression head on frozen pooled embeddings (see app.modeling.heads)."""

    model_config = ConfigDict(extra="forbid")
    data: str = Field(description="Labelled TSV/CSV (header) or JSONL file on the server.")
    text_col: str | None = Field(None, description="Text column (default: sentence, text, or the first).")
    label_col: str = Field("label", description="Label column.")
    dev: str | None = Field(None, description="Held-out file of the same format (default: a 20% split).")
    name: str | None = Field(
        None, max_length=200, description="Name to select the head by (default: file stem)."
    )
    limit: int | None = Field(None, ge=10, le=1_000_000, description="Use only the first N rows.")
    regularisation: float = Field(10.0, gt=0, le=1e6, description="Inverse regularisation strength C.")


def run_fit_head(runner: Runner, params: FitHeadParams, progress: Progress) -> JobOutcome:
    texts, labels = read_labelled(params.data, params.text_col, params.label_col, params.limit)
    dev = read_labelled(params.dev, params.text_col, params.label_col) if params.dev else None
    name = params.name or Path(params.data).stem
    with runner.lock:
        head = fit_head(
            runner.loaded,
            texts,
            labels,
            name=name,
            params=params.model_dump(mode="json"),
            dev=dev,
            regularisation=params.regularisation,
            progress=progress,
        )
    return JobOutcome(head=head)


ATTRIBUTION_METHODS = [name for name, method in METHODS.items() if method.kind == "attribution"]


class EvalDegradationParams(BaseModel):
    """Degradation test of attribution methods (see app.methods.evaluation.degradation)."""

    model_config = ConfigDict(extra="forbid")
    data: str = Field(description="TSV/CSV (header) or JSONL file on the server.")
    text_col: str | None = Field(None, description="Text column (default: sentence, text, or the first).")
    label_col: str | None = Field("label", description="Gold label column; null = explain the prediction.")
    limit: int | None = Field(None, ge=1, le=100_000, description="Use only the first N rows.")
    methods: list[str] = Field(
        default_factory=lambda: ["iba", "integrated_gradients", "lime", "occlusion", RANDOM], min_length=1
    )
    mode: Mode = "delete"
    order: Order = "most"
    target: TargetSpec | None = Field(
        None, description='e.g. a fitted head: {"kind": "head", "head": "sst2"}.'
    )
    method_params: dict[str, dict] = Field(
        default_factory=dict, description='Params per method, e.g. {"lime": {"samples": 500}}.'
    )
    seed: int = Field(0, ge=0, le=2**31 - 1)

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


def run_eval_degradation(runner: Runner, params: EvalDegradationParams, progress: Progress) -> JobOutcome:
    """Run the degradation test."""
    if params.label_col:
        texts, labels = read_labelled(params.data, params.text_col, params.label_col, params.limit)
        rows: list[tuple[str, str | None]] = list(zip(texts, labels, strict=True))
    else:
        rows = [(text, None) for text in read_texts(params.data, params.text_col, params.limit)]
    evaluation = evaluate_degradation(
        runner.loaded,
        rows,
        {name: METHODS.get(name) for name in params.methods},
        params.target,
        mode=params.mode,
        order=params.order,
        method_params=params.method_params,
        heads=runner.find_head,
        max_tokens=runner.max_tokens,
        model_lock=runner.lock,
        progress=progress,
        seed=params.seed,
    )
    return JobOutcome("degradation", evaluation.summary())


class TrainProbesParams(BaseModel):
    """Structural probes of every layer (Hewitt & Manning 2019), tree topological curves (Li et al. 2023)."""

    model_config = ConfigDict(extra="forbid")
    treebank: str = Field(description="CoNLL-U training treebank on the server.")
    dev: str = Field(description="CoNLL-U dev treebank (early stopping and the reported metrics).")
    layers: list[int] | None = Field(None, description="Layers (0 = embeddings); default all.")
    rank: int = Field(DEFAULT_RANK, ge=1, le=4096, description="Rank of the probe maps.")
    max_epochs: int = Field(MAX_EPOCHS, ge=1, le=200)
    limit: int | None = Field(
        None, ge=10, le=1_000_000, description="Use only the first N training sentences."
    )
    topological: bool = Field(
        True, description="Also train SP/SSP/ESSP depth probes (tree topological probe)."
    )
    topological_epochs: int = Field(TTP_EPOCHS, ge=1, le=100)
    control: bool = Field(False, description="Also train on a randomly initialised copy of the model.")
    name: str | None = Field(None, max_length=200, description="Name to select the probe set by.")
    seed: int = Field(0, ge=0, le=2**31 - 1)


def run_train_probes(runner: Runner, params: TrainProbesParams, progress: Progress) -> JobOutcome:
    """Train a probe set on the loaded model and measure it on the dev treebank."""
    train, dev = read_conllu(params.treebank, params.limit), read_conllu(params.dev)
    layers = params.layers
    if layers is not None and not all(0 <= layer <= runner.loaded.num_layers for layer in layers):
        raise InvalidInput(f"params.layers: layers run from 0 (embeddings) to {runner.loaded.num_layers}.")
    options = TrainOptions(
        layers=sorted(set(layers)) if layers else None,
        rank=params.rank,
        max_epochs=params.max_epochs,
        topological=params.topological,
        topological_epochs=params.topological_epochs,
        control=params.control,
        seed=params.seed,
    )
    trained = train_probe_set(
        runner.loaded, train, dev, options, max_tokens=runner.max_tokens, progress=progress, lock=runner.lock
    )
    probes = ProbeSet(
        name=params.name or Path(params.treebank).stem,
        model_name=runner.loaded.name,
        model_revision=runner.loaded.revision,
        layers=trained.weights.layers,
        distance=trained.weights.distance,
        depth=trained.weights.depth,
        params=params.model_dump(mode="json"),
        metrics=trained.metrics,
    )
    return JobOutcome(probes=probes)


JOB_KINDS: dict[str, JobKind] = {
    "index_neurons": JobKind(IndexNeuronsParams, run_index_neurons),
    "describe_neurons": JobKind(DescribeNeuronsParams, run_describe_neurons),
    "eval_neurons": JobKind(EvalNeuronsParams, run_eval_neurons),
    "train_probes": JobKind(TrainProbesParams, run_train_probes),
    "eval_degradation": JobKind(EvalDegradationParams, run_eval_degradation),
    "eval_mixing": JobKind(EvalMixingParams, run_eval_mixing),
    "fit_head": JobKind(FitHeadParams, run_fit_head),
    "load_model": JobKind(LoadModelParams, run_load_model),
}
