"""Fine-tune a copy of the loaded encoder end to end with a sequence-classification head.

The resident model is never touched: its encoder weights are copied into a fresh
``...ForSequenceClassification`` model of the same architecture (BERT, RoBERTa, DistilBERT, ELECTRA; the
head the Hugging Face class defines, initialised from ``seed``), trained, and saved with ``save_pretrained``
so that ``load_model(PATH)`` opens it as a classifier with its label names.

The recipe is the standard one of Devlin et al. (NAACL 2019, sec. 4.1 and appendix A.3, and the released
``run_classifier.py`` / ``optimization.py``), also the baseline of Sun et al. ("How to Fine-Tune BERT for Text
Classification?", CCL 2019, sec. 5.1): cross-entropy on the head's logits; AdamW (decoupled weight decay,
Loshchilov & Hutter, ICLR 2019) with beta = (0.9, 0.999), eps = 1e-6, weight decay 0.01 except on biases
and LayerNorm weights; the learning rate warmed up linearly over the first 10 % of the steps, then decayed
linearly to 0; gradient norm clipped at 1.0; the checkpoint's own dropout (0.1). One departure, an option:
the word-embedding matrix stays frozen by default (position and token-type embeddings, the embedding
LayerNorm and every layer train). Its dense gradient and AdamW update over the whole vocabulary cost a third
of each CPU step, and Lee, Tang & Lin ("What Would Elsa Do? Freezing Layers During Transformer
Fine-Tuning", 2019) find that freezing the embedding layer costs little on GLUE tasks. Batches are bucketed by
length (shuffled, then sorted within pools of 50 batches, the batches shuffled again) and padded to their
longest input, which cuts padding on short texts without changing what is learnt in expectation.
Everything random (head initialisation, batch order, dropout) follows ``seed``.

Defaults: 2 epochs, batch 32, peak rate 1e-4. Devlin et al. search {2, 3, 5}e-5 for BERT-base and -large;
for the embedded 6-layer, 384-wide MiniLM on the shared 5,000-row SST-2 split (314 steps), 1e-4 measured
0.853 dev accuracy against 0.844 at 5e-5 (seed 0; docs/finetune.md has the run and its time).
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import AutoModelForSequenceClassification, PreTrainedModel, PreTrainedTokenizerBase

from app.errors import InvalidInput
from app.modeling.loading import LoadedModel

Progress = Callable[[int, int], None]
ShouldStop = Callable[[], bool]
FACTS_FILE = "finetune.json"
POOL_BATCHES = 50  # batches per length-sorted pool: long enough to group lengths, short enough to mix
EVAL_BATCH = 64
HELD_OUT_SHARE = 0.1  # without a dev file, 10 % of the rows (stratified) measure the accuracy


@dataclass(frozen=True)
class FinetuneOptions:
    """The recipe's knobs (module docstring); defaults measured on the embedded model (docs/finetune.md)."""

    epochs: int = 2
    learning_rate: float = 1e-4
    batch_size: int = 32
    max_length: int = 128
    warmup_share: float = 0.1
    weight_decay: float = 0.01
    seed: int = 0
    train_word_embeddings: bool = False  # frozen by default: a third of the CPU time (docs/finetune.md)


@dataclass
class FinetuneResult:
    """The trained classifier (eval mode, on the device it trained on) and what its training measured."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    labels: list[str]
    losses: list[float]  # training loss of every step, in order
    epochs: list[dict[str, float]]  # per epoch: mean training loss, held-out accuracy
    dev_accuracy: float
    train_size: int
    dev_size: int
    held_out: str
    seconds: float
    stopped: bool = False  # should_stop() ended training early; nothing should be saved
    options: FinetuneOptions = field(default_factory=FinetuneOptions)
    base: dict[str, str] = field(default_factory=dict)  # the model it was copied from


def label_order(labels: list[str]) -> list[str]:
    """The distinct labels in class-index order: numerically when every label is an integer, else sorted."""
    distinct = set(labels)
    if all(label.lstrip("-").isdigit() for label in distinct):
        return sorted(distinct, key=int)
    return sorted(distinct)


def classifier_from_encoder(loaded: LoadedModel, labels: list[str], seed: int = 0) -> PreTrainedModel:
    """A new ``...ForSequenceClassification`` (float32, train mode) holding a copy of ``loaded``'s encoder
    weights and a head initialised from ``seed``; ``loaded`` itself is only read."""
    config = copy.deepcopy(loaded.config)
    config.num_labels = len(labels)
    config.id2label = dict(enumerate(labels))
    config.label2id = {label: index for index, label in enumerate(labels)}
    config.problem_type = "single_label_classification"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForSequenceClassification.from_config(config, dtype=torch.float32)
    encoder = loaded.adapter.encoder(loaded.model)
    state = {name: tensor.detach().float() for name, tensor in encoder.state_dict().items()}
    missing, unexpected = model.base_model.load_state_dict(state, strict=False)
    # RoBERTa's and ELECTRA's classification models keep no pooler; nothing else may be left over
    unexpected = [name for name in unexpected if not name.startswith("pooler.")]
    if missing or unexpected:
        raise InvalidInput(
            f"Cannot copy the {config.model_type} encoder into a classifier: missing {missing}, "
            f"unexpected {unexpected}."
        )
    return model.to(loaded.device).train().requires_grad_(True)


def _encode(tokenizer: PreTrainedTokenizerBase, texts: list[str], max_length: int) -> list[list[int]]:
    """Token ids of each text with its special tokens, cut at ``max_length`` (padding comes per batch)."""
    return tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]


def _pad(ids: list[list[int]], pad_id: int, device: torch.device) -> dict[str, torch.Tensor]:
    """[batch, longest] input ids and attention mask (single texts: token types are all 0, the default)."""
    longest = max(len(row) for row in ids)
    input_ids = torch.full((len(ids), longest), pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), longest), dtype=torch.long)
    for row, tokens in enumerate(ids):
        input_ids[row, : len(tokens)] = torch.tensor(tokens)
        mask[row, : len(tokens)] = 1
    return {"input_ids": input_ids.to(device), "attention_mask": mask.to(device)}


def bucketed_batches(lengths: list[int], batch_size: int, generator: torch.Generator) -> list[list[int]]:
    """Row indices in batches of similar length: shuffle, sort pools of ``POOL_BATCHES`` batches by length,
    cut, shuffle the batches. Every row appears exactly once."""
    order = torch.randperm(len(lengths), generator=generator).tolist()
    pool = batch_size * POOL_BATCHES
    batches = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start : start + pool], key=lambda row: lengths[row])
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]


def _optimizer(model: nn.Module, options: FinetuneOptions, steps: int) -> tuple[Any, Any]:
    """AdamW (trainable weights only) without decay on biases and LayerNorm weights; linear warmup then
    linear decay to 0."""
    decay, no_decay = [], []
    for parameter in (p for p in model.parameters() if p.requires_grad):
        (no_decay if parameter.ndim < 2 else decay).append(parameter)  # 1-D: biases, LayerNorm gains
    groups = [
        {"params": decay, "weight_decay": options.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=options.learning_rate, betas=(0.9, 0.999), eps=1e-6)
    warmup = max(1, math.ceil(options.warmup_share * steps)) if options.warmup_share > 0 else 0

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (steps - step) / max(1, steps - warmup))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


@torch.no_grad()
def predict(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: list[str],
    *,
    batch_size: int = EVAL_BATCH,
    max_length: int = 128,
    progress: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """Logits [text, label] of ``texts`` in order (the model is put in eval mode)."""
    model.eval()
    ids = _encode(tokenizer, texts, max_length)
    order = sorted(range(len(ids)), key=lambda row: len(ids[row]))
    logits = torch.empty((len(ids), model.config.num_labels))
    device = next(model.parameters()).device
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        batch = _pad([ids[row] for row in rows], tokenizer.pad_token_id or 0, device)
        logits[rows] = model(**batch).logits.float().cpu()
        if progress is not None:
            progress(1)
    return logits


def _split(
    texts: list[str], labels: list[str], seed: int
) -> tuple[list[str], list[str], tuple[list[str], list[str]]]:
    """A stratified held-out share of the rows (at least one per label), the rest for training."""
    counts = Counter(labels)
    if min(counts.values()) < 2:
        raise InvalidInput(
            "Without a dev file each label needs at least 2 rows (one is held out to measure accuracy); "
            f"label counts: {dict(counts)}."
        )
    generator = torch.Generator().manual_seed(seed)
    held = set()
    for label in counts:
        rows = [row for row, value in enumerate(labels) if value == label]
        take = max(1, round(HELD_OUT_SHARE * len(rows)))
        held.update(rows[i] for i in torch.randperm(len(rows), generator=generator)[:take].tolist())
    keep = [row for row in range(len(texts)) if row not in held]
    dev = sorted(held)
    return (
        [texts[r] for r in keep],
        [labels[r] for r in keep],
        ([texts[r] for r in dev], [labels[r] for r in dev]),
    )


@dataclass
class ClassifierCopy:
    """A classifier built from a copy of the resident encoder, ready to train, and where it came from."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    labels: list[str]
    base: dict[str, str]  # the resident model's name, source, revision and architecture


def copy_classifier(
    loaded: LoadedModel, labels: list[str], options: FinetuneOptions | None = None
) -> ClassifierCopy:
    """Everything training needs from the resident model, copied (hold the model only around this call):
    the classifier for the distinct ``labels`` (word embeddings frozen unless the options say otherwise) and
    a tokenizer of its own (a fast tokenizer keeps its truncation state, so it is not shared)."""
    options = options or FinetuneOptions()
    classes = label_order(labels)
    if len(classes) < 2:
        raise InvalidInput(f"Fine-tuning needs at least two different labels; the data has only {classes}.")
    model = classifier_from_encoder(loaded, classes, options.seed)
    if not options.train_word_embeddings:
        model.get_input_embeddings().weight.requires_grad_(False)
    base = {
        "name": loaded.name,
        "source": loaded.source,
        "revision": loaded.revision,
        "architecture": str(loaded.config.model_type),
    }
    return ClassifierCopy(model, copy.deepcopy(loaded.tokenizer), classes, base)


def _check_data(
    classes: list[str], texts: list[str], labels: list[str], dev: tuple[list[str], list[str]] | None
) -> str:
    """Where accuracy is measured; clear errors for data the classifier cannot be trained or measured on."""
    if len(texts) != len(labels) or not texts:
        raise InvalidInput("Fine-tuning needs labelled rows: one label for every text.")
    if label_order(labels) != classes:
        raise InvalidInput(f"The data's labels {label_order(labels)} are not the classifier's {classes}.")
    if dev is None:
        return f"{HELD_OUT_SHARE:.0%} of the data, stratified"
    unknown = sorted(set(dev[1]) - set(classes))
    if unknown:
        raise InvalidInput(f"Dev labels {unknown} never occur in the training data (labels: {classes}).")
    if not dev[0]:
        raise InvalidInput("The dev data holds no labelled rows.")
    return "the dev file"


def finetune(
    start: ClassifierCopy,
    texts: list[str],
    labels: list[str],
    *,
    dev: tuple[list[str], list[str]] | None = None,
    options: FinetuneOptions | None = None,
    progress: Progress | None = None,
    should_stop: ShouldStop | None = None,
) -> FinetuneResult:
    """Train ``start``'s classifier (in place) on ``texts``/``labels``; accuracy after each epoch on ``dev``
    (else on a stratified 10 % held out of the data). ``progress`` counts training and dev batches."""
    options = options or FinetuneOptions()
    classes, model, tokenizer = start.labels, start.model, start.tokenizer
    held_out = _check_data(classes, texts, labels, dev)
    if dev is None:
        texts, labels, dev = _split(texts, labels, options.seed)
    started = time.perf_counter()
    ids = _encode(tokenizer, texts, options.max_length)
    targets = torch.tensor([classes.index(label) for label in labels])
    dev_targets = torch.tensor([classes.index(label) for label in dev[1]])
    per_epoch = math.ceil(len(ids) / options.batch_size)
    total = options.epochs * (per_epoch + math.ceil(len(dev[0]) / EVAL_BATCH))
    optimizer, schedule = _optimizer(model, options, options.epochs * per_epoch)
    generator = torch.Generator().manual_seed(options.seed)
    done, losses, history = 0, [], []

    def advance(count: int) -> None:
        nonlocal done
        done += count
        if progress is not None:
            progress(done, total)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(options.seed)  # dropout
        for _ in range(options.epochs):
            batches = bucketed_batches([len(row) for row in ids], options.batch_size, generator)
            model.train()
            step = partial(_train_step, model, optimizer, schedule, tokenizer.pad_token_id or 0)
            epoch_losses = _train_epoch(step, ids, targets, batches, advance, should_stop)
            losses += epoch_losses
            if should_stop is not None and should_stop():
                break
            logits = predict(model, tokenizer, dev[0], max_length=options.max_length, progress=advance)
            accuracy = float((logits.argmax(-1) == dev_targets).float().mean())
            history.append({"train_loss": sum(epoch_losses) / len(epoch_losses), "dev_accuracy": accuracy})
    model.eval().requires_grad_(False)
    return FinetuneResult(
        model=model,
        tokenizer=tokenizer,
        labels=classes,
        losses=losses,
        epochs=history,
        dev_accuracy=history[-1]["dev_accuracy"] if history else float("nan"),
        train_size=len(texts),
        dev_size=len(dev[0]),
        held_out=held_out,
        seconds=time.perf_counter() - started,
        stopped=len(history) < options.epochs,
        options=options,
        base=start.base,
    )


def _train_step(
    model: PreTrainedModel,
    optimizer: torch.optim.Optimizer,
    schedule: Any,
    pad_id: int,
    ids: list[list[int]],
    targets: torch.Tensor,
) -> float:
    """One AdamW step on one padded batch; its loss."""
    device = next(model.parameters()).device
    batch = _pad(ids, pad_id, device)
    loss = nn.functional.cross_entropy(model(**batch).logits.float(), targets.to(device))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    schedule.step()
    return float(loss.detach())


def _train_epoch(
    step: Callable[[list[list[int]], torch.Tensor], float],
    ids: list[list[int]],
    targets: torch.Tensor,
    batches: list[list[int]],
    advance: Callable[[int], None],
    should_stop: ShouldStop | None,
) -> list[float]:
    """One pass over ``batches``; the loss of each step (stops early, between steps, when
    asked)."""
    losses = []
    for rows in batches:
        if should_stop is not None and should_stop():
            break
        losses.append(step([ids[row] for row in rows], targets[rows]))
        advance(1)
    return losses


def save_finetuned(result: FinetuneResult, directory: Path, facts: dict[str, Any]) -> Path:
    """Write the classifier and tokenizer (``save_pretrained``) and ``finetune.json`` (training facts)."""
    directory.mkdir(parents=True, exist_ok=True)
    result.model.save_pretrained(directory)
    result.tokenizer.save_pretrained(directory)
    record = {**facts, **training_facts(result)}
    (directory / FACTS_FILE).write_text(json.dumps(record, indent=2), encoding="utf-8")
    return directory


def training_facts(result: FinetuneResult) -> dict[str, Any]:
    """What the training measured, as JSON (rows, time, accuracy per epoch, the recipe's options)."""
    return {
        "base_model": result.base,
        "labels": result.labels,
        "train_rows": result.train_size,
        "dev_rows": result.dev_size,
        "held_out": result.held_out,
        "dev_accuracy": result.dev_accuracy,
        "epochs": result.epochs,
        "seconds": round(result.seconds, 1),
        "options": asdict(result.options),
        "recipe": "Devlin et al. 2019 / Sun et al. 2019: AdamW, linear warmup (10%) and decay, clip 1.0",
    }
