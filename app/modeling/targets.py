"""Targets: what a prediction means, so that attribution has a score to explain.

* ``classification``: a logit of the model's sequence-classification head.
* ``masked_token``: the MLM logit of a vocabulary token at a ``[MASK]`` position.
* ``zero_shot``: cosine similarity between the mean-pooled sentence embedding and the embedding of a
  label prompt ("This review is positive."), the natural target of sentence-embedding models such as
  the embedded all-MiniLM-L6-v2 (Reimers & Gurevych, "Sentence-BERT", EMNLP 2019).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Literal, Protocol

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.errors import TargetNotAvailable
from app.modeling.encoding import Encoded
from app.modeling.loading import LoadedModel


class ClassificationTarget(BaseModel):
    """Explain one class logit of the classification head (default: the predicted class)."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["classification"] = "classification"
    label: int | str | None = None


class MaskedTokenTarget(BaseModel):
    """Explain the logit of ``token`` at a [MASK] position (default: the first mask, the top token)."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["masked_token"] = "masked_token"
    token: str | None = None
    position: int | None = None


class ZeroShotTarget(BaseModel):
    """Explain the similarity of the sentence to one label prompt (default: the most similar label)."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["zero_shot"] = "zero_shot"
    labels: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=lambda: ["positive", "negative"], min_length=2, max_length=32
    )
    template: str = Field("This review is {}.", max_length=500)
    label: str | None = None

    @field_validator("labels")
    @classmethod
    def _distinct(cls, labels: list[str]) -> list[str]:
        if len(set(labels)) != len(labels):
            raise ValueError("zero-shot labels must be distinct")
        return labels

    temperature: float = Field(
        0.05, gt=0, le=10, description="Probabilities are softmax(cosine / temperature) over the labels."
    )


class HeadTarget(BaseModel):
    """Explain one class of a head fitted with ``bertscope heads fit`` (by id or name)."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["head"] = "head"
    head: str = Field(min_length=1, max_length=200, description="Fitted head id or name.")
    label: int | str | None = None


AnyTarget = ClassificationTarget | MaskedTokenTarget | ZeroShotTarget | HeadTarget
TargetSpec = Annotated[AnyTarget, Field(discriminator="kind")]


class LinearHead(Protocol):
    """What a fitted head provides: labels and logits = weight @ embedding + bias."""

    labels: list[str]
    weight: np.ndarray  # [label, hidden]
    bias: np.ndarray  # [label]


HeadLookup = Callable[[str], LinearHead]


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mask-aware mean over tokens: [batch, token, hidden] -> [batch, hidden]."""
    weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp_min(1e-9)


@dataclass
class BoundTarget:
    """A target resolved against one model and input: class scores plus the index being explained."""

    spec: AnyTarget
    loaded: LoadedModel
    labels: list[str]
    index: int
    position: int | None = None
    label_embeddings: torch.Tensor | None = None  # [label, hidden], unit norm (zero-shot only)
    head_weight: torch.Tensor | None = None  # [label, hidden] (fitted heads only)
    head_bias: torch.Tensor | None = None  # [label]

    def scores(self, **inputs: torch.Tensor) -> torch.Tensor:
        """Scores for every label, [batch, label]; accepts ``input_ids`` or ``inputs_embeds``."""
        model = self.loaded.model
        if self.spec.kind == "classification":
            return model(**inputs).logits
        if self.spec.kind == "masked_token":
            return model(**inputs).logits[:, self.position, :]
        hidden = self.loaded.adapter.encoder(model)(**inputs).last_hidden_state
        pooled = torch.nn.functional.normalize(mean_pool(hidden, inputs["attention_mask"]), dim=-1)
        if self.spec.kind == "head":
            return pooled @ self.head_weight.T + self.head_bias
        return pooled @ self.label_embeddings.T

    def logits(self, **inputs: torch.Tensor) -> torch.Tensor:
        """Scores as softmax logits, [batch, label]: zero-shot cosines are divided by the temperature."""
        scores = self.scores(**inputs)
        return scores / self.spec.temperature if isinstance(self.spec, ZeroShotTarget) else scores

    def describe(self) -> dict:
        return {
            "kind": self.spec.kind,
            "label": self.labels[self.index],
            "index": self.index,
            "position": self.position,
        }

    @torch.no_grad()
    def prediction(self, **inputs: torch.Tensor) -> dict:
        """The explained label's score and probability, and the predicted label, for one input."""
        scores = self.scores(**inputs)[0]
        logits = scores / self.spec.temperature if isinstance(self.spec, ZeroShotTarget) else scores
        probabilities = torch.softmax(logits.double(), dim=-1)
        predicted = int(probabilities.argmax())
        return {
            **self.describe(),
            "score": float(scores[self.index]),
            "probability": float(probabilities[self.index]),
            "predicted": self.labels[predicted],
            "predicted_probability": float(probabilities[predicted]),
        }


def available_targets(loaded: LoadedModel) -> list[dict]:
    """What /api/model advertises: every target kind this model supports, with its defaults."""
    targets = []
    if loaded.head == "classification":
        targets.append({"kind": "classification", "labels": loaded.label_names})
    if loaded.head == "masked_lm":
        targets.append({"kind": "masked_token", "mask_token": loaded.tokenizer.mask_token})
    targets.append(ZeroShotTarget().model_dump())
    return targets


def _label_index(labels: list[str], wanted: int | str | None, fallback: int) -> int:
    if wanted is None:
        return fallback
    if isinstance(wanted, int) and 0 <= wanted < len(labels):
        return wanted
    if isinstance(wanted, str) and wanted in labels:
        return labels.index(wanted)
    raise TargetNotAvailable(f"Label {wanted!r} is not one of the labels: {', '.join(labels)}.")


@torch.no_grad()
def _zero_shot_embeddings(loaded: LoadedModel, spec: ZeroShotTarget) -> torch.Tensor:
    if "{}" not in spec.template:
        raise TargetNotAvailable("The zero-shot template must contain '{}' where the label goes.")
    prompts = [spec.template.replace("{}", label) for label in spec.labels]
    batch = loaded.tokenizer(prompts, padding=True, return_tensors="pt").to(loaded.device)
    if not loaded.uses_token_types:
        batch.pop("token_type_ids", None)
    hidden = loaded.adapter.encoder(loaded.model)(**batch).last_hidden_state
    return torch.nn.functional.normalize(mean_pool(hidden, batch["attention_mask"]), dim=-1)


def default_target(loaded: LoadedModel) -> AnyTarget:
    """The model's natural target: its classification or MLM head, else zero-shot sentiment."""
    if loaded.head == "classification":
        return ClassificationTarget()
    return MaskedTokenTarget() if loaded.head == "masked_lm" else ZeroShotTarget()


@torch.no_grad()
def bind_target(
    loaded: LoadedModel, spec: AnyTarget | None, encoded: Encoded, heads: HeadLookup | None = None
) -> BoundTarget:
    """Resolve ``spec`` (None = the model's natural default) for this input; ``heads`` finds fitted heads."""
    spec = spec or default_target(loaded)
    inputs = encoded.model_inputs()
    if isinstance(spec, ClassificationTarget):
        if loaded.head != "classification":
            raise TargetNotAvailable("This model has no classification head; use a zero_shot target.")
        bound = BoundTarget(spec, loaded, loaded.label_names, 0)
    elif isinstance(spec, MaskedTokenTarget):
        bound = _bind_masked(loaded, spec, encoded)
    elif isinstance(spec, HeadTarget):
        bound = _bind_head(loaded, spec, heads)
    else:
        bound = BoundTarget(
            spec, loaded, list(spec.labels), 0, label_embeddings=_zero_shot_embeddings(loaded, spec)
        )
    scores = bound.scores(**inputs)[0]
    wanted = spec.token if isinstance(spec, MaskedTokenTarget) else spec.label
    if isinstance(spec, MaskedTokenTarget) and wanted is not None:
        bound.index = _token_id(loaded, wanted)
    else:
        bound.index = _label_index(bound.labels, wanted, int(scores.argmax()))
    return bound


def _bind_head(loaded: LoadedModel, spec: HeadTarget, heads: HeadLookup | None) -> BoundTarget:
    if heads is None:
        raise TargetNotAvailable("Fitted heads are not available here.")
    head = heads(spec.head)
    dtype = next(loaded.model.parameters()).dtype
    weight = torch.as_tensor(head.weight, dtype=dtype, device=loaded.device)
    bias = torch.as_tensor(head.bias, dtype=dtype, device=loaded.device)
    return BoundTarget(spec, loaded, list(head.labels), 0, head_weight=weight, head_bias=bias)


def _token_id(loaded: LoadedModel, token: str) -> int:
    token_id = loaded.tokenizer.convert_tokens_to_ids(token)
    if token_id is None or token_id == loaded.tokenizer.unk_token_id:
        raise TargetNotAvailable(f"Token {token!r} is not in the vocabulary; give a single vocabulary token.")
    return int(token_id)


def _bind_masked(loaded: LoadedModel, spec: MaskedTokenTarget, encoded: Encoded) -> BoundTarget:
    if loaded.head != "masked_lm":
        raise TargetNotAvailable("This model has no masked-language-model head; use a zero_shot target.")
    mask_id = loaded.tokenizer.mask_token_id
    positions = [i for i, token_id in enumerate(encoded.input_ids[0].tolist()) if token_id == mask_id]
    position = spec.position if spec.position is not None else (positions[0] if positions else None)
    if position is None or not 0 <= position < encoded.length:
        raise TargetNotAvailable(
            f"A masked_token target needs a {loaded.tokenizer.mask_token} token in the text "
            "(or a valid 'position')."
        )
    vocab = loaded.tokenizer.convert_ids_to_tokens(list(range(len(loaded.tokenizer))))
    return BoundTarget(spec, loaded, vocab, 0, position=position)
