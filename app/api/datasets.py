"""Uploaded datasets: multipart upload (validated before any job sees it), list, fetch, delete."""

from __future__ import annotations

from typing import Any, Literal, get_args

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from app.api.admin import require_uploader
from app.api.deps import get_services
from app.api.responses import NumpyJSONResponse
from app.api.schemas import ADMIN_ERRORS, ERRORS
from app.datasets import DatasetKind
from app.errors import InvalidInput
from app.services.datasets import Datasets, Upload

router = APIRouter(prefix="/api", tags=["datasets"])
UPLOAD_FIELDS = ("file", "name", "kind", "text_column", "label_column")
KINDS = get_args(DatasetKind)


def get_datasets(request: Request) -> Datasets:
    return get_services(request).datasets


def _text_field(form: Any, name: str) -> str | None:
    value = form.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"Form field {name!r} must be text, not a file.")
    return value.strip() or None


UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary", "description": "The data file."},
                        "name": {"type": "string", "description": "Dataset name (default: the file's stem)."},
                        "kind": {"type": "string", "enum": list(KINDS), "description": "Default: inferred."},
                        "text_column": {"type": "string", "description": "Text column of a table."},
                        "label_column": {"type": "string", "description": "Label column (default: label)."},
                    },
                }
            }
        },
    }
}


@router.post(
    "/datasets",
    status_code=201,
    dependencies=[Depends(require_uploader)],
    responses={200: {"description": "The same file was stored before: that dataset."}, **ADMIN_ERRORS},
    openapi_extra=UPLOAD_BODY,
)
async def upload_dataset(request: Request, datasets: Datasets = Depends(get_datasets)) -> NumpyJSONResponse:
    """Upload a data file as a named dataset: UTF-8 text (one per line), TSV/CSV with a header, JSONL, or a
    CoNLL-U treebank. It is validated first (errors name the line and column); the same file twice is one
    dataset (200 instead of 201). Jobs take it as ``dataset:<id>`` in their data fields."""
    async with request.form(max_files=1, max_fields=len(UPLOAD_FIELDS)) as form:
        unknown = sorted(set(form.keys()) - set(UPLOAD_FIELDS))
        if unknown:
            fields = ", ".join(UPLOAD_FIELDS)
            raise InvalidInput(f"Unknown form field(s) {', '.join(unknown)}; the fields are {fields}.")
        file = form.get("file")
        if not isinstance(file, UploadFile):
            raise InvalidInput("Send the data file as the multipart form field 'file'.")
        kind = _text_field(form, "kind")
        if kind is not None and kind not in KINDS:
            raise InvalidInput(f"Unknown dataset kind {kind!r}. Valid kinds: {', '.join(KINDS)}.")
        upload = Upload(
            stream=file.file,
            filename=file.filename or "",
            name=_text_field(form, "name"),
            kind=kind,  # type: ignore[arg-type]
            text_column=_text_field(form, "text_column"),
            label_column=_text_field(form, "label_column"),
        )
        info, created = await run_in_threadpool(datasets.upload, upload)
    return NumpyJSONResponse({**info.to_json(), "created": created}, status_code=201 if created else 200)


@router.get("/datasets", responses=ERRORS)
def list_datasets(
    kind: Literal["texts", "labelled", "treebank"] | None = None, datasets: Datasets = Depends(get_datasets)
) -> list[dict[str, Any]]:
    """Uploaded datasets, newest first (optionally of one kind)."""
    return [info.to_json() for info in datasets.list(kind)]


@router.get("/datasets/{dataset_id}", responses=ERRORS)
def get_dataset(dataset_id: str, datasets: Datasets = Depends(get_datasets)) -> dict[str, Any]:
    return datasets.get(dataset_id).to_json()


@router.delete("/datasets/{dataset_id}", dependencies=[Depends(require_uploader)], responses=ADMIN_ERRORS)
def delete_dataset(dataset_id: str, datasets: Datasets = Depends(get_datasets)) -> dict[str, Any]:
    """Delete a dataset and its content (results computed from it stay)."""
    datasets.delete(dataset_id)
    return {"deleted": dataset_id}
