"""AttnLRP: attention-aware Layer-wise Relevance Propagation, as a modified-gradient x input pass.

Achtibat, Hatefi, Dreyer, Jain, Wiegand, Lapuschkin & Samek, "AttnLRP: Attention-Aware Layer-Wise Relevance
Propagation for Transformers", ICML 2024, https://arxiv.org/abs/2402.05602. Implemented in the paper's
"efficient" form (its Section 3.4 and the authors' ``lxt.efficient``): one forward pass whose backward pass
is modified so that relevance R = gradient x activation at every tensor. The rules, op by op:

* linear layers (and the fitted head): plain gradient, the epsilon rule in the limit epsilon -> 0 (no
  division is formed, so no stabiliser is needed);
* LayerNorm: identity rule for the normalisation, the standard deviation treated as a constant (the mean
  is subtracted linearly); the L2 normalisation of a sentence embedding (zero-shot and fitted-head targets)
  the same way, its norm a constant;
* element-wise activations (GELU in the FFN, tanh in BERT's pooler and RoBERTa's head, GELU/ReLU in other
  heads): identity rule (Eq. 9), output = x * detach(act(x) / x), i.e. R_in = R_out;
* softmax: the paper's rule R_i = x_i (R_i^out - s_i sum_j R_j^out), which is the plain gradient x input;
* matrix products of two input-dependent tensors (q k^T and A v): uniform rule (Eq. 7), each factor gets
  half the relevance (its gradient halved).

Relevance is read at the word embeddings (``inputs_embeds``), summed over the embedding dimension: signed
token scores. The rules are applied through a thread-local ``TorchFunctionMode`` while this method's own
forward pass runs; no module, class or function of the shared model is patched, so other methods and other
threads never see them. An op without a rule (a product of two input-dependent tensors other than a matrix
product, or an unhandled non-linearity) stops the method with an error rather than giving unsound scores.

Conservation. The explained score f(x) splits exactly into
  f(x) = sum_t R_t + bias + embeddings + softmax + rounding,
where ``bias`` is the relevance absorbed by the biases (linear layers, LayerNorm beta, the fitted head's
bias), ``embeddings`` the relevance of the position and segment embeddings (inputs, but not tokens), and
``softmax`` what the softmax rule does not pass on (its Taylor bias term: sum of R at the softmax output minus
sum of R at its input). All three are measured in the same backward pass. The result's ``conservation``
reports f, sum_t R_t, the relative conservation error |f - sum_t R_t| / |f| and the absorbed parts; with
zero biases, no position/segment embeddings and no attention mixing, sum_t R_t = f to float rounding.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from pydantic import BaseModel
from torch.overrides import TorchFunctionMode

from app.errors import TargetNotAvailable
from app.methods.attribution.common import AttributionMethod, embedding_forward, word_embeddings
from app.modeling.encoding import Encoded
from app.modeling.loading import LoadedModel
from app.modeling.targets import BoundTarget


class _ScaleGradient(torch.autograd.Function):
    """Identity forward; the gradient multiplied by ``factor`` (the uniform rule's share)."""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor, factor: float) -> torch.Tensor:
        ctx.factor = factor
        return tensor.view_as(tensor)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad * ctx.factor, None


def scale_gradient(tensor: torch.Tensor, factor: float) -> torch.Tensor:
    return _ScaleGradient.apply(tensor, factor)


def identity_rule(inputs: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
    """Element-wise activation with R_in = R_out: gradient act(x)/x; value exactly ``output``."""
    ratio = torch.where(inputs == 0, torch.zeros_like(output), output / inputs).detach()
    return output.detach() + (inputs - inputs.detach()) * ratio


def with_gradient_of(output: torch.Tensor, surrogate: torch.Tensor) -> torch.Tensor:
    """``output``'s value (exactly) with ``surrogate``'s gradient."""
    return output.detach() + (surrogate - surrogate.detach())


def layer_norm_rule(
    x: torch.Tensor, shape: Any, weight: torch.Tensor | None, bias: torch.Tensor | None, eps: float
) -> torch.Tensor:
    """LayerNorm with the standard deviation a constant (identity rule for normalisation); the bias is in
    the value, its relevance is read by the caller."""
    dims = tuple(range(-len(shape), 0))
    centred = x - x.mean(dim=dims, keepdim=True)
    std = torch.sqrt(centred.pow(2).mean(dim=dims, keepdim=True) + eps).detach()
    surrogate = centred / std * (weight if weight is not None else 1.0)
    return with_gradient_of(F.layer_norm(x, shape, weight, bias, eps), surrogate)


def normalize_rule(x: torch.Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12) -> torch.Tensor:
    """L2 normalisation with the norm a constant (as LayerNorm's standard deviation)."""
    norm = torch.linalg.vector_norm(x, ord=p, dim=dim, keepdim=True).clamp_min(eps).detach()
    return with_gradient_of(F.normalize(x, p=p, dim=dim, eps=eps), x / norm)


class _SoftmaxLedger(torch.autograd.Function):
    """Softmax with its own gradient (the paper's softmax rule); records the relevance it absorbs."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, dim: int, absorbed: list) -> torch.Tensor:
        s = torch.softmax(x, dim=dim)
        ctx.save_for_backward(x, s)
        ctx.dim, ctx.absorbed = dim, absorbed
        return s

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        x, s = ctx.saved_tensors
        grad_x = s * (grad - (grad * s).sum(ctx.dim, keepdim=True))
        # masked keys: s == 0 and x may be very negative, their relevance is 0 (not 0 * -inf)
        relevance_in = torch.where(s > 0, grad_x * x, torch.zeros_like(x)).sum()
        ctx.absorbed.append((grad * s).sum() - relevance_in)
        return grad_x, None, None


_LINEAR = {F.linear}
_LAYER_NORM = {F.layer_norm}
_NORMALIZE = {F.normalize}
_EMBEDDING = {F.embedding}
_SOFTMAX = {F.softmax, torch.softmax, torch.Tensor.softmax}
_MATMUL = {torch.matmul, torch.Tensor.matmul, torch.Tensor.__matmul__, torch.bmm, torch.Tensor.bmm}
_ACTIVATIONS = {F.gelu, torch.tanh, torch.Tensor.tanh, F.relu, torch.relu, torch.Tensor.relu}
_PRODUCTS = {torch.mul, torch.Tensor.mul, torch.Tensor.__mul__, torch.Tensor.__rmul__, torch.div}
_PRODUCTS |= {torch.Tensor.div, torch.Tensor.__truediv__, torch.Tensor.__rtruediv__}
_NO_RULE = {torch.exp, torch.Tensor.exp, torch.log, torch.Tensor.log, torch.pow, torch.Tensor.pow}
_NO_RULE |= {torch.Tensor.__pow__, torch.sqrt, torch.Tensor.sqrt, torch.rsqrt, torch.Tensor.rsqrt}
_NO_RULE |= {torch.erf, torch.Tensor.erf, torch.sigmoid, torch.Tensor.sigmoid, F.silu, F.softplus}
_NO_RULE |= {F.scaled_dot_product_attention}  # fused: no place for the softmax and product rules


def _grad(value: Any) -> bool:
    return isinstance(value, torch.Tensor) and value.requires_grad


class AttnLrpRules(TorchFunctionMode):
    """The AttnLRP rules for every op of a forward pass run inside this mode (this thread only).

    ``leaves`` collects (kind, leaf, value) for constants whose absorbed relevance is gradient x value
    (biases, position/segment embeddings); ``softmax_absorbed`` is filled during the backward pass.
    """

    def __init__(self) -> None:
        super().__init__()
        self.leaves: list[tuple[str, torch.Tensor, torch.Tensor]] = []
        self.softmax_absorbed: list[torch.Tensor] = []

    def _bias_leaf(self, output: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        """Adds exactly zero, so that the gradient reaching ``bias`` can be read off a leaf."""
        if bias is None or not output.requires_grad:
            return output
        leaf = bias.detach().clone().requires_grad_(True)
        self.leaves.append(("bias", leaf, bias.detach()))
        return output + (leaf - leaf.detach())

    def __torch_function__(self, func: Callable, types: Any, args: tuple = (), kwargs: dict | None = None):
        kwargs = kwargs or {}
        if func in _LINEAR:
            bias = args[2] if len(args) > 2 else kwargs.get("bias")
            return self._bias_leaf(func(*args, **kwargs), bias)
        if func in _LAYER_NORM and _grad(args[0]):
            x, shape, weight, bias, eps = _layer_norm_args(args, kwargs)
            return self._bias_leaf(layer_norm_rule(x, shape, weight, bias, eps), bias)
        if func in _NORMALIZE and _grad(args[0]):
            values = dict(zip(("input", "p", "dim", "eps"), args, strict=False)) | kwargs
            return normalize_rule(
                values["input"], values.get("p", 2.0), values.get("dim", 1), values.get("eps", 1e-12)
            )
        if func in _EMBEDDING:
            output = func(*args, **kwargs)
            leaf = output.detach().clone().requires_grad_(True)
            self.leaves.append(("embeddings", leaf, output.detach()))
            return leaf
        if func in _SOFTMAX and _grad(args[0]):
            return self._softmax(func, args, kwargs)
        if func in _MATMUL and _grad(args[0]) and _grad(args[1]):
            return func(scale_gradient(args[0], 0.5), scale_gradient(args[1], 0.5))
        if func in _ACTIVATIONS and _grad(args[0]):
            return identity_rule(args[0], func(*args, **kwargs))
        if (func in _PRODUCTS and sum(_grad(a) for a in args[:2]) == 2) or (
            func in _NO_RULE and any(_grad(a) for a in args[:2])
        ):
            raise TargetNotAvailable(
                f"AttnLRP has no rule for {getattr(func, '__name__', func)} in this model "
                "(supported: BERT-family encoders with GELU/ReLU FFNs); choose another method."
            )
        return func(*args, **kwargs)

    def _softmax(self, func: Callable, args: tuple, kwargs: dict) -> torch.Tensor:
        x = args[0]
        dim = kwargs.get("dim", args[1] if len(args) > 1 else None)
        # F.softmax's third positional argument is _stacklevel; torch.softmax's and Tensor.softmax's is dtype
        positional = args[2] if len(args) > 2 and func is not F.softmax else None
        dtype = kwargs.get("dtype", positional)
        if dim is None:
            raise TargetNotAvailable("AttnLRP needs softmax with an explicit dim.")
        x = x.to(dtype) if dtype is not None else x
        return _SoftmaxLedger.apply(x, dim, self.softmax_absorbed)


def _layer_norm_args(args: tuple, kwargs: dict) -> tuple:
    names = ("input", "normalized_shape", "weight", "bias", "eps")
    defaults = {"weight": None, "bias": None, "eps": 1e-5}
    values = dict(zip(names, args, strict=False)) | kwargs
    return tuple(values.get(name, defaults.get(name)) for name in names)


def attnlrp_relevance(
    loaded: LoadedModel, encoded: Encoded, target: BoundTarget
) -> tuple[torch.Tensor, dict[str, float]]:
    """Token relevance [token] (word embeddings, summed over the embedding) and the conservation ledger."""
    embeddings = word_embeddings(loaded, encoded.input_ids).detach().requires_grad_(True)
    rules = AttnLrpRules()
    with torch.enable_grad():
        with rules:
            score = embedding_forward(encoded, target)(embeddings)[0]
        leaves = [leaf for _, leaf, _ in rules.leaves]
        grads = torch.autograd.grad(score, [embeddings, *leaves], allow_unused=True)
    relevance = (grads[0] * embeddings).sum(dim=-1)[0].detach()
    absorbed = {"bias": 0.0, "embeddings": 0.0}
    for (kind, _, value), grad in zip(rules.leaves, grads[1:], strict=True):
        if grad is not None:
            absorbed[kind] += float((grad.double() * value.double()).sum())
    if target.head_bias is not None:  # the fitted head adds its bias outside any linear layer
        absorbed["bias"] += float(target.head_bias[target.index])
    absorbed["softmax"] = float(sum(float(part) for part in rules.softmax_absorbed))
    return relevance, _conservation(float(score.detach()), float(relevance.double().sum()), absorbed)


def _conservation(score: float, total: float, absorbed: dict[str, float]) -> dict[str, float]:
    return {
        "score": score,
        "relevance_sum": total,
        "relative_error": abs(score - total) / max(abs(score), 1e-12),
        "absorbed_bias": absorbed["bias"],
        "absorbed_embeddings": absorbed["embeddings"],
        "absorbed_softmax": absorbed["softmax"],
        "rounding": score - total - absorbed["bias"] - absorbed["embeddings"] - absorbed["softmax"],
    }


class AttnLrp(AttributionMethod):
    """AttnLRP (efficient modified-gradient form) on the word embeddings, with its conservation ledger."""

    name: ClassVar[str] = "attnlrp"
    title: ClassVar[str] = "AttnLRP"
    citation: ClassVar[str] = "Achtibat, Hatefi, Dreyer, Jain, Wiegand, Lapuschkin & Samek, ICML 2024"
    summary: ClassVar[str] = (
        "Each token's signed share of the prediction, passed back layer by layer by rules that keep "
        "the total."
    )

    def passes(self, params: BaseModel, tokens: int, layers: int) -> float:
        """One forward and one modified backward pass, with the ledger (about four, measured)."""
        return 4.0

    def attribute(
        self, loaded: LoadedModel, encoded: Encoded, params: BaseModel, target: BoundTarget
    ) -> tuple[torch.Tensor, dict]:
        relevance, conservation = attnlrp_relevance(loaded, encoded, target)
        return relevance, {"conservation": conservation}
