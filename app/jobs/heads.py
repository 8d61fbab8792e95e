"""The ``fit_head`` job: a logistic-regression head on frozen pooled embeddings (app.modeling.heads)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from app.jobs.contract import JobContext, JobOutcome
from app.jobs.data_files import data_field, label_column_field, text_column_field
from app.methods.evaluation.texts import read_labelled
from app.modeling.heads import fit_head


class FitHeadParams(BaseModel):
    """Fit a logistic-regression head on frozen pooled embeddings (see app.modeling.heads)."""

    model_config = ConfigDict(extra="forbid")
    data: str = data_field(
        "labelled",
        title="Data file",
        description="Labelled texts: an uploaded dataset, or a TSV/CSV (header) or JSONL file on the server.",
    )
    text_col: str | None = text_column_field()
    label_col: str = label_column_field()
    dev: str | None = data_field(
        "labelled",
        None,
        title="Dev file",
        description="Held-out labelled texts with the same columns (default: a 20% split).",
        json_schema_extra={"advanced": True},
    )
    name: str | None = Field(
        None, max_length=200, description="Name to select the head by (default: file stem)."
    )
    limit: int | None = Field(
        None, ge=10, le=1_000_000, title="Rows", description="Use only the first N rows."
    )
    regularisation: float = Field(
        10.0,
        gt=0,
        le=1e6,
        description="Inverse regularisation strength C.",
        json_schema_extra={"advanced": True},
    )


def run_fit_head(context: JobContext, params: FitHeadParams) -> JobOutcome:
    data = context.data_path(params.data)
    texts, labels = read_labelled(data, params.text_col, params.label_col, params.limit)
    dev = (
        read_labelled(context.data_path(params.dev), params.text_col, params.label_col)
        if params.dev
        else None
    )
    name = params.name or Path(data).stem
    with context.model.exclusive() as loaded:
        head = fit_head(
            loaded,
            texts,
            labels,
            name=name,
            params=params.model_dump(mode="json"),
            dev=dev,
            regularisation=params.regularisation,
            progress=context.progress,
        )
    return JobOutcome(head=head)
