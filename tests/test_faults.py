"""Fault tolerance: the database down at start or lost mid-run (503s, then recovery without a restart)."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from app.data import SAMPLE_CORPUS
from app.errors import StoreUnavailable
from app.main import create_app
from app.store.db import RETRY_AFTER_S, check_connection, make_engine
from app.store.records import RecordStore
from tests.conftest import make_settings
from tests.tiny import slow_index_job, wait_for_job, write_corpus

TEXT = "the cat sat on the mat"
UNREACHABLE = "cannot be reached"
SAMPLE = str(SAMPLE_CORPUS)  # a file that exists: the job is refused only because the store is down

# every store-using endpoint and page, with a request that reaches the store (ids need not exist: the
# store is asked before it could answer 404)
STORE_REQUESTS = [
    ("post", "/api/analyses", {"method": "attention", "text": TEXT}),
    ("get", "/api/analyses/nosuchid00", None),
    ("get", "/api/analyses/nosuchid00/figure", None),
    ("post", "/api/analyses/nosuchid00/randomisation", None),
    ("get", "/api/analyses/nosuchid00/neurons", None),
    ("get", "/api/compare/nosuchid00,nosuchid01/figure", None),
    ("get", "/api/model", None),  # lists the fitted heads among the targets
    ("get", "/api/heads", None),
    ("get", "/api/heads/some-head", None),
    ("get", "/api/jobs", None),
    ("post", "/api/jobs", {"kind": "index_neurons", "params": {"corpora": [{"name": "x", "path": SAMPLE}]}}),
    ("get", "/api/jobs/nosuchid00", None),
    ("post", "/api/jobs/nosuchid00/cancel", None),
    ("get", "/api/evaluations", None),
    ("get", "/api/evaluations/nosuchid00", None),
    ("get", "/api/evaluations/nosuchid00/figure", None),
    ("get", "/api/probes", None),
    ("get", "/api/probes/nosuchid00", None),
    ("get", "/api/probes/nosuchid00/figure", None),
    ("get", "/api/neurons", None),
    ("get", "/api/neurons/summary", None),
    ("get", "/api/neurons/0/1", None),
    ("get", "/api/neurons?basis=features:nosuchid00", None),
    ("get", "/api/dictionaries", None),
    ("get", "/api/features/bases", None),
    ("get", "/api/features/nosuchid00/1", None),
    ("get", "/api/analyses/nosuchid00/features", None),
]
STORE_PAGES = ["/", "/about", "/a/nosuchid00", "/compare/nosuchid00,nosuchid01", "/probes", "/evaluations"]


def _assert_unavailable(client: TestClient) -> None:
    """Health says degraded; every store-using endpoint answers a 503 JSON error, every such page 503 HTML."""
    health = client.get("/api/health")
    assert health.status_code == 503, health.text
    body = health.json()
    assert (body["status"], body["database"]) == ("degraded", "unavailable")
    assert body["model"]["name"] == "tiny-bert" and UNREACHABLE in body["message"]
    for verb, path, payload in STORE_REQUESTS:
        response = client.request(verb, path, json=payload)
        assert response.status_code == 503, (path, response.text)
        error = response.json()["error"]
        assert error["code"] == "store_unavailable", path
        assert UNREACHABLE in error["message"] and "database" in error["message"], path
    for path in STORE_PAGES:
        page = client.get(path)
        assert page.status_code == 503, (path, page.text[:300])
        assert page.headers["content-type"].startswith("text/html")
        assert UNREACHABLE in page.text, path
    # what needs no store still works
    assert client.get("/neurons").status_code == 200
    assert client.get("/features/nosuchid00/1").status_code == 200  # its data comes through the API
    assert client.get("/api/methods").status_code == 200


def _assert_healthy(client: TestClient, timeout: float = 10.0) -> None:
    """Healthy again soon after the database is back (a failed attempt is repeated after a second)."""
    deadline = time.monotonic() + timeout
    while (health := client.get("/api/health")).status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert health.status_code == 200, health.text
    assert (health.json()["status"], health.json()["database"]) == ("ok", "ok")


def _analyse(client: TestClient, text_: str = TEXT) -> dict:
    response = client.post("/api/analyses", json={"method": "attention", "text": text_})
    assert response.status_code in (200, 201), response.text[:500]
    return response.json()


def _worker_alive(client: TestClient) -> bool:
    thread = client.app.state.services.jobs._thread
    return thread is not None and thread.is_alive()


def test_sqlite_unreachable_at_start_then_created_lazily(tmp_path, tiny_bert):
    """The database folder is a regular file at start: the server starts anyway, answers 503s, and once
    the path is usable the tables are created and everything works, without a restart."""
    blocker = tmp_path / "data"
    blocker.write_text("a regular file where the database folder should be")
    url = f"sqlite:///{blocker / 'store.db'}"
    with TestClient(
        create_app(make_settings(tmp_path, database_url=url), tiny_bert), base_url="http://127.0.0.1"
    ) as client:
        _assert_unavailable(client)
        assert _worker_alive(client)
        blocker.unlink()  # the folder (and the database file) can be created now
        _assert_healthy(client)
        stored = _analyse(client)
        assert client.get(f"/api/analyses/{stored['id']}").json()["result"] == stored["result"]
        assert client.get(f"/a/{stored['id']}").status_code == 200
        assert client.get("/api/jobs").json() == []
        assert _worker_alive(client)
    assert (tmp_path / "data" / "store.db").is_file()


def test_failed_connection_is_not_retried_at_once(tmp_path):
    """During an outage, requests answer 503 at once for a moment after a failed attempt instead of each
    waiting for its own connection timeout (one at a time, as the tables are created under a lock)."""
    (tmp_path / "data").write_text("not a folder")
    engine = make_engine(f"sqlite:///{tmp_path / 'data' / 'store.db'}")
    attempts = []
    event.listen(engine, "do_connect", lambda *_: attempts.append(1))
    for _ in range(3):
        with pytest.raises(StoreUnavailable, match=UNREACHABLE):
            check_connection(engine)
    assert len(attempts) == 1
    time.sleep(RETRY_AFTER_S + 0.1)
    (tmp_path / "data").unlink()
    check_connection(engine)  # tried again after the pause, and the database answers
    assert len(attempts) > 1


def test_start_up_work_runs_at_the_first_successful_connection(tmp_path, tiny_bert):
    """Jobs a dead process left running are marked failed, and the default neuron index job (the shipped
    sample and Wikipedia corpora) is started, when the database first answers (not at start, when it was
    away)."""
    folder = tmp_path / "data"
    url = f"sqlite:///{folder / 'store.db'}"
    engine = make_engine(url)
    records = RecordStore(engine)
    orphan = records.create_job("index_neurons", {"corpora": [{"name": "old", "path": "old.txt"}]})
    records.update_job(orphan.id, status="running", message="1/10")
    engine.dispose()
    folder.rename(tmp_path / "away")
    folder.write_text("not a folder")
    settings = make_settings(tmp_path, database_url=url, index_sample_on_start=True)
    with TestClient(create_app(settings, tiny_bert), base_url="http://127.0.0.1") as client:
        _assert_unavailable(client)
        folder.unlink()
        (tmp_path / "away").rename(folder)
        _assert_healthy(client)
        jobs = client.get("/api/jobs").json()
        old = next(job for job in jobs if job["id"] == orphan.id)
        assert old["status"] == "failed" and "interrupted" in old["message"]
        sample = [job for job in jobs if job["kind"] == "index_neurons" and job["id"] != orphan.id]
        assert len(sample) == 1, jobs
        assert wait_for_job(client, sample[0]["id"], timeout=240)["status"] == "done"
        # the hook ran once: a second check does not fail the jobs of this process
        _assert_healthy(client)
        assert client.get(f"/api/jobs/{sample[0]['id']}").json()["status"] == "done"


def test_sqlite_lost_mid_run_then_back(tmp_path, tiny_bert):
    """The database folder disappears while the server runs: 503s, no crash, the job worker survives and
    runs jobs again once the folder is back."""
    folder = tmp_path / "data"
    url = f"sqlite:///{folder / 'store.db'}"
    with TestClient(
        create_app(make_settings(tmp_path, database_url=url), tiny_bert), base_url="http://127.0.0.1"
    ) as client:
        _assert_healthy(client)
        before = _analyse(client)
        folder.rename(tmp_path / "away")
        folder.write_text("not a folder")
        # open SQLite connections keep reading the moved file; dropping them makes the server reconnect,
        # as it must after a network filesystem or a database server went away
        client.app.state.services.stores.engine.dispose()
        _assert_unavailable(client)
        assert _worker_alive(client)
        folder.unlink()
        (tmp_path / "away").rename(folder)
        _assert_healthy(client)
        assert client.get(f"/api/analyses/{before['id']}").json()["result"] == before["result"]
        _analyse(client, "the dog was very good")
        corpus = write_corpus(tmp_path / "small.txt", 20)
        job = client.post("/api/jobs", json=slow_index_job(corpus, "faults")).json()
        assert wait_for_job(client, job["id"])["status"] == "done"
        assert _worker_alive(client)


class TcpProxy:
    """Forwards a loopback port to a server; ``cut()`` drops every connection and refuses new ones (they
    are closed at once) until ``restore()``: a database that vanishes from the network and comes back."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._open = threading.Event()
        self._open.set()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self._open.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(self._target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets |= {client, upstream}
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                _close(sock)

    def cut(self) -> None:
        self._open.clear()
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            _close(sock)

    def restore(self) -> None:
        self._open.set()

    def close(self) -> None:
        self._listener.close()
        self.cut()


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


@pytest.mark.slow
@pytest.mark.postgres
def test_postgres_cut_at_start_and_mid_job(tmp_path, tiny_bert, pg_url):
    """PostgreSQL behind a proxy that is cut at start, restored, cut again while a job runs, restored:
    503s while cut, normal service after, the worker survives, the job ends in a stored final state and
    submitting it again completes it."""
    proxy = TcpProxy(pg_url.host or "127.0.0.1", pg_url.port or 5432)
    proxy.cut()
    url = pg_url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    try:
        with TestClient(
            create_app(make_settings(tmp_path, database_url=url), tiny_bert), base_url="http://127.0.0.1"
        ) as client:
            _assert_unavailable(client)
            proxy.restore()
            _assert_healthy(client)
            stored = _analyse(client)
            corpus = write_corpus(tmp_path / "corpus.txt", 2000)
            job = client.post("/api/jobs", json=slow_index_job(corpus, "faults")).json()
            deadline = time.monotonic() + 60
            while (now := client.get(f"/api/jobs/{job['id']}").json())["progress"] < 0.05:
                assert now["status"] in ("queued", "running") and time.monotonic() < deadline, now
                time.sleep(0.1)
            proxy.cut()
            _assert_unavailable(client)
            assert _worker_alive(client)
            time.sleep(1.0)
            proxy.restore()
            _assert_healthy(client)
            assert client.get(f"/api/analyses/{stored['id']}").json()["result"] == stored["result"]
            first = wait_for_job(client, job["id"], timeout=120)
            assert first["status"] in ("done", "failed"), first
            if first["status"] == "failed":
                assert "database is unavailable" in first["message"], first
            assert _worker_alive(client)
            again = client.post("/api/jobs", json=slow_index_job(corpus, "faults")).json()
            assert wait_for_job(client, again["id"], timeout=120)["status"] == "done"
            indexes = client.get("/api/neurons/summary").json()["indexes"]
            assert [(info["corpus"], info["status"]) for info in indexes] == [("faults", "done")]
    finally:
        proxy.close()
