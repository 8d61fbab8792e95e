"""The dataset store on SQLite and PostgreSQL: one dataset per content and kind, content written and read
back in chunks exactly, deletes that leave nothing behind, and a failure mid-save that stores nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import select

import app.store.datasets as datasets_module
from app.errors import NotFound
from app.store.datasets import DatasetStore, NewDataset, safe_stem
from app.store.db import make_engine, session_scope
from app.store.tables import DatasetChunkRow
from tests.conftest import sqlite_url


def _new(path: Path, sha: str = "a" * 64, kind: str = "texts") -> NewDataset:
    return NewDataset(
        name="my corpus/../x",
        kind=kind,
        format=".txt",
        filename="../x.txt",
        sha256=sha,
        size_bytes=path.stat().st_size,
        rows=3,
        summary={"rows": 3},
    )


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request, tmp_path) -> DatasetStore:
    if request.param == "sqlite":
        url = sqlite_url(tmp_path)
    else:
        url = request.getfixturevalue("pg_url").render_as_string(hide_password=False)
    engine = make_engine(url)
    yield DatasetStore(engine)
    engine.dispose()


def _chunk_count(store: DatasetStore, dataset_id: str) -> int:
    with session_scope(store.engine) as session:
        query = select(DatasetChunkRow).where(DatasetChunkRow.dataset_id == dataset_id)
        return len(session.scalars(query).all())


def test_content_round_trips_in_chunks(store, tmp_path, monkeypatch):
    monkeypatch.setattr(datasets_module, "CHUNK_BYTES", 1000)  # several chunks for a small file
    content = tmp_path / "upload"
    content.write_bytes(os.urandom(4500))
    info, created = store.save(_new(content), content)
    assert created and _chunk_count(store, info.id) == 5
    again, created_again = store.save(_new(content), content)
    assert not created_again and again.id == info.id and store.count() == 1
    other_kind, created_other = store.save(_new(content, kind="labelled"), content)
    assert created_other and other_kind.id != info.id  # the same bytes read as another kind: its own dataset
    written = store.write_file(info.id, tmp_path / "cache")
    assert written.read_bytes() == content.read_bytes()
    assert written.parent == tmp_path / "cache" / info.id and written.name == "my_corpus_.._x.txt"
    assert store.write_file(info.id, tmp_path / "cache") == written  # written once, then reused
    store.delete(info.id)
    assert _chunk_count(store, info.id) == 0 and [d.id for d in store.list()] == [other_kind.id]
    with pytest.raises(NotFound):
        store.get(info.id)


def test_a_failure_mid_save_stores_nothing(store, tmp_path, monkeypatch):
    content = tmp_path / "upload"
    content.write_bytes(b"x" * 3000)
    monkeypatch.setattr(datasets_module, "CHUNK_BYTES", 1000)

    def failing_chunks(handle):
        yield handle.read(1000)
        raise OSError("disk gone")

    monkeypatch.setattr(datasets_module, "_chunks", failing_chunks)
    with pytest.raises(OSError):
        store.save(_new(content), content)
    assert store.count() == 0 and store.list() == []
    with session_scope(store.engine) as session:
        assert session.scalars(select(DatasetChunkRow)).all() == []


def test_safe_stems_keep_only_plain_characters():
    assert safe_stem("reviews") == "reviews"
    assert safe_stem("../../etc/passwd") == "etc_passwd"
    assert safe_stem("<script>") == "script"
    assert safe_stem("...") == "dataset"
    assert len(safe_stem("x" * 500)) == 80


def test_gold_trees_are_found_in_uploaded_treebanks(tmp_path):
    """A probe set trained on uploaded datasets names them as dataset:<id>: the lookup reads them through its
    resolver, and a reference it cannot resolve (a deleted dataset) has no sentences instead of failing."""
    from app.methods.probes.lookup import TreebankLookup
    from tests.treebanks import write_treebank

    treebank = write_treebank(tmp_path / "dev.conllu")

    def resolve(value: str) -> str:
        if value == "dataset:gone":
            raise NotFound("No dataset 'gone'.")
        return str(treebank) if value == "dataset:dev" else value

    probes = _probe_set("dataset:dev")
    examples = TreebankLookup(resolve).examples(probes, 3, min_words=1)
    assert examples and TreebankLookup(resolve).find(probes, examples[0]) is not None
    gone = _probe_set("dataset:gone")
    assert TreebankLookup(resolve).examples(gone, 3, min_words=1) == []


def _probe_set(dev: str):
    """A probe set record whose dev treebank is ``dev`` (no weights: only the lookup reads it)."""
    from app.methods.probes.probe_set import ProbeSet

    return ProbeSet(
        name="p",
        model_name="m",
        model_revision="r",
        layers=[0],
        distance={},
        depth={},
        params={"dev": dev},
        metrics={},
    )
