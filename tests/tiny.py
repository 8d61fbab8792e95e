"""Tiny random BERT-family models and a WordPiece tokenizer, built in-process (no hub, no network)."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    BertConfig,
    BertForMaskedLM,
    BertForSequenceClassification,
    BertModel,
    BertTokenizerFast,
    DistilBertConfig,
    DistilBertModel,
    ElectraConfig,
    ElectraModel,
    RobertaConfig,
    RobertaModel,
)

from app.modeling.loading import LoadedModel, wrap_model

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = (
    "the a cat dog sat on mat and is was good bad movie review positive negative this it very not "
    "keys to cabinet are table of in with for by at from that which who what when where why how "
    "i you he she we they my your his her our their be been have has had do does did will would "
    "can could should may might must new old big small long short first last great little own other "
    "same right left high low , . ! ? ' < > / ( ) script alert 1 2 3 ##s ##ed ##ing ##ly é 日 本"
).split()
ARCHITECTURES = ["bert", "roberta", "distilbert", "electra"]


def vocab() -> list[str]:
    return SPECIALS + WORDS


def make_tokenizer(directory: Path, *, token_types: bool = True) -> BertTokenizerFast:
    """A lower-casing WordPiece tokenizer over ``vocab()`` (about 130 entries)."""
    directory.mkdir(parents=True, exist_ok=True)
    table = {token: index for index, token in enumerate(vocab())}
    tokenizer = BertTokenizerFast(vocab=table, do_lower_case=True, model_max_length=64)
    if not token_types:
        tokenizer.model_input_names = ["input_ids", "attention_mask"]
    return tokenizer


def make_config(architecture: str, **overrides: object):
    """hidden 32, 2 layers, 4 heads, eager attention; ELECTRA with a smaller embedding size."""
    size = len(vocab())
    # weights larger than the default 0.02 so that mixing effects stand far above float rounding
    common = {"vocab_size": size, "attn_implementation": "eager", "pad_token_id": 0, "initializer_range": 0.3}
    if architecture == "distilbert":
        config = DistilBertConfig(
            dim=32, n_layers=2, n_heads=4, hidden_dim=37, max_position_embeddings=64, **common
        )
    else:
        cls = {"bert": BertConfig, "roberta": RobertaConfig, "electra": ElectraConfig}[architecture]
        extra = {"embedding_size": 16} if architecture == "electra" else {}
        config = cls(
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=37,
            max_position_embeddings=66,
            type_vocab_size=2,
            **extra,
            **common,
        )
    for key, value in overrides.items():
        setattr(config, key, value)
    return config


def make_model(
    architecture: str = "bert", head: str = "none", seed: int = 0, **overrides: object
) -> torch.nn.Module:
    """A randomly initialised tiny model, deterministic given ``seed``."""
    torch.manual_seed(seed)
    config = make_config(architecture, **overrides)
    if head == "classification":
        config.num_labels = 2
        config.id2label = {0: "negative", 1: "positive"}
        config.label2id = {"negative": 0, "positive": 1}
        return BertForSequenceClassification(config)
    if head == "masked_lm":
        return BertForMaskedLM(config)
    cls = {"bert": BertModel, "roberta": RobertaModel, "distilbert": DistilBertModel, "electra": ElectraModel}
    return cls[architecture](config)


def tiny_loaded(tmp: Path, architecture: str = "bert", head: str = "none", seed: int = 0) -> LoadedModel:
    """A tiny model wrapped exactly as the server wraps a loaded checkpoint."""
    tokenizer = make_tokenizer(tmp / f"tok-{architecture}", token_types=architecture != "distilbert")
    model = make_model(architecture, head, seed)
    return wrap_model(
        model, tokenizer, name=f"tiny-{architecture}", source="in-process", device=torch.device("cpu")
    )


def save_checkpoint(directory: Path, architecture: str = "bert", head: str = "none", seed: int = 0) -> Path:
    """Write a tiny checkpoint (weights, config, tokenizer) that ``load_model`` can open by path."""
    model = make_model(architecture, head, seed)
    if head == "none":
        model.config.architectures = [type(model).__name__]
    model.save_pretrained(directory)
    make_tokenizer(directory, token_types=architecture != "distilbert").save_pretrained(directory)
    return directory


def uniform_attention_loaded(tmp: Path) -> LoadedModel:
    """A tiny BERT with W_Q = 0 and b_Q = 0: every attention score is 0, so every row is uniform (1/N)."""
    model = make_model("bert")
    for layer in model.encoder.layer:
        layer.attention.self.query.weight.data.zero_()
        layer.attention.self.query.bias.data.zero_()
    return wrap_model(model, make_tokenizer(tmp), name="uniform", source="test", device=torch.device("cpu"))


def wait_for_job(client, job_id: str, timeout: float = 60.0) -> dict:
    """Poll GET /api/jobs/{id} until the job has finished (done, failed or cancelled)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["status"] in ("done", "failed", "cancelled"):
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} still {job['status']} after {timeout}s")
        time.sleep(0.1)


CORPUS_WORDS = "the cat sat on a mat and dog was very good bad movie this it not".split()


def write_corpus(path: Path, count: int) -> Path:
    """``count`` ten-word sentences over the tiny vocabulary, one per line."""
    rows = (
        " ".join(CORPUS_WORDS[(i * 7 + j * 3) % len(CORPUS_WORDS)] for j in range(10)) for i in range(count)
    )
    path.write_text("\n".join(rows) + "\n")
    return path


def slow_index_job(corpus: Path, name: str) -> dict:
    """A neuron index job that runs for seconds on a tiny model (one sentence per batch, no describing)."""
    return {
        "kind": "index_neurons",
        "params": {"corpora": [{"name": name, "path": str(corpus)}], "describe": False, "batch_size": 1},
    }
