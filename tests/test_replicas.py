"""Several replicas sharing one database: shared permalinks and cache, jobs owned by their replica."""

from __future__ import annotations

import sqlite3
import time

from fastapi.testclient import TestClient

from app.main import create_app
from app.store.db import make_engine
from app.store.records import RecordStore
from tests.conftest import make_settings, sqlite_url
from tests.tiny import wait_for_job


def _replica(tmp_path, tiny_bert, name: str) -> TestClient:
    settings = make_settings(tmp_path, replica_id=name)
    return TestClient(create_app(settings, tiny_bert), base_url="http://127.0.0.1")


def test_a_restarting_replica_fails_only_its_own_interrupted_jobs(tmp_path):
    records = RecordStore(make_engine(sqlite_url(tmp_path)))
    mine = records.create_job("eval_mixing", {"data": "x"}, owner="a")
    theirs = records.create_job("eval_mixing", {"data": "x"}, owner="b")
    legacy = records.create_job("eval_mixing", {"data": "x"})
    records.update_job(theirs.id, status="running")
    assert records.fail_interrupted_jobs("a") == 2
    assert records.job(mine.id).status == "failed" and records.job(legacy.id).status == "failed"
    assert records.job(theirs.id).status == "running"
    assert records.job(mine.id).to_json()["owner"] == "a"


def test_an_older_database_gets_the_new_column(tmp_path):
    path = tmp_path / "store.db"
    with sqlite3.connect(path) as old:  # the jobs table as the previous version created it
        old.execute(
            "CREATE TABLE jobs (id VARCHAR(32) PRIMARY KEY, kind VARCHAR(50), params JSON,"
            " status VARCHAR(20), progress FLOAT, message TEXT, result_id VARCHAR(32),"
            " created_at DATETIME, updated_at DATETIME)"
        )
        old.execute(
            "INSERT INTO jobs VALUES ('old1', 'eval_mixing', '{}', 'done', 1.0, 'done', NULL,"
            " '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
        )
    records = RecordStore(make_engine(f"sqlite:///{path}"))
    assert records.job("old1").status == "done" and records.job("old1").owner is None
    assert records.create_job("eval_mixing", {}, owner="a").owner == "a"


def test_replicas_share_links_and_cache_and_cancel_each_others_jobs(tmp_path, tiny_bert):
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(f"the cat sat on the mat {i % 7} times" for i in range(3000)) + "\n")
    with _replica(tmp_path, tiny_bert, "a") as a, _replica(tmp_path, tiny_bert, "b") as b:
        made = a.post("/api/analyses", json={"method": "attention", "text": "the dog sat"}).json()
        assert b.get(f"/api/analyses/{made['id']}").json()["result"] == made["result"]
        again = b.post("/api/analyses", json={"method": "attention", "text": "the dog sat"}).json()
        assert again["cached"] is True and again["id"] == made["id"]

        job = a.post("/api/jobs", json={"kind": "eval_mixing", "params": {"data": str(texts)}}).json()
        assert job["owner"] == "a"
        for _ in range(600):  # wait until replica a is really running it
            if b.get(f"/api/jobs/{job['id']}").json()["progress"] > 0:
                break
            time.sleep(0.05)
        assert b.get(f"/api/jobs/{job['id']}").json()["status"] == "running"
        assert b.post(f"/api/jobs/{job['id']}/cancel").json()["status"] == "cancelled"
        worker = a.app.state.jobs
        for _ in range(1200):  # until replica a's worker has let go of the job
            if job["id"] not in worker._cancel:
                break
            time.sleep(0.05)
        assert job["id"] not in worker._cancel
        finished = wait_for_job(a, job["id"], timeout=60)
        assert finished["status"] == "cancelled" and finished["progress"] < 1
        assert a.get("/api/evaluations").json() == []  # nothing partial stored
