"""The Sentence page's first screen: example sentences, a one-line summary per method, and what cannot run
yet (and why) before submit, in the page spec and at GET /api/availability."""

from __future__ import annotations

import html
import json
import re

import pytest

from app.api.pages import SENTENCE_EXAMPLES
from app.methods import METHODS
from app.services.availability import eta_text, job_text, sentence_availability
from tests.tiny import wait_for_job
from tests.treebanks import write_treebank

REQUIRES = {name: method.requires for name, method in METHODS.items()}


def _spec(html: str) -> dict:
    found = re.search(r'<script type="application/json" id="page-spec">(.*?)</script>', html, re.S)
    assert found, "the page has no JSON spec"
    return json.loads(found.group(1))


def _job(
    kind: str, status: str, progress: float = 0.0, eta_s: float | None = None, job_id: str = "j1"
) -> dict:
    return {"id": job_id, "kind": kind, "status": status, "progress": progress, "eta_s": eta_s}


def test_every_method_says_in_one_line_what_it_shows(client):
    for name, method in METHODS.items():
        assert method.summary and "\n" not in method.summary and len(method.summary) <= 140, name
        assert method.summary.endswith("."), name
        assert method.summary != method.title, name
    listed = {m["name"]: m["summary"] for m in client.get("/api/methods").json()}
    assert listed == {name: method.summary for name, method in METHODS.items()}
    about = client.get("/about").text
    for method in METHODS.values():  # the About page's methods table, escaped as Jinja escapes it
        assert html.escape(method.summary) in about.replace("&#39;", "&#x27;"), method.name


def test_the_sentence_page_spec_carries_examples_summaries_and_availability(client):
    spec = _spec(client.get("/").text)
    assert spec["examples"] == SENTENCE_EXAMPLES
    assert 3 <= len(spec["examples"]) <= 5
    assert any(example["text_pair"] for example in spec["examples"])  # a sentence pair
    for example in spec["examples"]:
        assert example["label"] and example["text"].strip() and example["look_for"]
        assert example["methods"] and set(example["methods"]) <= set(METHODS), example
    assert {m["name"]: m["summary"] for m in spec["methods"]} == {n: m.summary for n, m in METHODS.items()}
    availability = spec["availability"]
    assert set(availability["methods"]) == set(METHODS)
    probe = availability["methods"]["structural_probe"]
    assert probe["available"] is False and probe["job"] is None
    assert "No probe set" in probe["reason"] and "Probes page" in probe["hint"]
    for name, needs in REQUIRES.items():
        if needs != "probe_set":
            assert availability["methods"][name]["available"] is True, name
    head = availability["targets"]["head"]
    assert head["available"] is False and "Evaluations page" in head["hint"]
    assert availability["counts"] == {"probe_sets": 0, "heads": 0}
    assert client.get("/api/availability").json() == availability


def test_examples_run_on_the_first_usable_method(client):
    """Every example runs through the API as its button runs it (probe examples fall back without probes)."""
    availability = client.get("/api/availability").json()["methods"]
    for example in SENTENCE_EXAMPLES:
        method = next(name for name in example["methods"] if availability[name]["available"])
        body = {"method": method, "text": example["text"], "text_pair": example["text_pair"], "params": {}}
        answer = client.post("/api/analyses?include_result=false", json=body)
        assert answer.status_code == 201, (example["label"], answer.text)


def test_a_trained_probe_set_makes_the_structural_probe_available(client, tmp_path):
    params = {
        "treebank": str(write_treebank(tmp_path / "train.conllu", count=16)),
        "dev": str(write_treebank(tmp_path / "dev.conllu")),
        "rank": 8,
        "max_epochs": 2,
        "topological": False,
    }
    job = client.post("/api/jobs", json={"kind": "train_probes", "params": params})
    assert job.status_code == 202, job.text
    assert wait_for_job(client, job.json()["id"])["status"] == "done"
    answer = client.get("/api/availability").json()
    assert answer["methods"]["structural_probe"] == {"available": True, "reason": "", "hint": "", "job": None}
    assert answer["counts"]["probe_sets"] == 1
    spec = _spec(client.get("/").text)
    assert spec["availability"]["methods"]["structural_probe"]["available"] is True


def test_a_running_probe_job_says_how_far_it_is_and_how_long_it_needs():
    jobs = [_job("train_probes", "running", 0.4, 61.0)]
    answer = sentence_availability(REQUIRES, probe_sets=0, heads=0, target_kinds=["zero_shot"], jobs=jobs)
    probe = answer["methods"]["structural_probe"]
    assert probe["available"] is False
    assert probe["reason"] == "A probe set is being trained: 40 %, about 1 min left."
    assert "without reloading" in probe["hint"]
    assert probe["job"] == jobs[0]
    # the same job settled: the probe set is there, or the job failed and the page says what to do again
    done = sentence_availability(REQUIRES, probe_sets=1, heads=0, target_kinds=["zero_shot"], jobs=[])
    assert done["methods"]["structural_probe"]["available"] is True
    failed = [_job("train_probes", "failed", 0.4)]
    again = sentence_availability(REQUIRES, probe_sets=0, heads=0, target_kinds=["zero_shot"], jobs=failed)
    assert again["methods"]["structural_probe"]["job"] is None
    assert "Probes page" in again["methods"]["structural_probe"]["hint"]


def test_the_running_job_is_followed_before_a_queued_one_and_other_kinds_are_ignored():
    jobs = [
        _job("train_probes", "queued", job_id="newest"),
        _job("fit_head", "running", 0.5, 10.0, job_id="head"),
        _job("train_probes", "running", 0.9, 5.0, job_id="running"),
        _job("train_probes", "queued", job_id="oldest"),
    ]
    answer = sentence_availability(REQUIRES, probe_sets=0, heads=0, target_kinds=["zero_shot"], jobs=jobs)
    assert answer["methods"]["structural_probe"]["job"]["id"] == "running"
    assert answer["targets"]["head"]["job"]["id"] == "head"
    assert answer["targets"]["head"]["reason"] == "A head is being fitted: 50 %, about 10 s left."
    queued = sentence_availability(REQUIRES, probe_sets=0, heads=0, target_kinds=[], jobs=[jobs[0], jobs[3]])
    assert queued["methods"]["structural_probe"]["job"]["id"] == "oldest"  # the first to run
    assert "queued" in queued["methods"]["structural_probe"]["reason"]


def test_attribution_without_any_target_waits_for_a_fitted_head():
    """A model with no classification head, no MLM head and no zero-shot target can only explain a head."""
    none = sentence_availability(REQUIRES, probe_sets=0, heads=0, target_kinds=[], jobs=[])
    gradients = none["methods"]["integrated_gradients"]
    assert gradients["available"] is False and "no target" in gradients["reason"]
    assert "Evaluations page" in gradients["hint"]
    assert none["methods"]["attention"]["available"] is True
    fitted = sentence_availability(REQUIRES, probe_sets=0, heads=1, target_kinds=[], jobs=[])
    assert fitted["methods"]["integrated_gradients"]["available"] is True
    assert fitted["targets"]["head"]["available"] is True


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, ""),
        (3.0, "a few seconds left"),
        (24.0, "about 20 s left"),
        (61.0, "about 1 min left"),
        (150.0, "about 2 min left"),
        (5400.0, "about 1.5 h left"),
    ],
)
def test_eta_in_words(seconds, text):
    assert eta_text(seconds) == text


def test_job_text_before_progress():
    assert job_text("a probe set is being trained", _job("train_probes", "queued")).endswith(
        "queued behind other jobs"
    )
    assert job_text("a probe set is being trained", _job("train_probes", "running")).endswith(": starting")
    assert job_text("x", _job("train_probes", "running", 0.999, None)) == "x: 99 %"
