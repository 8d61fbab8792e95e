"""Probe sets through the real app and the CLI: train as a job, list, figures, per-sentence trees."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from app.cli import main
from tests.conftest import sqlite_url
from tests.tiny import save_checkpoint, wait_for_job
from tests.treebanks import SENTENCES, write_treebank

FAST = {"rank": 8, "max_epochs": 2, "topological_epochs": 1}


def _train(client, tmp_path, **extra) -> dict:
    params = {
        "treebank": str(write_treebank(tmp_path / "train.conllu", count=16)),
        "dev": str(write_treebank(tmp_path / "dev.conllu")),
        **FAST,
        **extra,
    }
    job = client.post("/api/jobs", json={"kind": "train_probes", "params": params})
    assert job.status_code == 202, job.text
    done = wait_for_job(client, job.json()["id"])
    assert done["status"] == "done", done
    return done


def test_train_job_list_figure_and_trees(client, tmp_path):
    assert client.get("/api/probes").json() == []
    missing = client.post("/api/analyses", json={"method": "structural_probe", "text": "the cat sat"})
    assert missing.status_code == 404 and "probe train" in missing.json()["error"]["message"]
    done = _train(client, tmp_path, name="tiny")
    sets = client.get("/api/probes").json()
    assert [s["id"] for s in sets] == [done["result_id"]] and sets[0]["name"] == "tiny"
    assert sets[0]["layers"] == [0, 1, 2]
    view = client.get(f"/api/probes/{done['result_id']}/figure").json()
    assert view["figures"]["metrics"]["data"] and view["figures"]["topological"]["data"]
    assert view["table"]["rows"][-1][0] == "right-branching chain"

    text = SENTENCES[0][0]
    gold = client.post(
        "/api/analyses", json={"method": "structural_probe", "text": text, "params": {"layer": 1}}
    )
    assert gold.status_code == 201, gold.text
    result = gold.json()["result"]
    assert result["words"] == text.split() and result["gold_heads"] == SENTENCES[0][1]
    assert len(result["heads"]) == 7 and result["heads"].count(0) == 1
    assert 0 <= result["uuas"] <= 1 and len(result["layer_uuas"]) == 3
    assert result["layer"] == 1 and gold.json()["params"]["probe_id"] == done["result_id"]
    distances = result["distances"]
    assert len(distances) == 7 and all(len(row) == 7 for row in distances)

    free = client.post(
        "/api/analyses", json={"method": "structural_probe", "text": "The dog sat, very happy!"}
    )
    body = free.json()["result"]
    assert body["gold_heads"] is None and body["uuas"] is None
    assert body["words"] == ["The", "dog", "sat", ",", "very", "happy", "!"]
    assert free.json()["params"]["layer"] in (0, 1, 2)  # the best dev layer was pinned

    figure = client.get(f"/api/analyses/{gold.json()['id']}/figure", params={"layer": 2}).json()
    assert set(figure["figures"]) == {"main", "strip", "aux"}
    assert "layer 2" in figure["figures"]["main"]["layout"]["title"]["text"]
    assert client.get(f"/a/{gold.json()['id']}").status_code == 200
    page = client.get("/probes")
    assert page.status_code == 200 and "Draw the tree" in page.text and "the cat sat on the mat" in page.text


def test_bad_probe_requests_are_clear_4xx(client, tmp_path):
    bad_path = client.post(
        "/api/jobs",
        json={"kind": "train_probes", "params": {"treebank": str(tmp_path / "no.conllu"), "dev": "x"}},
    )
    assert bad_path.status_code == 422 and "params.treebank" in bad_path.json()["error"]["message"]
    assert client.get("/api/jobs").json() == []  # refused before a job was queued
    wrong = client.post("/api/jobs", json={"kind": "train_probes", "params": {"treebank": 3, "rank": -1}})
    assert wrong.status_code == 422 and "params.rank" in wrong.json()["error"]["message"]
    assert client.get("/api/probes/nope").status_code == 404
    _train(client, tmp_path, layers=[0, 2])
    out_of_range = client.post(
        "/api/analyses", json={"method": "structural_probe", "text": "the cat", "params": {"layer": 1}}
    )
    assert out_of_range.status_code == 422 and "layers [0, 2]" in out_of_range.json()["error"]["message"]
    unknown = client.post(
        "/api/analyses", json={"method": "structural_probe", "text": "the cat", "params": {"probe_id": "zzz"}}
    )
    assert unknown.status_code == 404


@pytest.mark.slow
def test_cli_train_eval_list(tmp_path):
    checkpoint = save_checkpoint(tmp_path / "ckpt", "bert")
    common = ["--model", str(checkpoint), "--device", "cpu", "--database-url", sqlite_url(tmp_path)]
    train = write_treebank(tmp_path / "train.conllu", count=16)
    dev = write_treebank(tmp_path / "dev.conllu")
    runner = CliRunner()
    trained = runner.invoke(
        main,
        [
            "probe",
            "train",
            "--treebank",
            str(train),
            "--dev",
            str(dev),
            "--rank",
            "8",
            "--max-epochs",
            "2",
            "--no-topological",
            "--layers",
            "0,2",
            *common,
        ],
    )
    assert trained.exit_code == 0, trained.output
    assert "right-branching chain" in trained.output
    assert "## Seeds" in trained.output and "mean over 3 seeds (0, 1, 2)" in trained.output
    evaluated = runner.invoke(main, ["probe", "eval", "--treebank", str(dev), "--json", *common])
    assert evaluated.exit_code == 0, evaluated.output
    report = json.loads(evaluated.stdout[evaluated.stdout.index("{") :])
    assert set(report["layers"]) == {"0", "2"} and report["sentences"]["used"] == 8
    one = runner.invoke(main, ["probe", "eval", "--treebank", str(dev), "--layer", "1", *common])
    assert one.exit_code == 2 and "no probe for layer 1" in one.output
    listed = runner.invoke(main, ["probe", "list", *common[:2], "--database-url", sqlite_url(tmp_path)])
    assert "best dev UUAS" in listed.output
    missing = runner.invoke(main, ["probe", "eval", "--treebank", str(tmp_path / "nope.conllu"), *common])
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_a_second_treebank_and_seeds_show_as_sections(client, tmp_path):
    second = write_treebank(tmp_path / "ewt-reviews.conllu", count=12, extras=False)
    done = _train(client, tmp_path, seeds=2, second=str(second), topological=False, selectivity=True)
    stored = client.get(f"/api/probes/{done['result_id']}").json()["metrics"]
    assert stored["seeds"] == [0, 1] and stored["second"]["name"] == "ewt-reviews"
    view = client.get(f"/api/probes/{done['result_id']}/figure").json()
    sections = {section["id"]: section for section in view["sections"]}
    assert set(sections) == {"seeds", "second", "selectivity"}
    chosen = sections["selectivity"]["table"]["rows"][1]  # layer 1: UUAS real, control, selectivity
    real, control, difference = (float(cell.split(" ± ")[0]) for cell in chosen[1:4])
    assert difference == pytest.approx(real - control, abs=2e-3)  # means of per-seed differences, rounded
    second_view = sections["second"]
    assert "ewt-reviews" in second_view["reading"][0] and "12 sentences" in second_view["reading"][0]
    assert [row[0] for row in second_view["table"]["rows"]] == [
        "0 (embeddings)",
        "1",
        "2",
        "right-branching chain",
    ]
    assert "±" in view["table"]["rows"][0][1]  # mean ± spread over the two seeds
    assert len(sections["seeds"]["table"]["columns"]) == 3


def test_a_missing_second_treebank_is_refused_before_queueing(client, tmp_path):
    params = {
        "treebank": str(write_treebank(tmp_path / "train.conllu", count=16)),
        "dev": str(write_treebank(tmp_path / "dev.conllu")),
        "second": str(tmp_path / "nowhere.conllu"),
    }
    refused = client.post("/api/jobs", json={"kind": "train_probes", "params": params})
    assert refused.status_code in (400, 404, 422) and "second" in refused.text
