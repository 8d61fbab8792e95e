"""Store round trips on SQLite and PostgreSQL; the codec keeps arrays exact."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from app.errors import NotFound, StoreUnavailable
from app.store.analyses import AnalysisStore, StoredAnalysis
from app.store.codec import pack, unpack
from app.store.db import make_engine
from tests.conftest import sqlite_url


def _analysis(key: str = "k1") -> StoredAnalysis:
    rng = np.random.default_rng(0)
    return StoredAnalysis(
        model={"name": "tiny", "revision": "abc123"},
        method="attention",
        method_version=1,
        params={},
        target=None,
        text="Ünïcödé <b>text</b> 日本",
        text_pair=None,
        tokens=["[CLS]", "x", "[SEP]"],
        encoding={"special": [True, False, True]},
        result={"layers": rng.random((2, 3, 3, 3), dtype=np.float32), "note": "kept", "count": 3},
        cache_key=key,
    )


def test_codec_round_trip_is_exact():
    data = {
        "a": np.arange(12, dtype=np.float32).reshape(3, 4) / 7,
        "b": np.array([1, 2], dtype=np.int64),
        "label": "x",
        "values": [1.5, None],
    }
    back = unpack(pack(data))
    np.testing.assert_array_equal(back["a"], data["a"])
    assert back["a"].dtype == np.float32 and back["b"].dtype == np.int64
    assert back["label"] == "x" and back["values"] == [1.5, None]


def _round_trip(store: AnalysisStore) -> None:
    original = _analysis(key=uuid.uuid4().hex)
    saved = store.save(original)
    assert len(saved.id) >= 12
    loaded = store.get(saved.id)
    assert loaded.text == original.text and loaded.tokens == original.tokens
    np.testing.assert_array_equal(loaded.result["layers"], original.result["layers"])
    assert loaded.result["note"] == "kept"
    assert store.find(original.cache_key).id == saved.id
    assert store.find("missing") is None
    with pytest.raises(NotFound):
        store.get("does-not-exist")
    # a second insert under the same cache key returns the stored one instead of failing
    again = store.save(_analysis(key=original.cache_key))
    assert again.id == saved.id


def test_sqlite_round_trip(tmp_path):
    _round_trip(AnalysisStore(make_engine(sqlite_url(tmp_path))))


@pytest.mark.postgres
def test_postgres_round_trip(pg_url):
    engine = make_engine(pg_url.render_as_string(hide_password=False))
    _round_trip(AnalysisStore(engine))
    engine.dispose()


def test_ids_are_unguessable(tmp_path):
    store = AnalysisStore(make_engine(sqlite_url(tmp_path)))
    ids = {store.save(_analysis(key=f"key-{i}")).id for i in range(50)}
    assert len(ids) == 50
    assert all(len(i) == 12 for i in ids)


def test_unreachable_database_is_a_clear_error():
    store = AnalysisStore(make_engine("postgresql+psycopg://nobody:x@127.0.0.1:9/none?connect_timeout=2"))
    with pytest.raises(StoreUnavailable, match="database is unavailable"):
        store.find("anything")
