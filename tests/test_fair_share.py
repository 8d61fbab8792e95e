"""A fair share of the resident model: arrival order, stepping aside between batches, the per-request budget
and the per-client limit."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.methods import METHODS
from app.methods.callbacks import batches_may_yield, between_batches
from app.services.analyses import AnalysisRequest
from app.services.container import build_services
from app.services.fair_lock import FairLock
from app.store.db import make_engine
from tests.conftest import make_settings, sqlite_url

LONG_TEXT = " ".join(["the quiet river bends past the old mill"] * 6)


def _wait_until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.005)


def _queue(
    lock: FairLock, name: str, order: list[str], done: threading.Event | None = None
) -> threading.Thread:
    """A thread that takes the lock, records its name, and releases it."""

    def run() -> None:
        with lock:
            order.append(name)
        if done is not None:
            done.set()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_waiters_are_served_in_arrival_order():
    lock, order = FairLock(), []
    lock.acquire()
    threads = []
    for name in "abcd":
        threads.append(_queue(lock, name, order))
        _wait_until(lambda n=len(threads): lock.waiting == n)
    lock.release()
    for thread in threads:
        thread.join(5)
    assert order == ["a", "b", "c", "d"]
    assert not lock.held


def test_stepping_aside_costs_nothing_when_nobody_waits():
    lock = FairLock()
    with lock:
        assert lock.step_aside() is False
        assert lock.held
    assert lock.handovers == 0
    with pytest.raises(RuntimeError):
        lock.step_aside()
    with pytest.raises(RuntimeError):
        lock.release()


def test_a_cheap_waiter_waits_for_one_batch_of_each_slow_holder_at_most():
    """Two slow holders alternate batches; a cheap request arriving meanwhile is served at the next
    batch boundary, ahead of the slow holder that was already queued behind."""
    lock, log = FairLock(), []
    arrived = threading.Event()

    def slow(name: str, batches: int) -> None:
        with lock:
            for batch in range(batches):
                if batch:
                    lock.step_aside()
                log.append(f"{name}{batch}")
                if name == "A" and batch == 1:
                    arrived.wait(5)  # the cheap request arrives during A's second batch
                    _wait_until(lambda: lock.waiting == 2)  # B (stepped aside) and the cheap one

    first = threading.Thread(target=slow, args=("A", 3))
    first.start()
    _wait_until(lambda: lock.held)
    second = threading.Thread(target=slow, args=("B", 3))
    second.start()
    _wait_until(lambda: "A1" in log)
    cheap = _queue(lock, "cheap", log)
    arrived.set()
    for thread in (first, second, cheap):
        thread.join(10)
    between = log[log.index("A1") + 1 : log.index("cheap")]  # what ran after the cheap request arrived
    assert not [entry for entry in between if entry.startswith("A")], log
    assert len([entry for entry in between if entry.startswith("B")]) <= 1, log
    assert sorted(log) == sorted(["A0", "A1", "A2", "B0", "B1", "B2", "cheap"])
    assert lock.handovers >= 2


def test_between_batches_calls_the_holders_step_aside_only_inside_the_hold():
    calls = []
    between_batches()  # outside any hold: nothing happens
    with batches_may_yield(lambda: calls.append(1)):
        between_batches()
        between_batches()
    between_batches()
    assert calls == [1, 1]


def test_cost_estimates():
    lime, occlusion = METHODS["lime"], METHODS["occlusion"]
    assert lime.passes(lime.Params(samples=300), 40, 6) == 301
    assert occlusion.passes(occlusion.Params(), 40, 6) == 41
    ig = METHODS["integrated_gradients"]
    assert ig.passes(ig.Params(steps=20), 40, 6) == 41
    iba = METHODS["iba"]
    one = iba.passes(iba.Params(), 40, 6)
    assert iba.passes(iba.Params(sweep=True), 40, 6) == pytest.approx(1 + (one - 1) * 6)
    row = METHODS["value_zeroing_row"]
    assert row.passes(row.Params(), 40, 6) == METHODS["value_zeroing"].passes(None, 40, 6) + 1
    assert METHODS["attention"].passes(None, 40, 6) == 1
    assert all(method.passes(method.Params(), 512, 12) >= 1 for method in METHODS.values())


def test_a_slow_request_lets_a_cheap_one_through_between_its_batches(tmp_path, tiny_bert):
    services = build_services(
        tiny_bert, make_engine(sqlite_url(tmp_path)), make_settings(tmp_path, batching=False)
    )
    lock = services.runner._lock
    slow_request = AnalysisRequest(
        method="lime",
        text=LONG_TEXT,
        params={"samples": 4000, "batch_size": 1},
        target={"kind": "zero_shot", "labels": ["good", "bad"]},
    )
    finished: dict[str, float] = {}

    def run(name: str, request: AnalysisRequest) -> None:
        services.analyses.analyze(request)
        finished[name] = time.monotonic()

    with ThreadPoolExecutor(2) as pool:
        slow = pool.submit(run, "slow", slow_request)
        _wait_until(lambda: lock.held)
        time.sleep(0.05)  # the slow request is inside its batches
        cheap = pool.submit(run, "cheap", AnalysisRequest(method="attention", text="a short one"))
        cheap.result(timeout=60)
        assert not slow.done(), "the cheap request waited for the whole slow one"
        slow.result(timeout=300)
    assert finished["cheap"] < finished["slow"]
    assert lock.handovers >= 1


def test_requests_over_the_budget_are_refused_before_they_run(tmp_path, tiny_bert):
    app = create_app(make_settings(tmp_path, max_request_cost=50_000), tiny_bert)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        target = {"kind": "zero_shot", "labels": ["good", "bad"]}
        body = {"method": "lime", "text": LONG_TEXT, "params": {"samples": 20_000}, "target": target}
        response = client.post("/api/analyses", json=body)
        assert response.status_code == 422
        error = response.json()["error"]
        assert error["code"] == "over_budget"
        assert "BERTSCOPE_MAX_REQUEST_COST" in error["message"] and "50,000" in error["message"]
        assert "20,001" in error["message"]  # the estimate: passes x tokens
        assert client.post("/api/analyses", json={**body, "params": {"samples": 50}}).status_code == 201
        assert (
            client.post("/api/analyses", json={"method": "attention", "text": LONG_TEXT}).status_code == 201
        )


def test_a_client_over_its_concurrency_limit_gets_429(tmp_path, tiny_bert):
    app = create_app(make_settings(tmp_path, max_requests_per_client=1, batching=False), tiny_bert)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        runner = app.state.services.runner
        runner._lock.acquire()  # the model is busy: the first request waits inside the server
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(client.post, "/api/analyses", json={"method": "value_zeroing", "text": "one"})
            _wait_until(lambda: runner._lock.waiting == 1)
            second = client.post("/api/analyses", json={"method": "value_zeroing", "text": "two"})
            runner._lock.release()
            assert first.result(timeout=60).status_code == 201
        assert second.status_code == 429
        assert second.headers["Retry-After"] == "1"
        assert "BERTSCOPE_MAX_REQUESTS_PER_CLIENT" in second.json()["error"]["message"]
        assert (
            client.post("/api/analyses", json={"method": "value_zeroing", "text": "two"}).status_code == 201
        )
        assert client.get("/api/methods").status_code == 200  # only analysis requests are counted


def test_acquire_with_a_timeout_gives_up_and_leaves_the_queue():
    lock = FairLock()
    lock.acquire()
    assert lock.locked()
    got: list[bool] = []
    thread = threading.Thread(target=lambda: got.append(lock.acquire(timeout=0.05)))
    thread.start()
    thread.join(5)
    assert got == [False] and lock.waiting == 0
    assert lock.acquire(blocking=False) is False
    lock.release()
    assert lock.acquire(blocking=False) is True and lock.locked()
    lock.release()
    assert not lock.locked()
