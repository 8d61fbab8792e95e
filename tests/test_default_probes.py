"""The default probe set: shipped UD EWT slices, trained on the first serve so tree probes work at once."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from app.data import DATA_DIR, UD_EWT_DEV_SLICE, UD_EWT_TRAIN_SLICE, shipped_data
from app.jobs.manager import start_default_probe_set
from app.jobs.probes import DEFAULT_SET_NAME, TrainProbesParams, default_probe_params
from app.main import create_app
from app.methods.probes.treebank import read_conllu
from app.services.container import build_services
from app.store.db import make_engine
from tests.conftest import make_settings, sqlite_url
from tests.tiny import wait_for_job


def test_the_shipped_slices_are_valid_treebanks_with_their_source():
    train, dev = read_conllu(UD_EWT_TRAIN_SLICE), read_conllu(UD_EWT_DEV_SLICE)
    assert len(train) >= 500 and len(dev) >= 100
    assert not {s.sent_id for s in train} & {s.sent_id for s in dev}  # dev is held out
    assert all(s.text for s in dev)  # typed dev sentences are found with their gold tree
    for path in (UD_EWT_TRAIN_SLICE, UD_EWT_DEV_SLICE):
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line and line[0] != "#"]
        assert all(len(line.split("\t")) == 10 for line in lines)  # still 10-column CoNLL-U
        record = json.loads((DATA_DIR / f"{path.name}.source.json").read_text(encoding="utf-8"))
        assert record["licence"] == "CC BY-SA 4.0" and "Universal Dependencies" in record["source"]
    listed = {entry.file: entry for entry in shipped_data()}
    assert listed[UD_EWT_TRAIN_SLICE.name].size_bytes == UD_EWT_TRAIN_SLICE.stat().st_size


def test_default_params_are_valid_job_params():
    params = TrainProbesParams(**default_probe_params())
    assert params.name == DEFAULT_SET_NAME and params.treebank == str(UD_EWT_TRAIN_SLICE)


def test_one_default_job_at_most_while_one_is_queued(tmp_path, tiny_bert):
    settings = make_settings(tmp_path)
    services = build_services(
        tiny_bert, make_engine(sqlite_url(tmp_path)), settings
    )  # no worker: stays queued
    first = start_default_probe_set(services.jobs)
    assert first is not None and first.kind == "train_probes" and first.status == "queued"
    assert start_default_probe_set(services.jobs) is None
    assert [job.id for job in services.stores.records.jobs()] == [first.id]


@pytest.mark.slow
def test_first_serve_trains_the_default_probe_set(tmp_path, tiny_bert):
    settings = make_settings(tmp_path, train_probes_on_start=True, index_sample_on_start=True)
    with TestClient(create_app(settings, tiny_bert), base_url="http://127.0.0.1") as client:
        jobs = client.get("/api/jobs").json()
        assert sorted(job["kind"] for job in jobs) == ["index_neurons", "train_probes"]
        probe_job = next(job for job in jobs if job["kind"] == "train_probes")
        index_job = next(job for job in jobs if job["kind"] == "index_neurons")
        assert probe_job["created_at"] < index_job["created_at"]  # trees come first
        client.post(f"/api/jobs/{index_job['id']}/cancel")  # waits behind the probes: not needed here
        typed = {"method": "structural_probe", "text": "A sentence nobody has parsed before."}
        done = wait_for_job(client, probe_job["id"], timeout=600)
        assert done["status"] == "done", done
        assert [s["name"] for s in client.get("/api/probes").json()] == [DEFAULT_SET_NAME]
        tree = client.post("/api/analyses", json=typed)
        assert tree.status_code == 201, tree.text
        result = tree.json()["result"]
        assert result["words"][0] == "A" and len(result["heads"]) == len(result["words"])
        view = client.get(f"/api/probes/{done['result_id']}/figure").json()
        assert view["examples"] and view["examples"][0] in UD_EWT_DEV_SLICE.read_text(encoding="utf-8")
    with TestClient(create_app(settings, tiny_bert), base_url="http://127.0.0.1") as again:
        kinds = [job["kind"] for job in again.get("/api/jobs").json()]
        assert kinds.count("train_probes") == 1  # a set exists: not trained again


def test_no_default_probe_job_when_the_setting_is_off(tmp_path, tiny_bert):
    settings = make_settings(tmp_path, train_probes_on_start=False)
    with TestClient(create_app(settings, tiny_bert), base_url="http://127.0.0.1") as client:
        assert client.get("/api/jobs").json() == []
        missing = client.post("/api/analyses", json={"method": "structural_probe", "text": "the cat sat"})
        assert missing.status_code == 404


def test_a_sentence_longer_than_the_model_is_skipped_without_breaking_its_batch(tiny_bert):
    from app.methods.probes.features import compute_word_features
    from app.methods.probes.treebank import TreeSentence

    long_words = ["word"] * (tiny_bert.max_positions + 5)
    sentences = [
        TreeSentence(["the", "cat", "sat"], [2, 3, 0]),
        TreeSentence(long_words, [0] + [1] * (len(long_words) - 1)),
    ]
    features = compute_word_features(tiny_bert, sentences, max_tokens=tiny_bert.max_positions)
    assert [s.words for s in features.sentences] == [["the", "cat", "sat"]]
    assert features.skipped[0]["reason"] == "too many subwords"
