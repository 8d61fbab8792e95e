"""The last step of DecompX: the decomposition of the explained vector through the head to class scores.

* Classification heads (Modarressi et al., ACL 2023, section 3.4, ``include_classifier_w_pooler``): the
  first token's vectors go through the head's dense layers (bias split as in the blocks) and its
  activation, linearised like the FFN with the real slope act(z)/z (the paper's ``tanh_approx_type='ZO'``;
  BERT and RoBERTa use tanh, ELECTRA GELU, DistilBERT ReLU).
* Fitted heads and zero-shot targets (``app.modeling.targets.BoundTarget.scores``): the mask-aware mean over
  tokens of each source's vectors, divided by the real pooled vector's norm (L2 normalisation is a scale
  fixed by the real pass), then the linear map (a fitted head's bias split as above; zero-shot has none).

Every step is linear in the vectors once the real scales are fixed, so per-source class scores plus the
bias part sum to the real scores.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from app.methods.decomposition.shares import BiasMode, bias_shares
from app.methods.decomposition.trace import activation_scale
from app.modeling.loading import LoadedModel

HeadStep = nn.Linear | Callable[[torch.Tensor], torch.Tensor]

# the sequence-classification head of each architecture, applied to the first token's hidden state
# (classes of transformers: BertForSequenceClassification's pooler + classifier, RobertaClassificationHead,
# ElectraClassificationHead, DistilBertForSequenceClassification's pre_classifier + classifier)
_ROBERTA_LIKE = ("classifier.dense", "tanh", "classifier.out_proj")
CLASSIFIER_STEPS: dict[str, tuple[str, ...]] = {
    "bert": ("base_model.pooler.dense", "tanh", "classifier"),
    "roberta": _ROBERTA_LIKE,
    "xlm-roberta": _ROBERTA_LIKE,
    "camembert": _ROBERTA_LIKE,
    "electra": ("classifier.dense", "classifier.activation", "classifier.out_proj"),
    "distilbert": ("pre_classifier", "relu", "classifier"),
}
_FUNCTIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"tanh": torch.tanh, "relu": torch.relu}


def classifier_steps(loaded: LoadedModel) -> list[HeadStep]:
    """The head's dense layers and activations in order, for the model's architecture."""
    model = loaded.model
    names = CLASSIFIER_STEPS[loaded.config.model_type]
    return [_FUNCTIONS[name] if name in _FUNCTIONS else model.get_submodule(name) for name in names]


def through_steps(
    components: torch.Tensor, real: torch.Tensor, steps: list[HeadStep], mode: BiasMode
) -> torch.Tensor:
    """Carry components [source + 1, in] of the real vector ``real`` [in] through ``steps``.

    Returns [source + 1, out].

    The last component is the bias part. Dense layers split their bias among the sources (``mode``);
    activations scale every component by act(z)/z of the real input z.
    """
    for step in steps:
        if isinstance(step, nn.Linear):
            components = components @ step.weight.detach().to(components.dtype).T
            if step.bias is not None:
                bias = step.bias.detach().to(components.dtype)
                components = components + bias_shares((components @ bias)[None], mode)[0][:, None] * bias
        else:
            components = components * activation_scale(real, step(real)).to(components.dtype)
        real = step(real)
    return components


def linear_map(
    components: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, mode: BiasMode
) -> torch.Tensor:
    """scores = W x + b on components [source + 1, hidden] -> [source + 1, label], b split by ``mode``."""
    scores = components @ weight.to(components.dtype).T
    if bias is None:
        return scores
    bias = bias.to(components.dtype)
    return scores + bias_shares((scores @ bias)[None], mode)[0][:, None] * bias


def pooled_components(state: torch.Tensor, real: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Components of normalize(mean_pool(h)): [source + 1, hidden] from state [target, source + 1, hidden].

    ``real`` [target, hidden] is the real last hidden state, ``mask`` [target] the attention mask.
    """
    weights = mask.to(state.dtype)
    pooled = torch.einsum("i,ikd->kd", weights, state) / weights.sum().clamp_min(1e-9)
    real_pooled = (real.to(state.dtype) * weights[:, None]).sum(0) / weights.sum().clamp_min(1e-9)
    return pooled / real_pooled.norm().clamp_min(1e-12)
