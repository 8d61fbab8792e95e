"""The ``finetune_classifier`` job: fine-tune a copy of the loaded encoder with a classification head and
save it as a checkpoint that ``--model DIR`` (or the ``load_model`` job) opens as a classifier.

The resident model is held (``using_model``) only while its weights are copied; training runs on the copy,
so analyses and model swaps go on meanwhile. The checkpoint is written to a hidden directory beside its final
place and renamed when complete: a cancelled or failed job leaves no half-written checkpoint.
"""

from __future__ import annotations

import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from app.errors import InvalidInput
from app.jobs.contract import JobContext, JobOutcome
from app.jobs.data_files import data_field, label_column_field, text_column_field
from app.methods.evaluation.texts import read_labelled
from app.modeling.finetune import (
    FinetuneOptions,
    copy_classifier,
    finetune,
    save_finetuned,
    training_facts,
)

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"


class FinetuneParams(BaseModel):
    """Fine-tune the loaded encoder end to end with a classification head (see app.modeling.finetune)."""

    model_config = ConfigDict(extra="forbid")
    data: str = data_field(
        "labelled",
        title="Data file",
        description="Labelled texts to train on: an uploaded dataset, or a TSV/CSV (header) or JSONL file on "
        "the server.",
    )
    text_col: str | None = text_column_field()
    label_col: str = label_column_field()
    dev: str | None = data_field(
        "labelled",
        None,
        title="Dev file",
        description="Held-out labelled texts with the same columns (default: a stratified 10% split).",
    )
    name: str | None = Field(
        None,
        max_length=32,
        pattern=NAME_PATTERN,
        description="Checkpoint name: a directory under the models directory (default: <data>-finetuned).",
    )
    limit: int | None = Field(
        None, ge=10, le=1_000_000, title="Rows", description="Train on the first N rows only."
    )
    epochs: int = Field(2, ge=1, le=20, description="Passes over the training rows.")
    learning_rate: float = Field(
        1e-4, gt=0, le=1e-2, description="Peak AdamW learning rate.", json_schema_extra={"advanced": True}
    )
    batch_size: int = Field(
        32, ge=1, le=1024, description="Texts per training step.", json_schema_extra={"advanced": True}
    )
    max_length: int = Field(
        128,
        ge=8,
        le=512,
        title="Max tokens",
        description="Longer texts are cut to this many tokens.",
        json_schema_extra={"advanced": True},
    )
    seed: int = Field(
        0,
        ge=0,
        description="Seed of the head, batch order and dropout.",
        json_schema_extra={"advanced": True},
    )
    train_word_embeddings: bool = Field(
        False,
        description="Also train the word-embedding matrix (slower on CPU; frozen by default).",
        json_schema_extra={"advanced": True},
    )

    def options(self) -> FinetuneOptions:
        return FinetuneOptions(
            epochs=self.epochs,
            learning_rate=self.learning_rate,
            batch_size=self.batch_size,
            max_length=self.max_length,
            seed=self.seed,
            train_word_embeddings=self.train_word_embeddings,
        )


def default_name(data: str) -> str:
    """``<file stem>-finetuned``, cut to 32 characters, with anything outside ``NAME_PATTERN`` as '-'."""
    stem = re.sub(r"[^A-Za-z0-9._-]", "-", Path(data).stem).lstrip("._-") or "data"
    return f"{stem[:22]}-finetuned"


def checkpoint_dir(models_dir: Path, name: str) -> Path:
    """Where checkpoint ``name`` goes; an existing one is never overwritten."""
    directory = Path(models_dir) / name
    if directory.exists():
        raise InvalidInput(
            f"params.name: a checkpoint {name!r} already exists at {directory}; choose another name or "
            "delete that directory."
        )
    return directory


def run_finetune_classifier(context: JobContext, params: FinetuneParams) -> JobOutcome:
    """Read the data, copy the encoder, train, save; the result id is the checkpoint's name and the summary
    holds its path and what the training measured."""
    data = context.data_path(params.data)
    name = params.name or default_name(data)
    directory = checkpoint_dir(context.settings.models_dir, name)
    texts, labels = read_labelled(data, params.text_col, params.label_col, params.limit)
    dev = (
        read_labelled(context.data_path(params.dev), params.text_col, params.label_col)
        if params.dev
        else None
    )
    options = params.options()
    with context.model.using_model() as loaded:
        start = copy_classifier(loaded, labels, options)
    result = finetune(
        start,
        texts,
        labels,
        dev=dev,
        options=options,
        progress=context.progress,
        should_stop=context.should_stop,
    )
    context.stop_if_asked()
    facts = {
        "name": name,
        "path": str(directory),
        "data": params.data,
        "dev": params.dev,
        "params": params.model_dump(mode="json"),
        "created_at": datetime.now(UTC).isoformat(),
    }
    staging = directory.with_name(f".{name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        save_finetuned(result, staging, facts)
        staging.rename(directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return JobOutcome(result_id=name, summary={**facts, **training_facts(result)})
