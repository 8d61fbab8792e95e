"""Perturbation-based token attribution through Captum: tokens are replaced, the model re-run.

* ``lime``: Ribeiro, Singh & Guestrin, "Why Should I Trust You?", KDD 2016, https://arxiv.org/abs/1602.04938 —
  random subsets of the non-special tokens are replaced by a baseline token ([PAD] by default), a weighted
  linear model (ridge, exponential kernel on the cosine distance of the on/off pattern, as the LIME text
  explainer does) is fitted to the explained score; token score = its coefficient.
* ``occlusion``: Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks", ECCV 2014,
  https://arxiv.org/abs/1311.2901, applied to tokens — leave one token out (replaced by the baseline token);
  token score = drop of the explained score.
Special tokens are never perturbed and score 0. Output: ``scores`` [token].
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import torch
from captum._utils.models.linear_model import SkLearnRidge
from captum.attr import FeatureAblation, Lime
from captum.attr._core.lime import get_exp_kernel_similarity_function
from pydantic import BaseModel, ConfigDict, Field

from app.methods.attribution.common import AttributionMethod, Baseline, baseline_ids, ids_forward
from app.modeling.encoding import Encoded
from app.modeling.loading import LoadedModel
from app.modeling.targets import BoundTarget


def token_features(encoded: Encoded) -> torch.Tensor:
    """Feature mask [1, token]: each non-special token its own feature; specials share feature 0, fixed."""
    features, index = [], 1
    for special in encoded.special_mask:
        features.append(0 if special else index)
        index += 0 if special else 1
    return torch.tensor([features], device=encoded.input_ids.device)


class LimeParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    samples: int = Field(
        1000, ge=10, le=20_000, description="Perturbed inputs the linear model is fitted on."
    )
    baseline: Baseline = "pad"
    batch_size: int = Field(64, ge=1, le=1024, description="Perturbed inputs per forward pass.")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="Seed of the random perturbations.")


class LimeMethod(AttributionMethod):
    """LIME over tokens (Captum), ridge surrogate with LIME's text kernel."""

    name: ClassVar[str] = "lime"
    title: ClassVar[str] = "LIME"
    citation: ClassVar[str] = "Ribeiro, Singh & Guestrin, KDD 2016"
    summary: ClassVar[str] = (
        "Token weights of a linear model fitted to the predictions for copies of the sentence with "
        "random tokens blanked out."
    )
    Params: ClassVar[type[BaseModel]] = LimeParams

    def passes(self, params: LimeParams, tokens: int, layers: int) -> float:
        """One pass per perturbed input, and the unperturbed one."""
        return params.samples + 1.0

    def attribute(
        self, loaded: LoadedModel, encoded: Encoded, params: LimeParams, target: BoundTarget
    ) -> tuple[torch.Tensor, dict]:
        features = token_features(encoded)
        # LIME's text explainer: kernel width 25 on cosine distance x 100, i.e. width 0.25 on the distance
        similarity = get_exp_kernel_similarity_function("cosine", kernel_width=0.25)
        lime = Lime(
            ids_forward(encoded, target),
            interpretable_model=SkLearnRidge(alpha=1.0),
            similarity_func=_on_off_similarity(similarity),
        )
        torch.manual_seed(params.seed)
        scores = lime.attribute(
            encoded.input_ids,
            baselines=baseline_ids(loaded, encoded, params.baseline),
            feature_mask=features,
            n_samples=params.samples,
            perturbations_per_eval=params.batch_size,
        )[0].double()
        scores[features[0] == 0] = 0.0
        return scores, {}


def _on_off_similarity(kernel: Callable[..., float]) -> Callable[..., float]:
    """Measure distance on the binary on/off pattern of the features (as LIME does), not on token ids."""

    def similarity(
        _original: torch.Tensor, _perturbed: torch.Tensor, interpretable: torch.Tensor, **kwargs: object
    ) -> float:
        return kernel(
            torch.ones_like(interpretable, dtype=torch.float), interpretable.float(), None, **kwargs
        )

    return similarity


class OcclusionParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    baseline: Baseline = "pad"
    batch_size: int = Field(64, ge=1, le=1024, description="Occluded inputs per forward pass.")


class OcclusionMethod(AttributionMethod):
    """Leave-one-token-out (Captum FeatureAblation): score drop when a token is replaced by the baseline."""

    name: ClassVar[str] = "occlusion"
    title: ClassVar[str] = "Occlusion (leave one token out)"
    citation: ClassVar[str] = "Zeiler & Fergus, ECCV 2014"
    summary: ClassVar[str] = (
        "How much the prediction changes when each token, one at a time, is replaced by a blank."
    )
    Params: ClassVar[type[BaseModel]] = OcclusionParams

    def passes(self, params: OcclusionParams, tokens: int, layers: int) -> float:
        """One pass per occluded token, and the unperturbed one."""
        return tokens + 1.0

    def attribute(
        self, loaded: LoadedModel, encoded: Encoded, params: OcclusionParams, target: BoundTarget
    ) -> tuple[torch.Tensor, dict]:
        features = token_features(encoded)
        scores = (
            FeatureAblation(ids_forward(encoded, target))
            .attribute(
                encoded.input_ids,
                baselines=baseline_ids(loaded, encoded, params.baseline),
                feature_mask=features,
                perturbations_per_eval=params.batch_size,
            )[0]
            .double()
        )
        scores[features[0] == 0] = 0.0
        return scores, {}
