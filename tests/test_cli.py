"""The CLI: analyze prints the API's JSON, model describes the checkpoint, bad input exits non-zero."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from app.cli import main
from tests.conftest import sqlite_url
from tests.tiny import save_checkpoint


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return save_checkpoint(tmp_path_factory.mktemp("ckpt"), "bert")


def _run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_analyze_json_matches_api_shape(checkpoint, tmp_path):
    result = _run(
        "analyze",
        "attention",
        "--text",
        "the cat sat",
        "--model",
        str(checkpoint),
        "--device",
        "cpu",
        "--database-url",
        sqlite_url(tmp_path),
        "--json",
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["method"] == "attention" and body["url"] == f"/a/{body['id']}"
    assert len(body["result"]["layers"]) == 2 and body["tokens"][0] == "[CLS]"
    summary = _run(
        "analyze",
        "attention",
        "--text",
        "the cat sat",
        "--model",
        str(checkpoint),
        "--device",
        "cpu",
        "--database-url",
        sqlite_url(tmp_path),
    )
    assert "(cached)" in summary.output and "result.layers: array 2x4x5x5" in summary.output


def test_model_command(checkpoint):
    result = _run("model", "--model", str(checkpoint), "--device", "cpu", "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["architecture"] == "bert" and info["layers"] == 2 and info["targets"] == ["zero_shot"]


def test_missing_model_path_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(main, ["model", "--model", str(tmp_path / "no-such-model")])
    assert result.exit_code == 2
    assert "model_not_found" in result.output and "no-such-model" in result.output


def _analyze_fails(checkpoint, tmp_path, *args: str):
    command = ["analyze", *args, "--model", str(checkpoint), "--database-url", sqlite_url(tmp_path)]
    result = CliRunner().invoke(main, command)
    assert result.exit_code == 2, result.output
    return result.output


def test_unknown_method_is_a_clear_error(checkpoint, tmp_path):
    assert "Valid methods: alti, alti_row, attention" in _analyze_fails(
        checkpoint, tmp_path, "nope", "--text", "x"
    )


def test_bad_param_syntax(checkpoint, tmp_path):
    output = _analyze_fails(checkpoint, tmp_path, "attention", "--text", "x", "--param", "novalue")
    assert "key=value" in output


def test_empty_text(checkpoint, tmp_path):
    assert "empty" in _analyze_fails(checkpoint, tmp_path, "attention", "--text", " ")


def test_bad_target_json(checkpoint, tmp_path):
    output = _analyze_fails(checkpoint, tmp_path, "attention", "--text", "x", "--target", "{nope")
    assert "JSON" in output or "json" in output


@pytest.mark.parametrize("architecture", ["roberta", "distilbert", "electra"])
def test_other_architectures_load_from_a_path(tmp_path, architecture):
    path = save_checkpoint(tmp_path / architecture, architecture)
    result = _run(
        "analyze",
        "attention",
        "--text",
        "the cat sat",
        "--model",
        str(path),
        "--device",
        "cpu",
        "--database-url",
        sqlite_url(tmp_path),
        "--json",
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["model"]["architecture"] == architecture
