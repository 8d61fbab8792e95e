"""Gradient-based token attribution through Captum, on the word embeddings.

* ``integrated_gradients``: Sundararajan, Taly & Yan, "Axiomatic Attribution for Deep Networks", ICML 2017,
  https://arxiv.org/abs/1703.01365 — path integral from a baseline input (non-special tokens replaced by
  [PAD] by default) to the input; token score = attribution summed over the embedding; the completeness
  error (convergence delta) is reported.
* ``gradient_x_input``: Shrikumar et al., "Not Just a Black Box", 2016, https://arxiv.org/abs/1605.01713 —
  gradient times embedding, summed over the embedding.
* ``saliency``: Simonyan, Vedaldi & Zisserman, "Deep Inside Convolutional Networks", ICLR 2014 workshop,
  https://arxiv.org/abs/1312.6034 — L2 norm of the gradient per token (unsigned).
Output: ``scores`` [token].
"""

from __future__ import annotations

from typing import ClassVar

import torch
from captum.attr import InputXGradient, IntegratedGradients, Saliency
from pydantic import BaseModel, ConfigDict, Field

from app.methods.attribution.common import (
    AttributionMethod,
    Baseline,
    baseline_ids,
    embedding_forward,
    word_embeddings,
    yielding,
)
from app.modeling.encoding import Encoded
from app.modeling.loading import LoadedModel
from app.modeling.targets import BoundTarget


class IntegratedGradientsParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    steps: int = Field(50, ge=2, le=1000, description="Riemann/Gauss-Legendre steps along the path.")
    baseline: Baseline = Field("pad", description="Token replacing every non-special token in the baseline.")
    internal_batch_size: int = Field(16, ge=1, le=512, description="Path points evaluated per forward pass.")


class IntegratedGradientsMethod(AttributionMethod):
    """Integrated Gradients on the word embeddings (Captum), with the completeness delta."""

    name: ClassVar[str] = "integrated_gradients"
    title: ClassVar[str] = "Integrated Gradients"
    citation: ClassVar[str] = "Sundararajan, Taly & Yan, ICML 2017"
    summary: ClassVar[str] = (
        "Each token's contribution to the prediction, accumulated along a path from a blank input to "
        "the sentence."
    )
    Params: ClassVar[type[BaseModel]] = IntegratedGradientsParams

    def passes(self, params: IntegratedGradientsParams, tokens: int, layers: int) -> float:
        """A forward and a backward pass (about two) per path point."""
        return 2.0 * params.steps + 1.0

    def attribute(
        self, loaded: LoadedModel, encoded: Encoded, params: IntegratedGradientsParams, target: BoundTarget
    ) -> tuple[torch.Tensor, dict]:
        inputs = word_embeddings(loaded, encoded.input_ids).detach()
        baseline = word_embeddings(loaded, baseline_ids(loaded, encoded, params.baseline)).detach()
        with torch.enable_grad():
            attributions, delta = IntegratedGradients(yielding(embedding_forward(encoded, target))).attribute(
                inputs,
                baselines=baseline,
                n_steps=params.steps,
                internal_batch_size=params.internal_batch_size,
                return_convergence_delta=True,
            )
        return attributions[0].sum(dim=-1), {"convergence_delta": float(delta.abs().max())}


class GradientXInput(AttributionMethod):
    """Gradient times input on the word embeddings (Captum)."""

    name: ClassVar[str] = "gradient_x_input"
    title: ClassVar[str] = "Gradient × input"
    citation: ClassVar[str] = "Shrikumar, Greenside, Shcherbina & Kundaje, 2016"
    summary: ClassVar[str] = (
        "Each token's contribution to the prediction to first order: the gradient times the token's "
        "embedding."
    )

    def passes(self, params: BaseModel, tokens: int, layers: int) -> float:
        """One forward and one backward pass."""
        return 3.0

    def attribute(
        self, loaded: LoadedModel, encoded: Encoded, params: BaseModel, target: BoundTarget
    ) -> tuple[torch.Tensor, dict]:
        inputs = word_embeddings(loaded, encoded.input_ids).detach().requires_grad_(True)
        with torch.enable_grad():
            attributions = InputXGradient(embedding_forward(encoded, target)).attribute(inputs)
        return attributions[0].sum(dim=-1), {}


class SaliencyMethod(AttributionMethod):
    """Gradient magnitude per token (Captum Saliency, L2 norm over the embedding)."""

    name: ClassVar[str] = "saliency"
    title: ClassVar[str] = "Saliency (gradient norm)"
    citation: ClassVar[str] = "Simonyan, Vedaldi & Zisserman, ICLR 2014 workshop"
    summary: ClassVar[str] = (
        "How sensitive the prediction is to each token: the size of the gradient on its embedding."
    )
    signed: ClassVar[bool] = False

    def passes(self, params: BaseModel, tokens: int, layers: int) -> float:
        """One forward and one backward pass."""
        return 3.0

    def attribute(
        self, loaded: LoadedModel, encoded: Encoded, params: BaseModel, target: BoundTarget
    ) -> tuple[torch.Tensor, dict]:
        inputs = word_embeddings(loaded, encoded.input_ids).detach().requires_grad_(True)
        with torch.enable_grad():
            gradients = Saliency(embedding_forward(encoded, target)).attribute(inputs, abs=False)
        return torch.linalg.vector_norm(gradients[0], dim=-1), {}
