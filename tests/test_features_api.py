"""Feature dictionaries through the real app: train as a job over an indexed corpus, list, download the
weights and recompute the held-out FVU from them independently; bad input and Cancel."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
import torch

from app.main import create_app
from tests.conftest import make_settings
from tests.tiny import wait_for_job, write_corpus

TRAIN = {"layer": 1, "site": "residual", "width_multiplier": 2, "k": 4, "steps": 40, "batch_size": 64}


def _index(client, tmp_path, name: str = "c", count: int = 120) -> None:
    corpus = {"name": name, "path": str(write_corpus(tmp_path / f"{name}.txt", count))}
    job = client.post(
        "/api/jobs", json={"kind": "index_neurons", "params": {"corpora": [corpus], "describe": False}}
    )
    assert wait_for_job(client, job.json()["id"])["status"] == "done"


def _train(client, **params) -> dict:
    job = client.post(
        "/api/jobs", json={"kind": "train_dictionary", "params": {"corpora": ["c"], **TRAIN, **params}}
    )
    assert job.status_code == 202, job.text
    return wait_for_job(client, job.json()["id"], timeout=180)


def _numpy_fvu(weights: dict, x: np.ndarray) -> float:
    """The dictionary's reconstruction error, from the downloaded arrays alone (the documented formula)."""
    scaled = x / weights["scale"]
    pre = (scaled - weights["pre_bias"]) @ weights["encoder"] + weights["encoder_bias"]
    k = int(weights["k"])
    keep = np.argsort(-pre, axis=1, kind="stable")[:, :k]
    z = np.zeros_like(pre)
    np.put_along_axis(z, keep, np.maximum(np.take_along_axis(pre, keep, axis=1), 0), axis=1)
    reconstruction = (z @ weights["decoder"] + weights["pre_bias"]) * weights["scale"]
    return float(((x - reconstruction) ** 2).sum() / ((x - x.mean(axis=0)) ** 2).sum())


@pytest.mark.slow
def test_train_list_download_and_recompute(client, tmp_path, tiny_bert):
    from tests.treebanks import write_treebank

    _index(client, tmp_path)
    probes = {
        "treebank": str(write_treebank(tmp_path / "train.conllu", count=16)),
        "dev": str(write_treebank(tmp_path / "dev.conllu")),
        "layers": [1],
        "rank": 8,
        "max_epochs": 2,
        "topological_epochs": 1,
    }
    job = client.post("/api/jobs", json={"kind": "train_probes", "params": probes}).json()
    trained = wait_for_job(client, job["id"])
    assert trained["status"] == "done", trained
    done = _train(client)
    assert done["status"] == "done", done
    [listed] = client.get("/api/dictionaries").json()
    assert listed["id"] == done["result_id"] and listed["width"] == 2 * tiny_bert.hidden_size
    metrics = listed["metrics"]
    assert 0 <= metrics["fvu"] < 1.5 and 0 < metrics["l0"] <= 4 and metrics["tokens_seen"] > 0
    assert metrics["splice"]["sentences"] == 12 and 0 <= metrics["splice"]["prediction_agreement"] <= 1
    probe = metrics["probe"]  # the probe set's layer-1 UUAS on its dev treebank, with and without the splice
    assert probe["probe_set"] == trained["result_id"]
    assert probe["sentences"] > 0 and 0 <= probe["uuas"] <= 1 and 0 <= probe["uuas_spliced"] <= 1
    archive = client.get(f"/api/dictionaries/{listed['id']}/weights.npz")
    assert archive.status_code == 200
    weights = dict(np.load(io.BytesIO(archive.content)))
    assert np.allclose(np.linalg.norm(weights["decoder"], axis=1), 1.0, atol=1e-5)
    # held-out sentences (every 10th), their layer-1 residual vectors from the model's own hidden states
    sentences = (tmp_path / "c.txt").read_text().splitlines()[9::10]
    vectors = []
    for text in sentences:
        inputs = tiny_bert.tokenizer(text, return_tensors="pt")
        with torch.no_grad():
            hidden = tiny_bert.model(**inputs, output_hidden_states=True).hidden_states[1][0]
        vectors.append(hidden[1:-1].numpy())  # without [CLS] and [SEP]
    x = np.concatenate(vectors).astype(np.float64)
    assert metrics["heldout_tokens"] == x.shape[0]
    assert _numpy_fvu(weights, x) == pytest.approx(metrics["fvu"], rel=1e-4)
    page = client.get("/neurons").text
    assert 'id="dictionary-table"' in page and listed["name"] in page
    assert 'data-kind="train_dictionary"' in page


@pytest.mark.slow
def test_an_ffn_dictionary_says_why_it_has_no_probe_cost(client, tmp_path, tiny_bert):
    _index(client, tmp_path)
    done = _train(client, site="ffn", layer=0, steps=10)
    assert done["status"] == "done", done
    [listed] = client.get("/api/dictionaries").json()
    assert listed["metrics"]["probe"] == {
        "skipped": "structural probes read the residual stream; this dictionary reads the FFN"
    }
    assert listed["width"] == 2 * tiny_bert.num_units and listed["site"] == "ffn"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"layer": 9}, "Layer 9 does not exist at site 'residual'"),
        ({"site": "ffn", "layer": 2}, "Layer 2 does not exist at site 'ffn'"),
        ({"corpora": ["nope"]}, "No finished neuron index of corpus nope"),
        ({"width_multiplier": 64, "batch_size": 16_384}, "over the 0.00 GiB budget"),
    ],
)
def test_bad_dictionary_jobs_fail_before_training_with_a_clear_message(tmp_path, tiny_bert, params, message):
    from fastapi.testclient import TestClient

    settings = make_settings(tmp_path, max_dictionary_bytes=1024**2)
    with TestClient(create_app(settings, tiny_bert), base_url="http://127.0.0.1") as client:
        _index(client, tmp_path, count=30)
        done = _train(client, **params)
        assert done["status"] == "failed" and message in done["message"], done
        assert client.get("/api/dictionaries").json() == []


@pytest.mark.slow
def test_cancel_mid_training_keeps_nothing(client, tmp_path):
    from sqlalchemy import func, select

    from app.store.tables import DictionaryRow

    _index(client, tmp_path)
    params = {"corpora": ["c"], **TRAIN, "steps": 1_000_000}
    job = client.post("/api/jobs", json={"kind": "train_dictionary", "params": params}).json()
    deadline = time.monotonic() + 120
    while client.get(f"/api/jobs/{job['id']}").json()["progress"] <= 0:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    client.post(f"/api/jobs/{job['id']}/cancel")
    assert wait_for_job(client, job["id"])["status"] == "cancelled"
    assert client.get("/api/dictionaries").json() == []
    engine = client.app.state.services.stores.engine
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(DictionaryRow)) == 0


@pytest.mark.slow
def test_the_neuron_evaluation_runs_on_a_dictionarys_features(client, tmp_path):
    _index(client, tmp_path)
    assert _train(client)["status"] == "done"
    [dictionary] = client.get("/api/dictionaries").json()
    words = (tmp_path / "c.txt").read_text().splitlines()
    labelled = tmp_path / "labelled.tsv"
    rows = [(text, int("cat" in text.split()[:3])) for text in words]
    labelled.write_text(
        "sentence\tlabel\n" + "".join(f"{t}\t{label}\n" for t, label in rows), encoding="utf-8"
    )
    params = {"datasets": [{"name": "d", "path": str(labelled)}], "exemplars": 5, "basis": "features"}
    job = client.post("/api/jobs", json={"kind": "eval_neurons", "params": params})
    done = wait_for_job(client, job.json()["id"], timeout=120)
    assert done["status"] == "done", done
    summary = client.get(f"/api/evaluations/{done['result_id']}").json()["summary"]
    assert summary["dictionary"]["id"] == dictionary["id"] and summary["params"]["basis"] == "features"
    assert summary["counts"]["neurons"] == dictionary["width"]  # one unit per feature
    labels = [row[0] for row in summary["table"]["rows"]]
    assert labels[0] == "features" and "random_directions" in labels and "neurons" not in labels
    missing = client.post(
        "/api/jobs", json={"kind": "eval_neurons", "params": {**params, "dictionary": "no-such-dictionary"}}
    )
    failed = wait_for_job(client, missing.json()["id"])
    assert failed["status"] == "failed" and "No dictionary 'no-such-dictionary'" in failed["message"]
