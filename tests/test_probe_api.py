"""Probe sets through the real app and the CLI: train as a job, list, figures, per-sentence trees."""

from __future__ import annotations

import io
import json

import numpy as np
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
    assert set(sections) == {"seeds", "second", "selectivity", "description_length"}
    mdl = stored["description_length"]
    assert mdl["layers"] == [0, 1, 2] and len(mdl["compression"]) == 3
    for online, compression in zip(mdl["online_bits"], mdl["compression"], strict=True):
        assert compression == pytest.approx(mdl["uniform_bits"] / online)
    assert [row[0] for row in sections["description_length"]["table"]["rows"]] == ["0 (embeddings)", "1", "2"]
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


def _labelled(path) -> str:
    rows = [("the cat sat on the mat", 1), ("the dog ran", 0), ("a cat", 1), ("the dog sat", 0)] * 5
    path.write_text("sentence\tlabel\n" + "".join(f"{text}\t{label}\n" for text, label in rows))
    return str(path)


def test_amnesic_check_with_a_fitted_head_is_stored_and_can_be_re_measured(client, tmp_path):
    """The check runs as part of a probe-set job; its erasures are stored with the probe set, and applying
    the stored arrays by hand reproduces LEACE's promise: class means of the erased states coincide."""
    data = _labelled(tmp_path / "labelled.tsv")
    head = client.post("/api/jobs", json={"kind": "fit_head", "params": {"data": data, "name": "amnesia"}})
    assert wait_for_job(client, head.json()["id"])["status"] == "done"
    done = _train(
        client,
        tmp_path,
        seeds=1,
        selectivity=False,
        topological=False,
        amnesic=True,
        amnesic_target={"kind": "head", "head": "amnesia"},
        amnesic_data=data,
    )
    metrics = client.get(f"/api/probes/{done['result_id']}").json()["metrics"]
    report = metrics["amnesic"]
    assert report["classifier"] == "fitted head" and report["labelled"] == 20
    assert [row["layer"] for row in report["rows"]] == [0, 1, 2]
    assert report["rows"][0]["later_layers"] == [1, 2] and report["rows"][2]["later_layers"] == []
    for row in report["rows"]:
        assert 0 <= row["accuracy"]["leace"] <= 1 and row["rank"] >= 1
    view = client.get(f"/api/probes/{done['result_id']}/figure").json()
    section = next(section for section in view["sections"] if section["id"] == "amnesic")
    assert [row[0] for row in section["table"]["rows"]] == ["0 (embeddings)", "1", "2"]
    assert "fitted head" in " ".join(section["reading"])

    from app.methods.probes.erasure import apply_erasure, unpack_erasers

    download = client.get(f"/api/probes/{done['result_id']}/erasers.npz")  # as a colleague would read them
    assert download.status_code == 200
    erasers = unpack_erasers(dict(np.load(io.BytesIO(download.content))))
    assert sorted(erasers) == [0, 1, 2] and set(erasers[1]) == {"leace", "random"}
    left = erasers[1]["leace"]["left"]
    assert left.shape[1] == report["rows"][1]["rank"]
    import torch

    states = torch.randn(50, left.shape[0])
    erased = apply_erasure(states, erasers[1]["leace"])
    # what LEACE removes lies in the span of ``left``; applying it twice changes nothing more
    torch.testing.assert_close(apply_erasure(erased, erasers[1]["leace"]), erased, atol=1e-4, rtol=1e-4)


def test_amnesic_check_refuses_a_classifier_it_cannot_score(client, tmp_path):
    params = {
        "treebank": str(write_treebank(tmp_path / "train.conllu", count=16)),
        "dev": str(write_treebank(tmp_path / "dev.conllu")),
        "amnesic": True,
        "amnesic_data": _labelled(tmp_path / "labelled.tsv"),
        **FAST,
    }
    job = client.post("/api/jobs", json={"kind": "train_probes", "params": params})
    failed = wait_for_job(client, job.json()["id"])
    assert failed["status"] == "failed" and "not a sequence classifier" in failed["message"]
    plain = _train(client, tmp_path, seeds=1, selectivity=False, topological=False)
    missing = client.get(f"/api/probes/{plain['result_id']}/erasers.npz")
    assert missing.status_code == 404 and "without the amnesic check" in missing.text
