"""The neuron index store: build, checkpoint, resume, browse, details, delete; SQLite (and PostgreSQL)."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from types import SimpleNamespace

import numpy as np
import pytest
from sqlalchemy import func, select

from app.errors import InvalidInput, NotFound, StoreUnavailable
from app.jobs.contract import JobContext
from app.jobs.neurons import IndexNeuronsParams, index_corpus, run_index_neurons
from app.methods.neurons.index import build_state, ffn_modules
from app.methods.neurons.stats import HISTOGRAM_BINS, HISTOGRAM_SLOTS
from app.services.runner import Runner
from app.store.db import make_engine
from app.store.neurons import NeuronStore
from app.store.tables import NeuronIndexRow, NeuronLayerRow, NeuronSentenceRow, NeuronSummaryRow
from tests.conftest import make_settings, sqlite_url
from tests.test_neuron_index import CORPUS, K, _assert_same_state

TABLES = (NeuronIndexRow, NeuronSentenceRow, NeuronLayerRow, NeuronSummaryRow)


@pytest.fixture
def store(tmp_path) -> NeuronStore:
    return NeuronStore(make_engine(sqlite_url(tmp_path)))


def _build(loaded, store, **kwargs):
    return index_corpus(loaded, store, "toy", "toy.txt", CORPUS, k=K, batch_size=4, **kwargs)


def _exclusive(lock: threading.Lock):
    """``exclusive`` as the runner hands it out: a fresh context manager holding ``lock``."""

    @contextmanager
    def exclusive():
        with lock:
            yield

    return exclusive


def _row_counts(store: NeuronStore) -> dict[str, int]:
    with store.engine.connect() as connection:
        return {t.__tablename__: connection.scalar(select(func.count()).select_from(t)) for t in TABLES}


def test_build_and_read_back(tiny_bert, store):
    info = _build(tiny_bert, store)
    state = build_state(tiny_bert, CORPUS, k=K, batch_size=4)
    assert (info.status, info.sentences_done, info.sentence_count, info.tokens) == (
        "done",
        12,
        12,
        state.tokens,
    )
    assert (info.model_name, info.model_revision, info.corpus, info.corpus_source) == (
        "tiny-bert",
        tiny_bert.revision,
        "toy",
        "toy.txt",
    )
    assert (info.num_layers, info.num_units, info.k) == (2, 37, K)
    _assert_same_state(store.load_state(info.id), state)
    assert store.find(tiny_bert.revision, "toy").id == info.id
    assert store.find(tiny_bert.revision, "other") is None and store.find("other-revision", "toy") is None
    assert [i.id for i in store.list_for_revision(tiny_bert.revision)] == [info.id]
    assert info.to_json()["created_at"]


def test_neuron_detail(tiny_bert, store):
    info = _build(tiny_bert, store)
    state = store.load_state(info.id)
    detail = store.neuron(info.id, 1, 7)
    assert [e.sentence_id for e in detail.exemplars] == state.top_sentences[1, 7].tolist()
    assert [e.sentence for e in detail.exemplars] == [CORPUS[i] for i in state.top_sentences[1, 7]]
    assert [e.position for e in detail.exemplars] == state.top_positions[1, 7].tolist()
    np.testing.assert_array_equal([e.activation for e in detail.exemplars], state.top_values[1, 7])
    assert detail.count == state.tokens == sum(detail.histogram)
    assert len(detail.histogram) == HISTOGRAM_SLOTS and len(detail.histogram_edges) == HISTOGRAM_BINS + 1
    assert detail.mean == pytest.approx(state.mean[1, 7]) and detail.std == pytest.approx(state.std[1, 7])
    assert detail.maximum == pytest.approx(state.maximum[1, 7]) == detail.exemplars[0].activation
    with pytest.raises(NotFound, match="No neuron .* in the index of corpus .toy.: it has layers 0-1"):
        store.neuron(info.id, 2, 0)
    with pytest.raises(NotFound, match="No neuron index"):
        store.neuron("missing", 0, 0)


def test_browse_pages(tiny_bert, store):
    info = _build(tiny_bert, store)
    state = store.load_state(info.id)
    page = store.neurons_page(info.id, sort="max", limit=5)
    assert page.total == 2 * 37 and len(page.items) == 5
    order = np.argsort(-state.maximum.ravel(), kind="stable")
    assert [(n.layer, n.unit) for n in page.items] == [divmod(int(i), 37) for i in order[:5]]
    second = store.neurons_page(info.id, sort="max", limit=5, offset=5)
    assert [(n.layer, n.unit) for n in second.items] == [divmod(int(i), 37) for i in order[5:10]]
    layer_one = store.neurons_page(info.id, layer=1, sort="std", descending=False, limit=100)
    assert layer_one.total == 37 and {n.layer for n in layer_one.items} == {1}
    stds = [n.std for n in layer_one.items]
    assert stds == sorted(stds)
    np.testing.assert_allclose(stds, np.sort(state.std[1]), rtol=1e-6)
    top = store.neurons_page(info.id, sort="mean", limit=1).items[0]
    assert top.mean == pytest.approx(state.mean.max())
    assert top.top_mean == pytest.approx(state.top_values[top.layer, top.unit].mean())
    with pytest.raises(InvalidInput, match="sort by one of max, mean, std"):
        store.neurons_page(info.id, sort="median")
    with pytest.raises(InvalidInput, match="limit"):
        store.neurons_page(info.id, limit=0)


def test_stopped_build_resumes_from_its_checkpoint(tiny_bert, store):
    answers = iter([False, True])
    stopped = _build(tiny_bert, store, should_stop=lambda: next(answers))
    assert (stopped.status, stopped.sentences_done) == ("building", 4)
    assert store.load_state(stopped.id).sentences_done == 4
    assert store.neurons_page(stopped.id).total == 0  # summaries only once finished
    finished = _build(tiny_bert, store)
    assert finished.id == stopped.id and finished.status == "done"
    _assert_same_state(store.load_state(finished.id), build_state(tiny_bert, CORPUS, k=K, batch_size=4))


def test_crash_keeps_the_last_checkpoint(tiny_bert, store):
    def crash_on_third_batch(done: int, total: int) -> None:
        if done > 8:
            raise RuntimeError("power cut")

    with pytest.raises(RuntimeError, match="power cut"):
        _build(tiny_bert, store, progress=crash_on_third_batch, checkpoint_every=1)
    info = store.find(tiny_bert.revision, "toy")
    assert (info.status, info.sentences_done) == ("building", 8)
    finished = _build(tiny_bert, store)
    _assert_same_state(store.load_state(finished.id), build_state(tiny_bert, CORPUS, k=K, batch_size=4))


def _other_thread_takes(lock: threading.Lock) -> bool:
    """Whether another thread can take ``lock`` now (it releases it at once)."""
    taken: list[bool] = []

    def take() -> None:
        if lock.acquire(timeout=10):
            taken.append(True)
            lock.release()

    thread = threading.Thread(target=take)
    thread.start()
    thread.join()
    return taken == [True]


def test_model_lock_is_taken_per_batch_only(tiny_bert, store):
    lock = threading.Lock()
    held_at_forward: list[bool] = []  # the model lock at each batch's forward pass
    free_between: list[bool] = []  # another thread took the lock while the build was in progress
    held_at_write: list[bool] = []  # the model lock at each checkpoint / final write

    def progress(done: int, total: int) -> None:
        free_between.append(_other_thread_takes(lock))

    def watching(write):
        def watched(*args, **kwargs):
            held_at_write.append(lock.locked())
            return write(*args, **kwargs)

        return watched

    store.save_checkpoint = watching(store.save_checkpoint)
    store.finish = watching(store.finish)
    handle = ffn_modules(tiny_bert)[0].register_forward_hook(lambda *_: held_at_forward.append(lock.locked()))
    try:
        info = _build(tiny_bert, store, progress=progress, checkpoint_every=1, exclusive=_exclusive(lock))
    finally:
        handle.remove()
    batches = -(-len(CORPUS) // 4)
    assert held_at_forward == [True] * batches
    assert free_between == [True] * batches
    assert held_at_write == [False] * batches  # two checkpoints, then finish
    assert not lock.locked()
    _assert_same_state(store.load_state(info.id), build_state(tiny_bert, CORPUS, k=K, batch_size=4))


def test_index_job_lets_requests_interleave(tiny_bert, store, tmp_path):
    corpus = tmp_path / "toy.txt"
    corpus.write_text("\n".join(CORPUS) + "\n", encoding="utf-8")
    runner = Runner(tiny_bert, make_settings(tmp_path, batching=False))
    free: list[bool] = []
    params = IndexNeuronsParams(
        corpora=[{"name": "toy", "path": str(corpus)}], k=K, batch_size=4, describe=False
    )
    stores = SimpleNamespace(neurons=store)

    def progress(done: int, total: int) -> None:
        free.append(_other_thread_takes(runner._lock))

    outcome = run_index_neurons(JobContext(runner, stores, runner.settings, progress), params)
    assert len(free) == -(-len(CORPUS) // 4) and all(free)
    _assert_same_state(store.load_state(outcome.result_id), build_state(tiny_bert, CORPUS, k=K, batch_size=4))


def test_finished_index_is_reused_or_refused(tiny_bert, store):
    info = _build(tiny_bert, store)
    calls = []
    again = _build(tiny_bert, store, progress=lambda *p: calls.append(p))
    assert again.id == info.id and calls == []  # nothing rebuilt
    with pytest.raises(InvalidInput, match="delete it first or choose another corpus name"):
        index_corpus(tiny_bert, store, "toy", "toy.txt", CORPUS[:5], k=K)


def test_unfinished_index_with_other_sentences_starts_afresh(tiny_bert, store):
    answers = iter([False, True])
    stopped = _build(tiny_bert, store, should_stop=lambda: next(answers))
    fresh = index_corpus(tiny_bert, store, "toy", "toy.txt", CORPUS[:6], k=K, batch_size=4)
    assert fresh.id != stopped.id and (fresh.status, fresh.sentence_count) == ("done", 6)
    with pytest.raises(NotFound):
        store.get(stopped.id)


def test_delete_removes_everything(tiny_bert, store):
    info = _build(tiny_bert, store)
    assert all(count > 0 for count in _row_counts(store).values())
    store.delete(info.id)
    assert all(count == 0 for count in _row_counts(store).values())
    with pytest.raises(NotFound):
        store.get(info.id)
    with pytest.raises(NotFound):
        store.delete(info.id)


def test_bad_corpus_name_is_refused(tiny_bert, store):
    with pytest.raises(InvalidInput, match="is not allowed"):
        index_corpus(tiny_bert, store, "my corpus", "x.txt", CORPUS, k=K)


def test_unreachable_database_is_a_clear_error():
    store = NeuronStore(make_engine("postgresql+psycopg://nobody:x@127.0.0.1:9/none?connect_timeout=2"))
    with pytest.raises(StoreUnavailable, match="database is unavailable"):
        store.list_for_revision("abc")


@pytest.mark.postgres
def test_postgres_round_trip(tiny_bert, pg_url):
    store = NeuronStore(make_engine(pg_url.render_as_string(hide_password=False)))
    answers = iter([False, True])
    _build(tiny_bert, store, should_stop=lambda: next(answers))
    info = _build(tiny_bert, store)
    _assert_same_state(store.load_state(info.id), build_state(tiny_bert, CORPUS, k=K, batch_size=4))
    assert store.neurons_page(info.id, layer=0).total == 37
    assert store.neuron(info.id, 0, 0).exemplars
    store.delete(info.id)
