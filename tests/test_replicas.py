"""Several replicas sharing one database: shared permalinks and cache, jobs owned by their replica."""

from __future__ import annotations

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
        worker = a.app.state.services.jobs
        for _ in range(1200):  # until replica a's worker has let go of the job
            if job["id"] not in worker._cancel:
                break
            time.sleep(0.05)
        assert job["id"] not in worker._cancel
        finished = wait_for_job(a, job["id"], timeout=60)
        assert finished["status"] == "cancelled" and finished["progress"] < 1
        assert a.get("/api/evaluations").json() == []  # nothing partial stored
