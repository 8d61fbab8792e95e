"""The job registry: an explicit dict literal, one entry per kind of long work."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from app.errors import InvalidInput, NotFound, format_validation_error
from app.jobs.contract import JobKind
from app.jobs.evaluations import (
    EvalDegradationParams,
    EvalMixingParams,
    EvalNeuronsParams,
    run_eval_degradation,
    run_eval_mixing,
    run_eval_neurons,
)
from app.jobs.feature_index import IndexFeaturesParams, run_index_features
from app.jobs.features import TrainDictionaryParams, run_train_dictionary
from app.jobs.finetune import FinetuneParams, run_finetune_classifier
from app.jobs.heads import FitHeadParams, run_fit_head
from app.jobs.model import LoadModelParams, run_load_model
from app.jobs.neurons import (
    DescribeNeuronsParams,
    IndexNeuronsParams,
    run_describe_neurons,
    run_index_neurons,
)
from app.jobs.probes import TrainProbesParams, run_train_probes

JOBS: dict[str, JobKind] = {
    "index_neurons": JobKind(IndexNeuronsParams, run_index_neurons, "Index neurons over corpora"),
    "describe_neurons": JobKind(DescribeNeuronsParams, run_describe_neurons, "Describe neurons"),
    "eval_neurons": JobKind(EvalNeuronsParams, run_eval_neurons, "Evaluate neuron descriptions"),
    "train_probes": JobKind(TrainProbesParams, run_train_probes, "Train structural probes"),
    "train_dictionary": JobKind(TrainDictionaryParams, run_train_dictionary, "Train a dictionary (SAE)"),
    "index_features": JobKind(IndexFeaturesParams, run_index_features, "Index and describe features"),
    "eval_degradation": JobKind(EvalDegradationParams, run_eval_degradation, "Degradation test"),
    "eval_mixing": JobKind(EvalMixingParams, run_eval_mixing, "Mixing faithfulness"),
    "fit_head": JobKind(FitHeadParams, run_fit_head, "Fit a classification head"),
    "finetune_classifier": JobKind(  # admin: writes a checkpoint to the server's disk
        FinetuneParams, run_finetune_classifier, "Fine-tune a classifier (checkpoint)", admin_only=True
    ),
    "load_model": JobKind(LoadModelParams, run_load_model, "Load another model", admin_only=True),
}


def get_job_kind(kind: str) -> JobKind:
    """The registered job kind called ``kind``; unknown names list the valid ones."""
    if kind not in JOBS:
        raise NotFound(f"Unknown job kind {kind!r}. Valid kinds: {', '.join(JOBS)}.")
    return JOBS[kind]


def parse_params(kind: str, params: dict[str, Any]) -> BaseModel:
    """Validate a job's params; unknown kinds and bad params are clear 4xx errors."""
    model = get_job_kind(kind).Params
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        raise InvalidInput(format_validation_error(exc, prefix="params.")) from None
