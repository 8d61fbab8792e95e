"""Loading another model at run time: an admin job; the swap waits for requests; no stale cache."""

from __future__ import annotations

import threading
import time

from fastapi.testclient import TestClient

from app.main import create_app
from app.services.readers_writer import ReadersWriter
from tests.conftest import make_settings
from tests.tiny import save_checkpoint, wait_for_job


def test_writer_waits_for_readers_and_goes_before_new_ones():
    lock = ReadersWriter()
    events: list[str] = []
    first_reader = lock.reading()
    first_reader.__enter__()

    def write():
        with lock.writing():
            events.append("write")

    def read():
        with lock.reading():
            events.append("late read")

    writer = threading.Thread(target=write)
    writer.start()
    time.sleep(0.2)
    late = threading.Thread(target=read)
    late.start()
    time.sleep(0.2)
    assert events == []  # the writer waits for the first reader; the late reader waits for the writer
    first_reader.__exit__(None, None, None)
    writer.join(5)
    late.join(5)
    assert events == ["write", "late read"]


def test_a_reader_reads_again_while_a_writer_waits():
    """Nested use of the model in one thread (a request calling a service that also holds it) never waits
    behind a waiting writer, which itself waits for that thread."""
    lock = ReadersWriter()
    events: list[str] = []
    writer_waits, nested_done = threading.Event(), threading.Event()

    def write() -> None:
        with lock.writing():
            events.append("write")

    def request() -> None:
        with lock.reading():
            threading.Thread(target=write, daemon=True).start()
            writer_waits.wait(5)
            with lock.reading():  # the same thread reads again while the writer waits for it
                events.append("nested read")
        nested_done.set()

    threading.Thread(target=request, daemon=True).start()
    deadline = time.monotonic() + 5
    while lock._writers_waiting == 0 and time.monotonic() < deadline:  # the writer waits for the outer read
        time.sleep(0.01)
    writer_waits.set()
    assert nested_done.wait(5), "the nested read waited behind the writer: deadlock"
    deadline = time.monotonic() + 5
    while len(events) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert events == ["nested read", "write"]


def test_load_model_job_swaps_the_model(client, tmp_path):
    text = {"method": "attention", "text": "the cat sat"}
    before = client.get("/api/model").json()
    old = client.post("/api/analyses", json=text).json()
    directory = save_checkpoint(tmp_path / "other", seed=7)
    job = client.post("/api/jobs", json={"kind": "load_model", "params": {"model": str(directory)}}).json()
    done = wait_for_job(client, job["id"])
    assert done["status"] == "done", done
    after = client.get("/api/model").json()
    assert after["revision"] == done["result_id"] != before["revision"]
    new = client.post("/api/analyses", json=text).json()
    assert new["cached"] is False and new["model"]["revision"] == after["revision"]
    assert new["result"]["mean"] != old["result"]["mean"]
    assert client.get(f"/api/analyses/{old['id']}").json()["model"]["revision"] == before["revision"]
    assert after["name"] == str(directory) and str(directory) in client.get("/").text  # the top bar


def test_a_missing_checkpoint_fails_the_job_and_keeps_the_model(client, tmp_path):
    before = client.get("/api/model").json()["revision"]
    job = client.post(
        "/api/jobs", json={"kind": "load_model", "params": {"model": str(tmp_path / "nope")}}
    ).json()
    failed = wait_for_job(client, job["id"])
    assert failed["status"] == "failed" and "Cannot load model" in failed["message"]
    assert client.get("/api/model").json()["revision"] == before
    assert client.post("/api/analyses", json={"method": "attention", "text": "still fine"}).status_code == 201


def test_loading_a_model_is_an_admin_operation(tmp_path, tiny_bert):
    app = create_app(make_settings(tmp_path, host="0.0.0.0"), tiny_bert)
    with TestClient(app, base_url="http://127.0.0.1") as shared:
        response = shared.post("/api/jobs", json={"kind": "load_model", "params": {"model": "embedded"}})
        assert response.status_code == 403


def test_the_swap_waits_for_a_request_in_flight(client, tmp_path):
    runner = client.app.state.services.runner
    directory = save_checkpoint(tmp_path / "other", seed=3)
    revision = runner.revision
    with runner.using_model():
        job = client.post(
            "/api/jobs", json={"kind": "load_model", "params": {"model": str(directory)}}
        ).json()
        time.sleep(1.0)
        assert runner.revision == revision  # the request in flight still sees its model
    assert wait_for_job(client, job["id"])["status"] == "done"
    assert runner.revision != revision
