"""Fine-tuning a copy of the loaded encoder with a classification head (app.modeling.finetune), its job,
API and CLI: on tiny random models of every architecture and a toy task a model can learn (a label word)."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from fastapi.testclient import TestClient

from app.cli import main
from app.errors import InvalidInput
from app.jobs.contract import JobCancelled, JobContext
from app.jobs.finetune import FinetuneParams, run_finetune_classifier
from app.jobs.registry import parse_params
from app.main import create_app
from app.modeling.encoding import encode
from app.modeling.finetune import (
    FACTS_FILE,
    FinetuneOptions,
    bucketed_batches,
    copy_classifier,
    finetune,
    label_order,
    predict,
    save_finetuned,
)
from app.modeling.loading import load_model, weights_hash
from app.modeling.targets import ClassificationTarget, bind_target
from app.services.container import build_services
from app.store.db import make_engine
from tests.conftest import make_settings
from tests.tiny import ARCHITECTURES, save_checkpoint, tiny_loaded, wait_for_job

FILLER = "the a cat dog sat on mat movie this it".split()
# learns in 10 epochs on every tiny architecture (initialiser range 0.3 makes them slow to move)
TOY = FinetuneOptions(epochs=10, learning_rate=3e-3, batch_size=16, train_word_embeddings=True)
QUICK = FinetuneOptions(epochs=1, learning_rate=1e-3, batch_size=8)


def toy_rows(count: int, seed: int) -> tuple[list[str], list[str]]:
    """Balanced rows whose label is told by one word ('good' -> pos, 'bad' -> neg) among filler words."""
    chooser = random.Random(seed)
    texts, labels = [], []
    for row in range(count):
        label = ("neg", "pos")[row % 2]
        words = [chooser.choice(FILLER) for _ in range(chooser.randint(2, 5))]
        words.insert(chooser.randrange(len(words) + 1), "good" if label == "pos" else "bad")
        texts.append(" ".join(words))
        labels.append(label)
    return texts, labels


def write_tsv(path: Path, rows: tuple[list[str], list[str]], header: str = "sentence\tlabel") -> Path:
    path.write_text(header + "\n" + "".join(f"{t}\t{y}\n" for t, y in zip(*rows, strict=True)), "utf-8")
    return path


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict:
    directory = tmp_path_factory.mktemp("finetune-tiny")
    return {architecture: tiny_loaded(directory, architecture) for architecture in ARCHITECTURES}


def run(loaded, rows, dev=None, options=QUICK, **callbacks):
    return finetune(copy_classifier(loaded, rows[1], options), *rows, dev=dev, options=options, **callbacks)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_learns_a_toy_task_and_leaves_the_resident_model_alone(tiny_models, architecture):
    loaded = tiny_models[architecture]
    before = weights_hash(loaded.model)
    result = run(loaded, toy_rows(96, 1), dev=toy_rows(32, 2), options=TOY)
    first, last = result.epochs[0]["train_loss"], result.epochs[-1]["train_loss"]
    # below ln 2, the loss of the best constant guess on balanced labels: the model uses the label word
    assert last < math.log(2) < first
    # a coin reaches 22 of 32 with probability 0.025 (binomial tail)
    assert result.dev_accuracy >= 22 / 32
    assert len(result.losses) == TOY.epochs * 6 and not result.stopped
    assert weights_hash(loaded.model) == before
    assert not loaded.model.training and not any(p.requires_grad for p in loaded.model.parameters())
    assert type(result.model).__name__.endswith("ForSequenceClassification")


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_checkpoint_reloads_as_a_classifier_with_the_same_logits(tiny_models, tmp_path, architecture):
    result = run(tiny_models[architecture], toy_rows(32, 3))
    directory = save_finetuned(result, tmp_path / "ckpt", {"name": "toy"})
    reloaded = load_model(str(directory), device="cpu")
    assert reloaded.head == "classification" and reloaded.label_names == ["neg", "pos"]
    assert reloaded.config.model_type == architecture
    texts = ["a good movie", "it was bad", "the cat sat on the mat and it was good"]
    expected = predict(result.model, result.tokenizer, texts)
    assert torch.equal(predict(reloaded.model, reloaded.tokenizer, texts), expected)
    # the analyses' classification target scores the same logits (one unpadded input instead of a padded
    # batch: another summation order, float32 rounding of about 1e-6 on logits of order 1)
    encoded = encode(reloaded.tokenizer, texts[0], max_tokens=64)
    bound = bind_target(reloaded, ClassificationTarget(), encoded)
    torch.testing.assert_close(bound.scores(**encoded.model_inputs())[0], expected[0], rtol=0, atol=1e-5)
    facts = json.loads((directory / FACTS_FILE).read_text())
    assert facts["name"] == "toy" and facts["labels"] == ["neg", "pos"] and facts["train_rows"] == 28
    assert facts["base_model"]["revision"] == tiny_models[architecture].revision


def test_same_seed_same_model_other_seed_other_model(tiny_bert):
    rows = toy_rows(32, 4)
    first, again = run(tiny_bert, rows), run(tiny_bert, rows)
    assert first.losses == again.losses
    assert weights_hash(first.model) == weights_hash(again.model)
    other = run(tiny_bert, rows, options=FinetuneOptions(epochs=1, learning_rate=1e-3, batch_size=8, seed=1))
    assert other.losses != first.losses


def test_word_embeddings_stay_frozen_unless_asked(tiny_bert):
    embeddings = tiny_bert.model.get_input_embeddings().weight
    frozen = run(tiny_bert, toy_rows(32, 5))
    assert torch.equal(frozen.model.get_input_embeddings().weight, embeddings)
    trained = run(tiny_bert, toy_rows(32, 5), options=FinetuneOptions(epochs=1, train_word_embeddings=True))
    assert not torch.equal(trained.model.get_input_embeddings().weight, embeddings)


def test_batches_hold_every_row_once_grouped_by_length():
    lengths = [(i * 37) % 41 + 1 for i in range(1000)]
    batches = bucketed_batches(lengths, 8, torch.Generator().manual_seed(0))
    assert sorted(row for batch in batches for row in batch) == list(range(1000))
    padded = sum(len(batch) * max(lengths[row] for row in batch) for batch in batches)
    assert padded < 1.2 * sum(lengths)  # sorted pools of 400 rows: little padding (random order: ~1.8x)


def test_label_order_is_numeric_for_integer_labels():
    assert label_order(["10", "2", "1", "2"]) == ["1", "2", "10"]
    assert label_order(["pos", "neg"]) == ["neg", "pos"]


def test_held_out_split_without_a_dev_file(tiny_bert):
    texts, labels = toy_rows(40, 6)
    result = run(tiny_bert, (texts, labels))
    assert result.dev_size == 4 and result.train_size == 36 and result.held_out.startswith("10%")


def test_stopping_ends_training_between_steps(tiny_bert):
    asked = []
    result = run(tiny_bert, toy_rows(40, 6), should_stop=lambda: len(asked.append(1) or asked) > 3)
    assert result.stopped and len(result.losses) == 3 and result.epochs == []


def test_clear_errors_for_data_that_cannot_be_used(tiny_bert, tmp_path):
    with pytest.raises(InvalidInput, match="at least two different labels"):
        copy_classifier(tiny_bert, ["pos", "pos", "pos"])
    with pytest.raises(InvalidInput, match=r"Dev labels \['meh'\]"):
        run(tiny_bert, toy_rows(8, 1), dev=(["so so"], ["meh"]))
    with pytest.raises(InvalidInput, match="each label needs at least 2 rows"):
        run(tiny_bert, (["good", "bad", "very bad"], ["pos", "neg", "neg"]))
    with pytest.raises(InvalidInput, match="params.name"):
        parse_params("finetune_classifier", {"data": "x.tsv", "name": "../escape"})


def job_context(tmp_path: Path, loaded, stop=lambda: False) -> JobContext:
    settings = make_settings(tmp_path, models_dir=tmp_path / "models")
    services = build_services(loaded, make_engine(settings.database_url), settings)
    return JobContext(services.runner, services.stores, settings, lambda done, total: None, stop)


def test_job_errors_name_the_problem(tiny_bert, tmp_path):
    data = write_tsv(tmp_path / "toy.tsv", toy_rows(20, 1))
    context = job_context(tmp_path, tiny_bert)
    with pytest.raises(InvalidInput, match="does not exist"):
        run_finetune_classifier(context, FinetuneParams(data=str(tmp_path / "none.tsv")))
    with pytest.raises(InvalidInput, match="Column 'stars' is not in toy.tsv"):
        run_finetune_classifier(context, FinetuneParams(data=str(data), label_col="stars"))
    (tmp_path / "models" / "taken").mkdir(parents=True)
    with pytest.raises(InvalidInput, match="already exists"):
        run_finetune_classifier(context, FinetuneParams(data=str(data), name="taken"))


def test_a_cancelled_job_leaves_no_checkpoint(tiny_bert, tmp_path):
    data = write_tsv(tmp_path / "toy.tsv", toy_rows(40, 1))
    asked = []
    context = job_context(tmp_path, tiny_bert, stop=lambda: len(asked.append(1) or asked) > 2)
    with pytest.raises(JobCancelled):
        run_finetune_classifier(context, FinetuneParams(data=str(data), epochs=1, batch_size=4))
    models = tmp_path / "models"
    assert not models.exists() or list(models.iterdir()) == []


def test_api_job_saves_a_checkpoint_that_loads(tiny_bert, tmp_path):
    data = write_tsv(tmp_path / "reviews.tsv", toy_rows(40, 1))
    dev = write_tsv(tmp_path / "dev.tsv", toy_rows(10, 2))
    settings = make_settings(tmp_path, models_dir=tmp_path / "models")
    with TestClient(create_app(settings, tiny_bert), base_url="http://127.0.0.1") as client:
        kinds = client.get("/api/jobs/kinds").json()
        assert "finetune_classifier" in json.dumps(kinds)
        params = {"data": str(data), "dev": str(dev), "epochs": 1, "batch_size": 8, "name": "reviews-tiny"}
        submitted = client.post("/api/jobs", json={"kind": "finetune_classifier", "params": params})
        assert submitted.status_code in (200, 201, 202), submitted.text
        job = wait_for_job(client, submitted.json()["id"])
    assert job["status"] == "done", job
    assert job["result_id"] == "reviews-tiny"
    reloaded = load_model(str(tmp_path / "models" / "reviews-tiny"), device="cpu")
    assert reloaded.head == "classification" and reloaded.label_names == ["neg", "pos"]
    facts = json.loads((tmp_path / "models" / "reviews-tiny" / FACTS_FILE).read_text())
    assert facts["dev_rows"] == 10 and facts["held_out"] == "the dev file" and facts["data"] == str(data)
    assert not list((tmp_path / "models").glob(".*"))  # no staging directory left


def test_cli_finetune_prints_the_checkpoint(tmp_path):
    checkpoint = save_checkpoint(tmp_path / "ckpt", "distilbert")
    data = write_tsv(tmp_path / "reviews.tsv", toy_rows(40, 1))
    models = tmp_path / "models"
    result = CliRunner().invoke(
        main,
        ["heads", "finetune", "--data", str(data), "--epochs", "1", "--model", str(checkpoint)]
        + ["--database-url", f"sqlite:///{tmp_path / 'store.db'}"],
        env={"BERTSCOPE_MODELS_DIR": str(models)},
    )
    assert result.exit_code == 0, result.output
    path = models / "reviews-finetuned"
    assert f"checkpoint: {path}" in result.stdout and "dev accuracy" in result.stdout
    assert load_model(str(path), device="cpu").label_names == ["neg", "pos"]
