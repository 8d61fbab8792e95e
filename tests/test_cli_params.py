"""CLI options come from the jobs' Params models: every field is an option, and parsing is the model's."""

from __future__ import annotations

from typing import Literal

import click
import pytest
from click.testing import CliRunner
from pydantic import BaseModel, Field

from app.cli import main
from app.cli.params import given_params, job_options
from app.jobs.evaluations import EvalDegradationParams, EvalMixingParams, EvalNeuronsParams
from app.jobs.feature_index import IndexFeaturesParams
from app.jobs.features import TrainDictionaryParams
from app.jobs.finetune import FinetuneParams
from app.jobs.heads import FitHeadParams
from app.jobs.neurons import DescribeNeuronsParams, IndexNeuronsParams
from app.jobs.probes import TrainProbesParams

# command -> (its job's params, fields given another way: by a custom option or per dataset/corpus)
COMMANDS = {
    ("eval", "mixing"): (EvalMixingParams, set()),
    ("eval", "degradation"): (EvalDegradationParams, {"method_params"}),
    ("eval", "neurons"): (EvalNeuronsParams, {"datasets"}),
    ("heads", "fit"): (FitHeadParams, set()),
    ("heads", "finetune"): (FinetuneParams, set()),
    ("probe", "train"): (TrainProbesParams, set()),
    ("neurons", "index"): (IndexNeuronsParams, {"corpora"}),
    ("neurons", "describe"): (DescribeNeuronsParams, set()),
    ("features", "train"): (TrainDictionaryParams, set()),
    ("features", "index"): (IndexFeaturesParams, set()),
}


def _command(path: tuple[str, ...]) -> click.Command:
    command = main
    for name in path:
        command = command.commands[name]
    return command


@pytest.mark.parametrize("path", list(COMMANDS), ids=" ".join)
def test_every_params_field_is_an_option(path):
    model, elsewhere = COMMANDS[path]
    names = {parameter.name for parameter in _command(path).params}
    assert set(model.model_fields) - elsewhere <= names


@pytest.mark.parametrize("path", list(COMMANDS), ids=" ".join)
def test_help_shows_the_field_descriptions(path):
    model, elsewhere = COMMANDS[path]
    text = CliRunner().invoke(main, [*path, "--help"], terminal_width=400).output
    for name, field in model.model_fields.items():
        if name not in elsewhere:
            assert field.description.rstrip(".") in " ".join(text.split()), name


class Toy(BaseModel):
    data: str = Field(description="A file.")
    layers: list[int] | None = Field(None, description="Layers.")
    label_col: str | None = Field("label", description="Label column; empty = none.")
    mode: Literal["a", "b"] = Field("a", description="Mode.")
    fast: bool = Field(False, description="Go fast.")
    target: dict | None = Field(None, description="Target.")


def _parse(*args: str) -> dict:
    seen: dict = {}

    @click.command()
    @job_options(Toy)
    def toy(**options: object) -> None:
        seen.update(given_params(Toy, dict(options)))

    result = CliRunner().invoke(toy, list(args))
    if result.exception:
        raise result.exception
    assert result.exit_code == 0, result.output
    return seen


def test_only_given_options_become_params():
    assert _parse("--data", "x.tsv") == {"data": "x.tsv"}  # the model's defaults apply to the rest


def test_values_are_read_by_shape():
    parsed = _parse(
        "--data", "x", "--layers", "1,2", "--layers", "5", "--label-col", "", "--mode", "b", "--fast",
        "--target", '{"kind": "head", "head": "sst2"}',
    )  # fmt: skip
    assert parsed == {
        "data": "x",
        "layers": [1, 2, 5],
        "label_col": None,
        "mode": "b",
        "fast": True,
        "target": {"kind": "head", "head": "sst2"},
    }
    assert Toy.model_validate(parsed).layers == [1, 2, 5]
    assert _parse("--data", "x", "--no-fast") == {"data": "x", "fast": False}


def test_bad_values_name_the_option():
    runner = CliRunner()

    @click.command()
    @job_options(Toy)
    def toy(**options: object) -> None:
        given_params(Toy, dict(options))

    for args, hint in (
        (["--data", "x", "--layers", "1,two"], "--layers"),
        (["--data", "x", "--target", "{nope"], "--target"),
        (["--data", "x", "--mode", "c"], "--mode"),
        ([], "--data"),
    ):
        result = runner.invoke(toy, args)
        assert result.exit_code == 2 and hint in result.output, (args, result.output)
