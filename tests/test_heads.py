"""Fitted heads: fitting on frozen pooled embeddings, storing, and using them as targets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from app.cli import main
from app.modeling.encoding import encode
from app.modeling.heads import fit_head, pooled_embeddings
from app.modeling.targets import HeadTarget, bind_target
from tests.conftest import SHARED_DATA, sqlite_url
from tests.tiny import save_checkpoint, wait_for_job

GOOD = ["a good movie", "very good", "it was good", "good and great", "a great cast", "great fun"] * 4
BAD = ["a bad movie", "very bad", "it was bad", "bad and long", "a bad end", "not good at all"] * 4


@pytest.fixture
def labelled(tmp_path):
    path = tmp_path / "reviews.tsv"
    rows = [f"{text}\tpositive" for text in GOOD] + [f"{text}\tnegative" for text in BAD]
    path.write_text("sentence\tlabel\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_head_logits_reproduce_the_fitted_probabilities(tiny_bert):
    head = fit_head(tiny_bert, GOOD + BAD, ["pos"] * len(GOOD) + ["neg"] * len(BAD), name="t", params={})
    encoded = encode(tiny_bert.tokenizer, "a good movie", max_tokens=64)
    bound = bind_target(tiny_bert, HeadTarget(head="t"), encoded, heads=lambda key: head)
    embedding = pooled_embeddings(tiny_bert, ["a good movie"])[0]
    expected = head.weight @ embedding + head.bias
    np.testing.assert_allclose(bound.scores(**encoded.model_inputs())[0].numpy(), expected, atol=1e-4)
    assert head.labels == ["neg", "pos"] and 0 <= head.metrics["held_out_accuracy"] <= 1
    with torch.enable_grad():  # differentiable, so gradient methods can explain it
        embeds = tiny_bert.model.get_input_embeddings()(encoded.input_ids).detach().requires_grad_(True)
        bound.scores(inputs_embeds=embeds, attention_mask=encoded.attention_mask)[0, 1].backward()
    assert embeds.grad is not None and embeds.grad.abs().sum() > 0


def test_cli_fit_list_and_use_as_target(tmp_path, labelled):
    checkpoint = save_checkpoint(tmp_path / "ckpt")
    database = sqlite_url(tmp_path)
    fitted = CliRunner().invoke(
        main,
        [
            "heads",
            "fit",
            "--data",
            str(labelled),
            "--model",
            str(checkpoint),
            "--database-url",
            database,
            "--name",
            "sentiment",
        ],
    )
    assert fitted.exit_code == 0, fitted.output
    assert "held-out accuracy" in fitted.stdout and "n=10" in fitted.stdout  # 20% of 48 rows
    listed = CliRunner().invoke(
        main, ["heads", "list", "--model", str(checkpoint), "--database-url", database]
    )
    assert "sentiment" in listed.stdout
    analysed = CliRunner().invoke(
        main,
        [
            "analyze",
            "occlusion",
            "--text",
            "a good movie",
            "--target",
            '{"kind": "head", "head": "sentiment"}',
            "--model",
            str(checkpoint),
            "--database-url",
            database,
            "--json",
        ],
    )
    assert analysed.exit_code == 0, analysed.output
    assert '"label":"' in analysed.stdout and '"kind":"head"' in analysed.stdout
    missing = CliRunner().invoke(
        main,
        [
            "heads",
            "fit",
            "--data",
            str(tmp_path / "none.tsv"),
            "--model",
            str(checkpoint),
            "--database-url",
            database,
        ],
    )
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_head_job_and_target_through_the_api(client, labelled):
    job = client.post(
        "/api/jobs", json={"kind": "fit_head", "params": {"data": str(labelled), "name": "rev"}}
    )
    assert job.status_code == 202
    state = wait_for_job(client, job.json()["id"])
    assert state["status"] == "done", state
    heads = client.get("/api/heads").json()
    assert [h["name"] for h in heads] == ["rev"] and heads[0]["id"] == state["result_id"]
    targets = client.get("/api/model").json()["targets"]
    assert targets[-1]["kind"] == "head" and targets[-1]["heads"][0]["name"] == "rev"
    body = {"method": "saliency", "text": "a good movie", "target": {"kind": "head", "head": "rev"}}
    first = client.post("/api/analyses", json=body).json()
    assert first["target"]["spec"]["head"] == heads[0]["id"]  # the name is pinned to the head's id
    assert first["result"]["prediction"]["label"] in ("positive", "negative")
    assert client.post("/api/analyses", json=body).json()["cached"] is True
    missing = client.post("/api/analyses", json={**body, "target": {"kind": "head", "head": "nope"}})
    assert missing.status_code == 404 and "heads fit" in missing.json()["error"]["message"]


@pytest.mark.slow
def test_sst2_head_on_the_embedded_model(tmp_path):
    train, dev = SHARED_DATA / "sst2" / "train.tsv", SHARED_DATA / "sst2" / "dev.tsv"
    if not train.is_file():
        pytest.skip(f"{train} is absent (the shared datasets are not beside this clone)")
    database = sqlite_url(tmp_path)
    result = CliRunner().invoke(
        main,
        [
            "heads",
            "fit",
            "--data",
            str(train),
            "--dev",
            str(dev),
            "--limit",
            "1000",
            "--device",
            "cpu",
            "--database-url",
            database,
        ],
    )
    assert result.exit_code == 0, result.output
    accuracy = float(result.stdout.split("held-out accuracy ")[1].split()[0])
    assert accuracy > 0.75, result.stdout
