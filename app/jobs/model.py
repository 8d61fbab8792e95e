"""Switching the resident model at run time (an admin job): load the new weights, then swap them in.

The new model loads while the old one keeps serving; the swap itself waits until no request is using the
old model (the runner's ``swap_model``), so no analysis mixes a tokenizer of one checkpoint with the
weights of another. Stored analyses are keyed by weights revision, so nothing cached for the old model
is served for the new one. ``trust_remote_code`` is never enabled (see app.modeling.loading).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.jobs.contract import JobContext, JobOutcome
from app.modeling.loading import load_model


class LoadModelParams(BaseModel):
    """Load another checkpoint ('embedded', a local directory or a hub id) and make it the resident model."""

    model_config = ConfigDict(extra="forbid")
    model: str = Field(
        min_length=1,
        max_length=1000,
        examples=["embedded", "/models/bert-base-uncased"],
        description="'embedded', a local checkpoint directory or a hub id.",
    )
    device: Literal["auto", "cpu", "cuda"] | None = Field(None, description="Default: the server's setting.")
    dtype: Literal["float32", "float16", "bfloat16"] | None = Field(
        None, title="Precision", description="Default: the server's setting (float16 and bfloat16 on GPU)."
    )


def run_load_model(context: JobContext, params: LoadModelParams) -> JobOutcome:
    """Load, then swap; the job's result id is the new weights revision."""
    settings, progress = context.settings, context.progress
    progress(0, 2)
    loaded = load_model(
        params.model,
        params.device or settings.device,
        params.dtype or settings.dtype,
        settings.hub_offline,
        settings.cache_dir,
    )
    progress(1, 2)
    context.model.swap_model(loaded)
    progress(2, 2)
    return JobOutcome(result_id=loaded.revision)
