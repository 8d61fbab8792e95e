"""Linear heads fitted on frozen pooled embeddings, so any encoder gets a classification target.

A multinomial logistic regression (scikit-learn) on the L2-normalised mean-pooled last hidden state (the
sentence embedding of Sentence-BERT models such as the embedded one). Accuracy is always measured on data the
head was not fitted on: a given dev file, or a stratified 20 % held-out split.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from app.errors import InvalidInput
from app.ids import new_id
from app.modeling.loading import LoadedModel
from app.modeling.targets import mean_pool

Progress = Callable[[int, int], None]


@dataclass
class FittedHead:
    """Softmax-regression weights over pooled embeddings: logits = W e + b, W [label, hidden]."""

    name: str
    model_name: str
    model_revision: str
    labels: list[str]
    weight: np.ndarray
    bias: np.ndarray
    metrics: dict
    params: dict
    id: str = field(default_factory=new_id)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "labels": self.labels,
            "metrics": self.metrics,
            "params": self.params,
            "model_revision": self.model_revision,
            "created_at": self.created_at.isoformat(),
        }


@torch.no_grad()
def text_batch(loaded: LoadedModel, texts: list[str], max_tokens: int) -> Any:
    """Padded model inputs of ``texts`` on the model's device (cut at ``max_tokens``; token types only for
    models that take them)."""
    batch = loaded.tokenizer(
        texts, padding=True, truncation=True, max_length=max_tokens, return_tensors="pt"
    ).to(loaded.device)
    if not loaded.uses_token_types:
        batch.pop("token_type_ids", None)
    return batch


def pooled_embeddings(
    loaded: LoadedModel,
    texts: list[str],
    batch_size: int = 32,
    progress: Progress | None = None,
    max_tokens: int = 512,
) -> np.ndarray:
    """L2-normalised mean-pooled embeddings [text, hidden] (inputs longer than ``max_tokens`` are cut)."""
    chunks = []
    for start in range(0, len(texts), batch_size):
        batch = text_batch(loaded, texts[start : start + batch_size], max_tokens)
        hidden = loaded.adapter.encoder(loaded.model)(**batch).last_hidden_state
        pooled = torch.nn.functional.normalize(mean_pool(hidden, batch["attention_mask"]).float(), dim=-1)
        chunks.append(pooled.cpu().numpy())
        if progress is not None:
            progress(min(start + batch_size, len(texts)), len(texts))
    return np.concatenate(chunks)


def _softmax_weights(model: LogisticRegression) -> tuple[np.ndarray, np.ndarray]:
    """Per-class logits; a binary model's single score becomes two symmetric logits (same probabilities)."""
    if model.coef_.shape[0] == 1:
        coef, intercept = model.coef_[0], model.intercept_[0]
        return np.stack([-coef / 2, coef / 2]), np.array([-intercept / 2, intercept / 2])
    return model.coef_, model.intercept_


def fit_head(
    loaded: LoadedModel,
    texts: list[str],
    labels: list[str],
    *,
    name: str,
    params: dict,
    dev: tuple[list[str], list[str]] | None = None,
    regularisation: float = 10.0,
    seed: int = 0,
    progress: Progress | None = None,
) -> FittedHead:
    """Fit on ``texts`` (and report accuracy on ``dev``, or on a 20 % split held out of ``texts``)."""
    classes = sorted(set(labels))
    if len(classes) < 2:
        raise InvalidInput("A head needs at least two different labels in the data.")
    total = len(texts) + (len(dev[0]) if dev else 0)
    embeddings = pooled_embeddings(
        loaded, texts, progress=(lambda done, _: progress(done, total)) if progress else None
    )
    if dev is None:
        train_x, test_x, train_y, test_y = train_test_split(
            embeddings, labels, test_size=0.2, random_state=seed, stratify=labels
        )
        held_out = "20% of the data, stratified"
    else:
        offset = len(texts)
        test_x = pooled_embeddings(
            loaded, dev[0], progress=(lambda done, _: progress(offset + done, total)) if progress else None
        )
        train_x, train_y, test_y = embeddings, labels, dev[1]
        held_out = "the dev file"
    model = LogisticRegression(C=regularisation, max_iter=5000)
    model.fit(train_x, train_y)
    weight, bias = _softmax_weights(model)
    metrics = {
        "train_accuracy": float(model.score(train_x, train_y)),
        "held_out_accuracy": float(model.score(test_x, test_y)),
        "held_out": held_out,
        "train_size": len(train_y),
        "held_out_size": len(test_y),
    }
    return FittedHead(
        name=name,
        model_name=loaded.name,
        model_revision=loaded.revision,
        labels=[str(c) for c in model.classes_],
        weight=weight.astype(np.float32),
        bias=bias.astype(np.float32),
        metrics=metrics,
        params=params,
    )
