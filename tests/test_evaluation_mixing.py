"""Mixing faithfulness evaluation: blank-out by hand, rows, data files, jobs (run, cancel, crash)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from app.errors import InvalidInput
from app.methods import METHODS
from app.methods.evaluation.mixing_faithfulness import RANDOM, blank_out, evaluate_mixing
from app.methods.evaluation.texts import read_texts
from app.modeling.encoding import encode
from app.modeling.targets import ZeroShotTarget, bind_target
from app.store.db import make_engine
from app.store.records import RecordStore
from tests.conftest import sqlite_url
from tests.tiny import wait_for_job

SENTENCES = [
    "the cat sat on the mat .",
    "a good movie with a bad end .",
    "it was not very good",
    "the dog is big",
]


@pytest.fixture
def data_file(tmp_path):
    path = tmp_path / "data.tsv"
    path.write_text("sentence\tlabel\n" + "".join(f"{s}\t1\n" for s in SENTENCES), encoding="utf-8")
    return path


def test_blank_out_by_hand(tiny_bert):
    encoded = encode(tiny_bert.tokenizer, "a good movie", max_tokens=64)
    target = bind_target(tiny_bert, ZeroShotTarget(labels=["good", "bad"]), encoded)
    importance = blank_out(tiny_bert, encoded, target)
    assert np.isnan(importance[0]) and np.isnan(importance[-1])  # special tokens are never removed
    with torch.no_grad():
        full = target.scores(**encoded.model_inputs())[0, target.index]
        without = tiny_bert.tokenizer("a movie", return_tensors="pt")  # "good" removed
        reduced = target.scores(**without)[0, target.index]
    assert importance[2] == pytest.approx(float(full - reduced), abs=1e-5)


def test_read_texts_formats(tmp_path, data_file):
    assert read_texts(data_file, limit=2) == SENTENCES[:2]
    (tmp_path / "a.txt").write_text("one\n\n two \n", encoding="utf-8")
    assert read_texts(tmp_path / "a.txt") == ["one", "two"]
    (tmp_path / "a.jsonl").write_text('{"text": "x y"}\n{"text": "z"}\n', encoding="utf-8")
    assert read_texts(tmp_path / "a.jsonl") == ["x y", "z"]
    with pytest.raises(InvalidInput, match="does not exist"):
        read_texts(tmp_path / "missing.tsv")
    with pytest.raises(InvalidInput, match="columns: sentence, label"):
        read_texts(data_file, column="review")


def test_evaluation_summary_shapes(tiny_bert):
    methods = {name: METHODS[name] for name in ("value_zeroing", "attention_rollout", "attention")}
    methods[RANDOM] = None
    evaluation = evaluate_mixing(tiny_bert, SENTENCES, methods, None, max_tokens=64)
    summary = evaluation.summary()
    assert summary["sentences"] == 4 and summary["layers"] == 2
    for name in methods:
        stats = summary["summary"][name]
        assert len(stats["mean"]) == 2 and all(-1 <= m <= 1 for m in stats["mean"])
        assert stats["n"] == [4, 4]


def _wait(client, job_id):
    return wait_for_job(client, job_id)


def test_job_runs_and_stores_an_evaluation(client, data_file):
    response = client.post("/api/jobs", json={"kind": "eval_mixing", "params": {"data": str(data_file)}})
    assert response.status_code == 202
    job = _wait(client, response.json()["id"])
    assert job["status"] == "done" and job["progress"] == 1.0, job
    evaluation = client.get(f"/api/evaluations/{job['result_id']}").json()
    assert set(evaluation["summary"]["summary"]) == {
        "attention",
        "value_zeroing",
        "attention_rollout",
        "alti",
        "attention_norm",
        "decompx_mixing",
        "random",
    }
    figure = client.get(f"/api/evaluations/{job['result_id']}/figure").json()["figure"]
    assert len(figure["data"]) == 7 and figure["data"][0]["type"] == "scatter"
    assert [e["id"] for e in client.get("/api/evaluations?kind=mixing").json()] == [job["result_id"]]


def test_cancelled_job_stores_nothing(client, tmp_path):
    path = tmp_path / "many.txt"
    path.write_text("\n".join(SENTENCES * 200), encoding="utf-8")
    job = client.post("/api/jobs", json={"kind": "eval_mixing", "params": {"data": str(path)}}).json()
    client.post(f"/api/jobs/{job['id']}/cancel")
    assert _wait(client, job["id"])["status"] == "cancelled"
    assert client.get("/api/evaluations").json() == []


def test_failed_job_reports_why(client, tmp_path):
    missing = client.post(
        "/api/jobs", json={"kind": "eval_mixing", "params": {"data": str(tmp_path / "nope.tsv")}}
    )
    assert missing.status_code == 422 and "nope.tsv" in missing.json()["error"]["message"]  # before queueing
    blank = tmp_path / "blank.txt"
    blank.write_text("\n  \n")
    job = client.post("/api/jobs", json={"kind": "eval_mixing", "params": {"data": str(blank)}})
    finished = _wait(client, job.json()["id"])
    assert finished["status"] == "failed" and "holds no texts" in finished["message"]


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"kind": "teleport", "params": {}}, 404, "eval_mixing"),
        ({"kind": "eval_mixing", "params": {}}, 422, "params.data"),
        ({"kind": "eval_mixing", "params": {"data": "x", "methods": ["magic"]}}, 422, "magic"),
        ({"kind": "eval_mixing", "params": {"data": "x", "limit": 0}}, 422, "params.limit"),
        ({"kind": "eval_mixing", "params": {"data": "x", "row": "diagonal"}}, 422, "params.row"),
    ],
)
def test_bad_job_requests(client, body, status, fragment):
    response = client.post("/api/jobs", json=body)
    assert response.status_code == status and fragment in response.json()["error"]["message"]


def test_unknown_job_and_evaluation(client):
    assert client.get("/api/jobs/nope").status_code == 404
    assert client.post("/api/jobs/nope/cancel").status_code == 404
    assert client.get("/api/evaluations/nope").status_code == 404


def test_jobs_interrupted_by_a_crash_are_marked_failed(tmp_path):
    records = RecordStore(make_engine(sqlite_url(tmp_path)))
    job = records.create_job("eval_mixing", {"data": "x"})
    records.update_job(job.id, status="running")
    assert records.fail_interrupted_jobs() == 1
    assert records.job(job.id).status == "failed"
    assert records.evaluations() == []


def test_cli_eval_mixing(tmp_path, data_file):
    from click.testing import CliRunner

    from app.cli import main
    from tests.tiny import save_checkpoint

    checkpoint = save_checkpoint(tmp_path / "ckpt")
    out = tmp_path / "out.json"
    result = CliRunner().invoke(
        main,
        [
            "eval",
            "mixing",
            "--data",
            str(data_file),
            "--model",
            str(checkpoint),
            "--methods",
            "value_zeroing,random",
            "--device",
            "cpu",
            "--database-url",
            sqlite_url(tmp_path),
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "| value_zeroing |" in result.stdout and "(4 examples" in result.stdout
    assert out.is_file()
    bad = CliRunner().invoke(
        main,
        [
            "eval",
            "mixing",
            "--data",
            str(data_file),
            "--methods",
            "nope",
            "--model",
            str(checkpoint),
            "--database-url",
            sqlite_url(tmp_path),
        ],
    )
    assert bad.exit_code == 2 and "nope" in bad.output
