"""A job's estimated time left (``eta_s``): hand-computed cases, and ``started_at`` set when it starts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.api.schemas import JobOut
from app.store.db import make_engine
from app.store.records import RecordStore, eta_seconds
from tests.conftest import sqlite_url

START = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("progress", "elapsed_s", "expected"),
    [
        (0.4, 60.0, 90.0),  # 40 % in 60 s: the other 60 % take 90 s
        (0.5, 30.0, 30.0),
        (0.1, 10.0, 90.0),
        (1.0, 100.0, 0.0),
        (0.25, 0.0, 0.0),  # no time has passed: nothing to extrapolate
    ],
)
def test_eta_extrapolates_the_pace_so_far(progress, elapsed_s, expected):
    now = START + timedelta(seconds=elapsed_s)
    assert eta_seconds("running", progress, START, now) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("status", "progress", "started_at"),
    [
        ("running", 0.0, START),  # no progress yet: no pace to extrapolate
        ("queued", 0.0, None),
        ("done", 1.0, START),
        ("failed", 0.3, START),
        ("cancelled", 0.3, START),
        ("running", 0.5, None),  # a job from before started_at was recorded
    ],
)
def test_no_eta_unless_running_with_progress(status, progress, started_at):
    assert eta_seconds(status, progress, started_at, START + timedelta(minutes=5)) is None


def test_a_clock_behind_the_start_gives_no_negative_eta():
    assert eta_seconds("running", 0.5, START, START - timedelta(seconds=5)) == 0.0


def test_marking_a_job_running_records_its_start_and_the_json_carries_the_eta(tmp_path):
    records = RecordStore(make_engine(sqlite_url(tmp_path)))
    job = records.create_job("eval_mixing", {"data": "x"})
    queued = records.job(job.id).to_json()
    assert queued["started_at"] is None and queued["eta_s"] is None
    records.update_job(job.id, status="running", message="starting")
    started = records.job(job.id).started_at
    assert started is not None and started.tzinfo is not None
    records.update_job(job.id, progress=0.25, message="1/4")
    running = records.job(job.id)
    assert running.started_at == started  # progress does not move the start
    body = running.to_json(now=started + timedelta(seconds=30))
    assert body["started_at"] == started.isoformat()
    assert body["eta_s"] == pytest.approx(90.0)
    assert records.job(job.id).to_json(now=started)["eta_s"] == 0.0


def test_the_documented_job_schema_names_every_field_the_api_returns(tmp_path):
    records = RecordStore(make_engine(sqlite_url(tmp_path)))
    body = records.job(records.create_job("eval_mixing", {"data": "x"}).id).to_json()
    assert set(JobOut.model_fields) == set(body)
    JobOut.model_validate(body)
