"""Shared pieces of token attribution: the result type, the forward functions Captum differentiates."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict

from app.errors import TargetNotAvailable
from app.methods.base import AnalysisMethod, Kind, Requirement, Result, as_numpy
from app.methods.callbacks import between_batches
from app.modeling.encoding import Encoded
from app.modeling.loading import LoadedModel
from app.modeling.targets import BoundTarget

Baseline = Literal["pad", "mask", "unk"]


@dataclass
class AttributionResult(Result):
    """Per-token scores for one target; ``signed`` says whether negative scores mean "against"."""

    scores: np.ndarray  # [token]
    signed: bool
    prediction: dict  # label explained, its score and probability, predicted label
    layers: np.ndarray | None = None  # [layer, token], e.g. the IBA sweep over bottleneck positions
    convergence_delta: float | None = None  # Integrated Gradients: completeness error
    # methods that decompose every class score (DecompX): one signed row per class, the part no token carries
    # (bias_scores), the largest |sum of the parts - the real score| and method-specific per-layer checks
    class_scores: np.ndarray | None = None  # [class, token]
    class_labels: list[str] | None = None  # [class]
    bias_scores: np.ndarray | None = None  # [class]
    decomposition_error: float | None = None
    checks: dict | None = None
    # AttnLRP: score, relevance_sum, relative_error |f - sum R| / |f|, absorbed_bias, absorbed_embeddings,
    # absorbed_softmax, rounding (see app/methods/attribution/attnlrp.py)
    conservation: dict[str, float] | None = None
    computed_with: str | None = None  # one line on how the scores were obtained, shown with the figure


class AttributionParams(BaseModel):
    """Parameters shared by attribution methods (none by default)."""

    model_config = ConfigDict(extra="forbid")


class AttributionMethod(AnalysisMethod):
    """Base: kind, target requirement and result type of every attribution method."""

    kind: ClassVar[Kind] = "attribution"
    version: ClassVar[int] = 1
    requires: ClassVar[Requirement] = "target"
    Params: ClassVar[type[BaseModel]] = AttributionParams
    result_type: ClassVar[type[Result]] = AttributionResult
    signed: ClassVar[bool] = True

    def attribute(
        self, loaded: LoadedModel, encoded: Encoded, params: BaseModel, target: BoundTarget
    ) -> tuple[torch.Tensor, dict]:
        """Token scores [token] and extra result fields."""
        raise NotImplementedError

    def run(
        self, loaded: LoadedModel, encoded: Encoded, params: BaseModel, target: BoundTarget | None
    ) -> AttributionResult:
        if target is None:
            raise TargetNotAvailable("Attribution needs a target (what prediction to explain).")
        scores, extra = self.attribute(loaded, encoded, params, target)
        prediction = target.prediction(**encoded.model_inputs())
        extra = {
            key: as_numpy(value) if isinstance(value, torch.Tensor) else value for key, value in extra.items()
        }
        return AttributionResult(scores=as_numpy(scores), signed=self.signed, prediction=prediction, **extra)


def baseline_ids(loaded: LoadedModel, encoded: Encoded, baseline: Baseline) -> torch.Tensor:
    """Input ids with every non-special token replaced by [PAD]/[MASK]/[UNK]; specials kept. [1, token]."""
    tokenizer = loaded.tokenizer
    token_id = {
        "pad": tokenizer.pad_token_id,
        "mask": tokenizer.mask_token_id,
        "unk": tokenizer.unk_token_id,
    }[baseline]
    if token_id is None:
        raise TargetNotAvailable(f"This tokenizer has no {baseline} token; choose another baseline.")
    special = torch.tensor(encoded.special_mask, device=encoded.input_ids.device)
    return torch.where(special, encoded.input_ids[0], torch.full_like(encoded.input_ids[0], token_id))[None]


def _expand(inputs: dict[str, torch.Tensor], batch: int) -> dict[str, torch.Tensor]:
    return {name: tensor.expand(batch, *tensor.shape[1:]) for name, tensor in inputs.items()}


ScoreFunction = Callable[[torch.Tensor], torch.Tensor]


def embedding_forward(encoded: Encoded, target: BoundTarget) -> ScoreFunction:
    """f(inputs_embeds [batch, token, hidden]) -> explained score [batch], for gradient methods."""
    context = {name: t for name, t in encoded.model_inputs().items() if name != "input_ids"}

    def forward(inputs_embeds: torch.Tensor) -> torch.Tensor:
        inputs = {**_expand(context, inputs_embeds.shape[0]), "inputs_embeds": inputs_embeds}
        return target.scores(**inputs)[:, target.index]

    return forward


def ids_forward(encoded: Encoded, target: BoundTarget) -> ScoreFunction:
    """f(input_ids [batch, token]) -> explained score [batch], for perturbation methods (no gradients)."""
    context = {name: t for name, t in encoded.model_inputs().items() if name != "input_ids"}

    @torch.no_grad()
    def forward(input_ids: torch.Tensor) -> torch.Tensor:
        inputs = {**_expand(context, input_ids.shape[0]), "input_ids": input_ids}
        return target.scores(**inputs)[:, target.index]

    return yielding(forward)


def yielding(forward: ScoreFunction) -> ScoreFunction:
    """``forward`` that lets waiting requests use the model between two of its calls (never before the
    first): for methods whose batches leave no hook on the shared model (``callbacks.between_batches``)."""
    calls = 0

    def between_calls(*args: torch.Tensor, **kwargs: object) -> torch.Tensor:
        nonlocal calls
        if calls:
            between_batches()
        calls += 1
        return forward(*args, **kwargs)

    return between_calls


def word_embeddings(loaded: LoadedModel, input_ids: torch.Tensor) -> torch.Tensor:
    """Token embeddings (before position and segment embeddings): [batch, token, embedding]."""
    return loaded.model.get_input_embeddings()(input_ids)
