"""The data a job reads: a file path on the server (CLI, admin) or an uploaded dataset (``dataset:<id>``).

Job params declare each such field with :func:`data_field`, naming the kind of data it needs; the page's form
offers the uploaded datasets of that kind (and an upload) for it, :func:`data_references` finds every such
value in a params model (nested specs included), :func:`check_references` refuses missing or unfitting data
before a job is queued, and a running job reads through :func:`local_path`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from app.errors import InvalidInput, NotFound
from app.settings import Settings
from app.store.stores import Stores

DataKind = Literal["texts", "labelled", "treebank"]
DATASET_PREFIX = "dataset:"
DATA_WIDGET = "dataset"
# which stored kinds can serve a field: any file with texts serves "texts" (a labelled table's text column,
# a treebank's sentences); labels and trees must be there
SERVES: dict[str, set[str]] = {
    "texts": {"texts", "labelled", "treebank"},
    "labelled": {"labelled"},
    "treebank": {"treebank"},
}
KIND_NAMES = {
    "texts": "texts",
    "labelled": "labelled texts (a label column)",
    "treebank": "a CoNLL-U treebank",
}


def data_field(kind: DataKind, default: Any = ..., **options: Any) -> Any:
    """A params field holding a server path or ``dataset:<id>`` of data of ``kind``."""
    extra = {"widget": DATA_WIDGET, "dataset_kind": kind, **options.pop("json_schema_extra", {})}
    return Field(default, json_schema_extra=extra, **options)


def text_column_field() -> Any:
    """The params field naming the text column of a data file."""
    return Field(
        None, title="Text column", description="Text column (default: sentence, text, or the first)."
    )


def label_column_field() -> Any:
    """The params field naming the label column of a labelled data file."""
    return Field("label", title="Label column", description="Label column.")


def is_dataset(value: str) -> bool:
    return value.startswith(DATASET_PREFIX)


def dataset_id(value: str) -> str:
    return value.removeprefix(DATASET_PREFIX).strip()


def data_references(params: BaseModel) -> list[tuple[str, str, str]]:
    """``(field path, value, kind)`` of every data field set in ``params`` (nested models and lists too)."""
    found: list[tuple[str, str, str]] = []
    for name, info in type(params).model_fields.items():
        value = getattr(params, name)
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        if extra.get("widget") == DATA_WIDGET and isinstance(value, str):
            found.append((name, value, str(extra["dataset_kind"])))
            continue
        items = value if isinstance(value, list) else [value]
        for position, item in enumerate(items):
            if isinstance(item, BaseModel):
                where = f"{name}[{position}]" if isinstance(value, list) else name
                found.extend((f"{where}.{path}", v, k) for path, v, k in data_references(item))
    return found


def check_references(params: BaseModel, stores: Stores) -> None:
    """Every referenced dataset exists and holds the kind of data its field needs; every server path is a
    file. Raised as 4xx errors naming the field, before the job is queued."""
    for where, value, kind in data_references(params):
        if is_dataset(value):
            try:
                info = stores.datasets.get(dataset_id(value))
            except NotFound:
                raise NotFound(
                    f"params.{where}: no dataset {dataset_id(value)!r}; upload the file or pick one "
                    "from the list."
                ) from None
            if info.kind not in SERVES[kind]:
                raise InvalidInput(
                    f"params.{where}: dataset {info.name!r} holds {KIND_NAMES[info.kind]}, but this "
                    f"field needs {KIND_NAMES[kind]}."
                )
        elif not Path(value).is_file():
            raise InvalidInput(f"params.{where}: no file {value!r} on the server.")


def server_paths(params: BaseModel) -> list[str]:
    """The data fields of ``params`` that name a server path rather than an uploaded dataset."""
    return [where for where, value, _ in data_references(params) if not is_dataset(value)]


def local_path(value: str, stores: Stores, settings: Settings) -> str:
    """A file the readers can open for ``value``: the path itself, or the dataset written out once."""
    if not is_dataset(value):
        return value
    return str(stores.datasets.write_file(dataset_id(value), Path(settings.dataset_cache_dir)))
