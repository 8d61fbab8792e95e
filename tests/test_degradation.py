"""Degradation tests: ranking and removal by hand, metrics on a tiny model, job and CLI."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from app.cli import main
from app.errors import InvalidInput
from app.methods import METHODS
from app.methods.evaluation.degradation import (
    ERASER_BINS,
    STEPS,
    count,
    evaluate_degradation,
    ranking,
    variant_inputs,
)
from app.modeling.encoding import encode
from app.modeling.targets import MaskedTokenTarget, ZeroShotTarget
from tests.conftest import sqlite_url
from tests.tiny import save_checkpoint, wait_for_job

ROWS = [
    ("a good movie with a great cast", "good"),
    ("a bad movie , very long", "bad"),
    ("it was not very good", "bad"),
    ("the dog is great fun", "good"),
]
TARGET = ZeroShotTarget(labels=["good", "bad"], template="it was {} .")


def test_ranking_and_counts_by_hand():
    scores = np.array([9.0, 0.1, 0.5, 0.3, 9.0])  # positions 0 and 4 are special
    assert ranking(scores, [1, 2, 3], "most") == [2, 3, 1]
    assert ranking(scores, [1, 2, 3], "least") == [1, 3, 2]
    assert [count(step, 3) for step in STEPS] == [0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3]
    assert [count(fraction, 20) for fraction in ERASER_BINS] == [1, 1, 2, 4, 10]


def test_variant_inputs_delete_and_mask(tiny_bert):
    encoded = encode(tiny_bert.tokenizer, "a good movie", max_tokens=64)  # [CLS] a good movie [SEP]
    deleted = variant_inputs(encoded, [set(), {2}, {1, 3}], "delete", 4, 0)
    ids = encoded.input_ids[0].tolist()
    assert deleted["input_ids"].tolist() == [
        ids,
        [ids[0], ids[1], ids[3], ids[4], 0],
        [ids[0], ids[2], ids[4], 0, 0],
    ]
    assert deleted["attention_mask"].tolist()[2] == [1, 1, 1, 0, 0]
    masked = variant_inputs(encoded, [{2}], "mask", 4, 0)
    assert masked["input_ids"].tolist() == [[ids[0], ids[1], 4, ids[3], ids[4]]]


def test_removing_everything_equals_the_bare_specials(tiny_bert):
    methods = {"occlusion": METHODS["occlusion"], "random": None}
    evaluation = evaluate_degradation(tiny_bert, ROWS, methods, TARGET, max_tokens=64)
    summary = evaluation.summary()
    assert summary["examples"] == 4 and summary["labels"] == ["good", "bad"]
    for stats in summary["summary"].values():
        assert len(stats["probability"]) == 11 and 0 <= stats["aopc"] <= 1
    # at 100% every method has removed every word: identical inputs, identical probabilities
    ends = {name: [row[-1] for row in evaluation.probabilities[name]] for name in methods}
    np.testing.assert_allclose(ends["occlusion"], ends["random"], atol=1e-6)
    starts = {name: [row[0] for row in evaluation.probabilities[name]] for name in methods}
    np.testing.assert_allclose(starts["occlusion"], starts["random"], atol=1e-6)


def test_occlusion_beats_random_on_its_own_first_step(tiny_bert):
    """Deleting the token whose occlusion hurts most must hurt at least as much as a random token (10%)."""
    evaluation = evaluate_degradation(
        tiny_bert, ROWS * 3, {"occlusion": METHODS["occlusion"], "random": None}, TARGET, max_tokens=64
    )
    summary = evaluation.summary()["summary"]
    assert summary["occlusion"]["comprehensiveness"] >= summary["random"]["comprehensiveness"] - 1e-6


def test_bad_targets_and_labels(tiny_bert):
    with pytest.raises(InvalidInput, match="sentence-level target"):
        evaluate_degradation(tiny_bert, ROWS, {"random": None}, MaskedTokenTarget(), max_tokens=64)
    with pytest.raises(InvalidInput, match="Gold label 'great'"):
        evaluate_degradation(tiny_bert, [("a movie", "great")], {"random": None}, TARGET, max_tokens=64)


def test_degradation_job_and_cli(client, tmp_path):
    data = tmp_path / "rows.tsv"
    data.write_text("sentence\tlabel\n" + "".join(f"{t}\t{label}\n" for t, label in ROWS), encoding="utf-8")
    params = {
        "data": str(data),
        "methods": ["occlusion", "gradient_x_input", "random"],
        "target": TARGET.model_dump(),
    }
    job = client.post("/api/jobs", json={"kind": "eval_degradation", "params": params}).json()
    state = wait_for_job(client, job["id"])
    assert state["status"] == "done", state
    view = client.get(f"/api/evaluations/{state['result_id']}/figure").json()
    assert view["table"]["columns"][:4] == ["method", "AOPC", "comprehensiveness", "sufficiency"]
    assert len(view["figure"]["data"]) == 6  # probability and accuracy curve per method
    bad = client.post(
        "/api/jobs",
        json={"kind": "eval_degradation", "params": {"data": "x", "method_params": {"lime": {"samples": 1}}}},
    )
    assert bad.status_code == 422 and "samples" in bad.json()["error"]["message"]

    checkpoint = save_checkpoint(tmp_path / "ckpt")
    result = CliRunner().invoke(
        main,
        [
            "eval",
            "degradation",
            "--data",
            str(data),
            "--methods",
            "occlusion,random",
            "--target",
            TARGET.model_dump_json(),
            "--param",
            "occlusion.baseline=mask",
            "--model",
            str(checkpoint),
            "--database-url",
            sqlite_url(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "| occlusion |" in result.stdout and "(4 examples" in result.stdout
    wrong = CliRunner().invoke(
        main,
        [
            "eval",
            "degradation",
            "--data",
            str(data),
            "--param",
            "samples=3",
            "--model",
            str(checkpoint),
            "--database-url",
            sqlite_url(tmp_path),
        ],
    )
    assert wrong.exit_code == 2 and "METHOD.KEY=VALUE" in wrong.output
