"""The real server killed or restarted on one database: interrupted jobs, a consistent store, permalinks."""

from __future__ import annotations

import signal
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import sqlite_url
from tests.server import started_server
from tests.tiny import save_checkpoint, slow_index_job, write_corpus

pytestmark = pytest.mark.slow

SENTENCES = 3000


def _wait(http: httpx.Client, job_id: str, until, stall_timeout: float = 120.0) -> dict:
    """Poll the job until ``until(job)``; fail only when its state stops moving for ``stall_timeout`` s.

    A fixed overall deadline would make the test depend on the machine's speed and load (the slow index job
    runs 3,000 one-sentence batches); a job that keeps advancing is waited for however long it takes.
    """
    last_seen, last_change = None, time.monotonic()
    while not until(job := http.get(f"/api/jobs/{job_id}").json()):
        moving = (job["status"], job["progress"])
        if moving != last_seen:
            last_seen, last_change = moving, time.monotonic()
        assert time.monotonic() - last_change < stall_timeout, f"the job stopped advancing: {job}"
        time.sleep(0.2)
    return job


def _rows(database: Path, query: str) -> list[tuple]:
    with sqlite3.connect(database) as connection:
        return connection.execute(query).fetchall()


def test_job_killed_mid_way_is_failed_and_can_be_run_again(tmp_path):
    model = str(save_checkpoint(tmp_path / "model"))
    corpus = write_corpus(tmp_path / "corpus.txt", SENTENCES)
    url = sqlite_url(tmp_path)
    with started_server(url, model=model) as server, httpx.Client(base_url=server.base, timeout=30) as http:
        job = http.post("/api/jobs", json=slow_index_job(corpus, "killed")).json()
        running = _wait(http, job["id"], lambda j: j["status"] != "queued" and j["progress"] >= 0.1)
        assert running["status"] == "running", running
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(timeout=30)
    database = tmp_path / "store.db"
    # what the dead process left: the job still "running", a checkpointed index still "building", nothing
    # that looks finished
    assert _rows(database, f"SELECT status, result_id FROM jobs WHERE id = '{job['id']}'") == [
        ("running", None)
    ]
    assert _rows(database, "SELECT status FROM neuron_indexes") == [("building",)]

    with started_server(url, model=model) as server, httpx.Client(base_url=server.base, timeout=30) as http:
        failed = http.get(f"/api/jobs/{job['id']}").json()
        assert failed["status"] == "failed" and failed["result_id"] is None, failed
        assert "interrupted" in failed["message"]
        indexes = http.get("/api/neurons/summary").json()["indexes"]
        assert [info["status"] for info in indexes] == ["building"]
        assert 0 < indexes[0]["sentences_done"] < SENTENCES
        again = http.post("/api/jobs", json=slow_index_job(corpus, "killed"))
        assert again.status_code in (200, 201, 202), again.text
        done = _wait(http, again.json()["id"], lambda j: j["status"] in ("done", "failed", "cancelled"))
        assert done["status"] == "done" and done["result_id"] == indexes[0]["id"], done
        indexes = http.get("/api/neurons/summary").json()["indexes"]
        assert [(info["status"], info["sentences_done"]) for info in indexes] == [("done", SENTENCES)]


def test_restart_keeps_permalinks(tmp_path):
    model = str(save_checkpoint(tmp_path / "model"))
    url = sqlite_url(tmp_path)
    requests = [
        {"method": "attention", "text": "the cat sat on the mat"},
        {"method": "value_zeroing", "text": "the dog was very good", "text_pair": "this movie was bad"},
        {"method": "attention_rollout", "text": "it was not a good movie"},
    ]
    before = {}
    with started_server(url, model=model) as server, httpx.Client(base_url=server.base, timeout=60) as http:
        for body in requests:
            created = http.post("/api/analyses", json=body)
            assert created.status_code in (200, 201), created.text[:300]
            analysis_id = created.json()["id"]
            before[analysis_id] = (
                http.get(f"/api/analyses/{analysis_id}").json(),
                http.get(f"/a/{analysis_id}").text,
            )
    with started_server(url, model=model) as server, httpx.Client(base_url=server.base, timeout=60) as http:
        for analysis_id, (body, page) in before.items():
            after = http.get(f"/api/analyses/{analysis_id}")
            assert after.status_code == 200 and after.json() == body
            html = http.get(f"/a/{analysis_id}")
            assert html.status_code == 200 and html.text == page
