"""Uploaded datasets: take a file from a request, validate it before any job sees it, store it once.

The upload is copied to a temporary file in pieces while its SHA-256 is computed (never whole in memory); a
file over ``max_upload_bytes`` is refused as soon as the copy passes the limit. Validation
(:mod:`app.datasets`) names the line and column of the first problem; only a valid file is stored, and the
same bytes of the same kind are one dataset.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import BinaryIO

from app.datasets import DatasetKind, validate_dataset
from app.errors import BertscopeError, InvalidInput
from app.settings import Settings
from app.store.datasets import DatasetInfo, DatasetStore, NewDataset

COPY_BYTES = 1 << 20
UTF8_BOM = b"\xef\xbb\xbf"
MAX_NAME = 200


class UploadTooLarge(BertscopeError):
    """An uploaded file is over the configured size limit."""

    code = "upload_too_large"
    status = 413


@dataclass(frozen=True)
class Upload:
    """What a person sent: the file (a binary stream), its name as they gave it, and their choices."""

    stream: BinaryIO
    filename: str
    name: str | None = None
    kind: DatasetKind | None = None
    text_column: str | None = None
    label_column: str | None = None


def display_name(upload: Upload) -> str:
    """The dataset's name: the one given, else the file's stem (the user's text, kept as text: it is shown
    escaped and never used as a path)."""
    given = (upload.name or "").strip()
    if given:
        name = given
    else:
        stem = PurePath(upload.filename.replace("\\", "/")).name
        name = stem.rsplit(".", 1)[0] if "." in stem.strip(".") else stem
    name = "".join(char for char in name if char.isprintable()).strip()
    if not name:
        raise InvalidInput("The dataset needs a name: give one, or upload a file with a name.")
    return name[:MAX_NAME]


def _copy_limited(stream: BinaryIO, target: BinaryIO, limit: int) -> tuple[str, int]:
    """Copy ``stream`` to ``target`` in pieces (dropping a UTF-8 byte-order mark); SHA-256 and size."""
    digest, size, first = hashlib.sha256(), 0, True
    while chunk := stream.read(COPY_BYTES):
        if first:
            chunk, first = chunk.removeprefix(UTF8_BOM), False
        size += len(chunk)
        if size > limit:
            raise UploadTooLarge(
                f"The file is larger than {limit} bytes (setting BERTSCOPE_MAX_UPLOAD_BYTES); upload a "
                "smaller file or a slice of it."
            )
        digest.update(chunk)
        target.write(chunk)
    return digest.hexdigest(), size


class Datasets:
    """The datasets service the API and the pages use."""

    def __init__(self, store: DatasetStore, settings: Settings) -> None:
        self.store = store
        self.settings = settings

    def upload(self, upload: Upload) -> tuple[DatasetInfo, bool]:
        """Validate and store an uploaded file; ``(dataset, created)``: the same file again is one dataset."""
        name = display_name(upload)
        descriptor, temporary = tempfile.mkstemp(prefix="bertscope-upload-")
        path = Path(temporary)
        try:
            with os.fdopen(descriptor, "wb") as handle:
                sha256, size = _copy_limited(upload.stream, handle, self.settings.max_upload_bytes)
            summary = validate_dataset(
                path,
                upload.filename,
                upload.kind,
                text_column=upload.text_column,
                label_column=upload.label_column,
                max_rows=self.settings.max_dataset_rows,
            )
            new = NewDataset(
                name=name,
                kind=summary.kind,
                format=summary.format,
                filename=upload.filename[:500],
                sha256=sha256,
                size_bytes=size,
                rows=summary.rows,
                summary=summary.to_json(),
            )
            return self.store.save(new, path)
        finally:
            path.unlink(missing_ok=True)

    def list(self, kind: str | None = None) -> list[DatasetInfo]:
        return self.store.list(kind)

    def get(self, dataset_id: str) -> DatasetInfo:
        return self.store.get(dataset_id)

    def delete(self, dataset_id: str) -> None:
        self.store.delete(dataset_id)
