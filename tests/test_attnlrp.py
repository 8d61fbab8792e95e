"""AttnLRP: the rules on hand-computable pieces, the conservation ledger on tiny models, no leaked rules."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from app.errors import TargetNotAvailable
from app.methods import METHODS
from app.methods.attribution.attnlrp import AttnLrp, AttnLrpRules, attnlrp_relevance
from app.modeling.encoding import encode
from app.modeling.hooks import leftover_hooks
from app.modeling.targets import (
    ClassificationTarget,
    HeadTarget,
    MaskedTokenTarget,
    ZeroShotTarget,
    bind_target,
)
from tests.tiny import ARCHITECTURES, tiny_loaded

SENTENCE = "a good movie with a bad end ."
ZERO_SHOT = ZeroShotTarget(labels=["good", "bad"])
EPS64 = torch.finfo(torch.float64).eps
EPS32 = torch.finfo(torch.float32).eps
# The ledger f = sum R + absorbed + rounding is an identity in real arithmetic; every term is a chain of
# float64 operations through 2 blocks (about 40 element-wise ops and 4 reductions of at most 37 terms per
# block, plus the embedding, pooling and head: under 256 roundings per term), so |rounding| stays below
# 256 u times the sum of the magnitudes of the terms.
ROUNDINGS = 256


def _relevance_of(output: torch.Tensor, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
    """Gradient x input of ``output`` (a scalar) for each input: the efficient-LRP relevance."""
    grads = torch.autograd.grad(output, inputs)
    return [grad * tensor.detach() for grad, tensor in zip(grads, inputs, strict=True)]


# ---- the rules on hand-computable pieces --------------------------------------------------------------


def test_layer_norm_identity_rule_by_hand():
    """y = (x - mean)/std with std constant: R_x = x * (e_0 - 1/3)/std for the explained output y_0."""
    x = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64, requires_grad=True)
    eps = 1e-5
    bias = torch.tensor([0.5, 0.0, 0.0], dtype=torch.float64)
    with AttnLrpRules() as rules:
        y = F.layer_norm(x, (3,), None, bias, eps)
    (relevance,) = _relevance_of(y[0], [x])
    std = math.sqrt(2 / 3 + eps)
    assert relevance.tolist() == pytest.approx([(2 / 3) / std, (-2 / 3) / std, -1 / std], abs=1e-12)
    # the bias takes its own value: y_0 = sum R_x + b_0
    assert float(relevance.sum()) + 0.5 == pytest.approx(float(y[0].detach()), abs=1e-12)
    assert [kind for kind, _, _ in rules.leaves] == ["bias"]


@pytest.mark.parametrize("activation", [F.gelu, torch.tanh, F.relu])
def test_activation_identity_rule_passes_relevance_unchanged(activation):
    """R_x = R_y element by element (Eq. 9): here R_y = w * act(x) for the score w . act(x)."""
    x = torch.tensor([-1.5, -0.2, 0.0, 0.7, 2.0], dtype=torch.float64, requires_grad=True)
    weight = torch.tensor([0.3, -1.0, 2.0, 0.5, -0.25], dtype=torch.float64)
    with AttnLrpRules():
        y = activation(x)
    (relevance,) = _relevance_of((weight * y).sum(), [x])
    assert relevance.tolist() == pytest.approx((weight * activation(x.detach())).tolist(), abs=1e-15)


def test_softmax_and_matmul_rules_by_hand():
    """O = softmax(q k^T) v for two tokens, one dimension; explain O_0.

    Uniform rule: half of R(O_0) = O_0 to v (R_vj = A_0j v_j / 2), half to A (R_Aj = A_0j v_j / 2);
    softmax rule: R_Sj = S_0j (R_Aj - A_0j sum_k R_Ak); uniform rule again: R_q0 = sum_j R_Sj / 2,
    R_kj = R_Sj / 2. The softmax keeps sum R_A - sum R_S.
    """
    q = torch.tensor([[1.0], [2.0]], dtype=torch.float64, requires_grad=True)
    k = torch.tensor([[0.5], [-1.0]], dtype=torch.float64, requires_grad=True)
    v = torch.tensor([[2.0], [3.0]], dtype=torch.float64, requires_grad=True)
    with AttnLrpRules() as rules:
        out = torch.matmul(torch.softmax(torch.matmul(q, k.T), dim=-1), v)
    r_q, r_k, r_v = _relevance_of(out[0, 0], [q, k, v])

    s = [1.0 * 0.5, 1.0 * -1.0]
    a = [math.exp(si) / (math.exp(s[0]) + math.exp(s[1])) for si in s]
    r_a = [a[j] * [2.0, 3.0][j] / 2 for j in range(2)]
    r_s = [s[j] * (r_a[j] - a[j] * sum(r_a)) for j in range(2)]
    assert r_v[:, 0].tolist() == pytest.approx(r_a, abs=1e-14)
    assert r_q[:, 0].tolist() == pytest.approx([sum(r_s) / 2, 0.0], abs=1e-14)
    assert r_k[:, 0].tolist() == pytest.approx([r_s[0] / 2, r_s[1] / 2], abs=1e-14)
    assert float(sum(rules.softmax_absorbed)) == pytest.approx(sum(r_a) - sum(r_s), abs=1e-14)


def test_matmul_with_a_constant_factor_keeps_the_plain_gradient():
    """Only products of two input-dependent tensors are split; x @ W is a linear map."""
    x = torch.tensor([[1.0, -2.0]], dtype=torch.float64, requires_grad=True)
    w = torch.tensor([[0.5], [1.5]], dtype=torch.float64)
    with AttnLrpRules():
        y = x @ w
    (relevance,) = _relevance_of(y[0, 0], [x])
    assert relevance.tolist() == [[0.5, -3.0]]


def test_l2_normalisation_keeps_the_norm_constant():
    x = torch.tensor([[3.0, 4.0]], dtype=torch.float64, requires_grad=True)
    direction = torch.tensor([1.0, 1.0], dtype=torch.float64)
    with AttnLrpRules():
        y = F.normalize(x, dim=-1)
    (relevance,) = _relevance_of((y[0] * direction).sum(), [x])
    assert relevance[0].tolist() == pytest.approx([3 / 5, 4 / 5], abs=1e-15)


def test_op_without_a_rule_is_refused():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(TargetNotAvailable, match="no rule"), AttnLrpRules():
        _ = x * x
    with pytest.raises(TargetNotAvailable, match="no rule"), AttnLrpRules():
        torch.exp(x)
    q = torch.ones(1, 1, 2, 2, requires_grad=True)
    with pytest.raises(TargetNotAvailable, match="no rule"), AttnLrpRules():
        F.scaled_dot_product_attention(q, q, q)


# ---- the ledger on tiny models ------------------------------------------------------------------------


def _float64(tmp_path, architecture="bert", head="none", seed=0):
    loaded = tiny_loaded(tmp_path, architecture, head, seed)
    loaded.model.double()
    loaded.dtype = torch.float64
    return loaded


def _randomise_biases(model: torch.nn.Module, seed: int = 1) -> None:
    generator = torch.Generator().manual_seed(seed)
    for name, parameter in model.named_parameters():
        if name.endswith("bias"):
            parameter.data = 0.3 * torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype)


def _closure_tolerance(conservation: dict) -> float:
    parts = ("score", "relevance_sum", "absorbed_bias", "absorbed_embeddings", "absorbed_softmax")
    return ROUNDINGS * EPS64 * sum(abs(conservation[part]) for part in parts)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_ledger_closes_with_biases(tmp_path, architecture):
    """f = sum_t R_t + bias + embeddings + softmax, each part measured separately, to float64 rounding."""
    loaded = _float64(tmp_path, architecture)
    _randomise_biases(loaded.model)
    encoded = encode(loaded.tokenizer, SENTENCE, max_tokens=64)
    target = bind_target(loaded, ZERO_SHOT, encoded)
    relevance, conservation = attnlrp_relevance(loaded, encoded, target)
    with torch.no_grad():
        score = float(target.scores(**encoded.model_inputs())[0, target.index])
    assert conservation["score"] == pytest.approx(score, abs=1e-12)
    assert conservation["relevance_sum"] == pytest.approx(float(relevance.sum()), abs=1e-12)
    assert abs(conservation["absorbed_bias"]) > 1e-3  # the randomised biases do take relevance
    assert abs(conservation["rounding"]) <= _closure_tolerance(conservation)


def _strip(model: torch.nn.Module, loaded) -> None:
    """Zero every bias, the position/segment embeddings and the value projections (no attention mixing)."""
    for name, parameter in model.named_parameters():
        if name.endswith("bias") or "position_embeddings" in name or "token_type_embeddings" in name:
            parameter.data.zero_()
    for layer in range(loaded.num_layers):
        loaded.adapter.value_projection(model, layer).weight.data.zero_()


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_relevance_conserved_without_biases_embeddings_or_attention(tmp_path, architecture):
    """With nothing to absorb relevance, the token relevances sum to the score (LayerNorm, GELU, linear
    and residual rules are all conservative): |f - sum R| within float64 rounding."""
    loaded = _float64(tmp_path, architecture)
    _strip(loaded.model, loaded)
    encoded = encode(loaded.tokenizer, SENTENCE, max_tokens=64)
    target = bind_target(loaded, ZERO_SHOT, encoded)
    _, conservation = attnlrp_relevance(loaded, encoded, target)
    assert conservation["absorbed_bias"] == 0 and conservation["absorbed_embeddings"] == 0
    assert conservation["absorbed_softmax"] == 0
    tolerance = ROUNDINGS * EPS64 * (abs(conservation["score"]) + abs(conservation["relevance_sum"]))
    assert abs(conservation["score"] - conservation["relevance_sum"]) <= tolerance
    assert conservation["relative_error"] <= tolerance / abs(conservation["score"])


class _Head:
    labels = ["neg", "pos"]
    weight = np.array([[0.5, -1.0] * 16, [-0.25, 2.0] * 16])
    bias = np.array([0.7, -0.4])


@pytest.mark.parametrize(
    ("head", "spec", "text"),
    [
        ("classification", ClassificationTarget(), SENTENCE),
        ("masked_lm", MaskedTokenTarget(), "a [MASK] movie ."),
        ("none", HeadTarget(head="h", label="pos"), SENTENCE),
    ],
)
def test_ledger_closes_for_every_target_kind(tmp_path, head, spec, text):
    loaded = _float64(tmp_path, "bert", head)
    _randomise_biases(loaded.model)
    encoded = encode(loaded.tokenizer, text, max_tokens=64)
    target = bind_target(loaded, spec, encoded, heads=lambda _: _Head())
    _, conservation = attnlrp_relevance(loaded, encoded, target)
    with torch.no_grad():
        assert conservation["score"] == pytest.approx(
            float(target.scores(**encoded.model_inputs())[0, target.index]), abs=1e-12
        )
    assert abs(conservation["rounding"]) <= _closure_tolerance(conservation)


def test_fitted_head_bias_is_counted_as_absorbed(tmp_path):
    """Two heads differing only in bias: same relevance, scores and absorbed bias both shifted by it."""

    class Unbiased(_Head):
        bias = np.zeros(2)

    loaded = _float64(tmp_path)
    encoded = encode(loaded.tokenizer, SENTENCE, max_tokens=64)
    runs = [
        attnlrp_relevance(
            loaded, encoded, bind_target(loaded, HeadTarget(head="h", label="pos"), encoded, heads)
        )
        for heads in (lambda _: _Head(), lambda _: Unbiased())
    ]
    (biased, with_bias), (plain, without_bias) = runs
    assert torch.equal(biased, plain)
    shift = _Head.bias[1]
    assert with_bias["score"] - without_bias["score"] == pytest.approx(shift, abs=1e-12)
    assert with_bias["absorbed_bias"] - without_bias["absorbed_bias"] == pytest.approx(shift, abs=1e-12)


# ---- the method in the app: result fields, no leaked rules, determinism ------------------------------


def test_result_reports_the_conservation_error_it_can_be_checked_by(tiny_bert):
    encoded = encode(tiny_bert.tokenizer, SENTENCE, max_tokens=64)
    target = bind_target(tiny_bert, ZERO_SHOT, encoded)
    result = METHODS["attnlrp"].run(tiny_bert, encoded, AttnLrp.Params(), target)
    conservation = result.conservation
    assert result.signed and result.convergence_delta is None
    assert conservation["score"] == pytest.approx(result.prediction["score"], rel=4 * EPS32)
    recomputed = abs(result.prediction["score"] - float(result.scores.sum())) / abs(
        result.prediction["score"]
    )
    # float32 scores: summing N of them rounds by at most N u times their magnitudes
    slack = len(result.scores) * EPS32 * float(np.abs(result.scores).sum()) / abs(conservation["score"])
    assert conservation["relative_error"] == pytest.approx(recomputed, abs=slack + 8 * EPS32)


def _gradient_x_input(loaded, encoded, target) -> np.ndarray:
    return (
        METHODS["gradient_x_input"].run(loaded, encoded, METHODS["gradient_x_input"].Params(), target).scores
    )


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_no_rule_leaks_into_the_model_or_other_methods(tmp_path, architecture):
    loaded = tiny_loaded(tmp_path, architecture)
    encoded = encode(loaded.tokenizer, SENTENCE, max_tokens=64)
    target = bind_target(loaded, ZERO_SHOT, encoded)
    with torch.no_grad():
        before = loaded.model(**encoded.model_inputs()).last_hidden_state.clone()
    gxi_before = _gradient_x_input(loaded, encoded, target)
    first = METHODS["attnlrp"].run(loaded, encoded, AttnLrp.Params(), target)
    with torch.no_grad():
        after = loaded.model(**encoded.model_inputs()).last_hidden_state
    assert torch.equal(before, after)
    assert np.array_equal(gxi_before, _gradient_x_input(loaded, encoded, target))
    assert leftover_hooks(loaded.model) == []
    assert not any(parameter.requires_grad for parameter in loaded.model.parameters())
    second = METHODS["attnlrp"].run(loaded, encoded, AttnLrp.Params(), target)
    assert np.array_equal(first.scores, second.scores) and first.conservation == second.conservation
    assert not np.allclose(first.scores, gxi_before)  # the rules do change the gradient


def test_rules_stay_in_their_thread(tiny_bert):
    """While one thread runs under the rules, another thread's gradients are the plain ones."""
    encoded = encode(tiny_bert.tokenizer, SENTENCE, max_tokens=64)
    target = bind_target(tiny_bert, ZERO_SHOT, encoded)
    expected = _gradient_x_input(tiny_bert, encoded, target)
    seen = []
    with AttnLrpRules():
        worker = threading.Thread(target=lambda: seen.append(_gradient_x_input(tiny_bert, encoded, target)))
        worker.start()
        worker.join()
    assert np.array_equal(seen[0], expected)


def test_attnlrp_through_the_api(client):
    body = client.post(
        "/api/analyses",
        json={
            "method": "attnlrp",
            "text": "a good movie",
            "target": {"kind": "zero_shot", "labels": ["good", "bad"], "template": "it was {} ."},
        },
    ).json()
    result = body["result"]
    assert len(result["scores"]) == len(body["tokens"]) and result["signed"] is True
    conservation = result["conservation"]
    assert set(conservation) == {
        "score",
        "relevance_sum",
        "relative_error",
        "absorbed_bias",
        "absorbed_embeddings",
        "absorbed_softmax",
        "rounding",
    }
    assert conservation["relevance_sum"] == pytest.approx(sum(result["scores"]), abs=1e-5)
    fetched = client.get(f"/api/analyses/{body['id']}").json()
    assert fetched["result"]["conservation"] == conservation
    figure = client.get(f"/api/analyses/{body['id']}/figure")
    assert figure.status_code == 200


@pytest.mark.slow
def test_ledger_closes_on_the_embedded_model(embedded):
    """all-MiniLM-L6-v2 in float32: 6 blocks, reductions of up to 1536 terms, so each term of the ledger
    takes at most 6 x 2048 roundings: |rounding| <= 12288 u32 x (sum of the parts' magnitudes)."""
    encoded = encode(embedded.tokenizer, "it 's a charming and often affecting journey .", max_tokens=128)
    target = bind_target(embedded, ZeroShotTarget(), encoded)
    result = METHODS["attnlrp"].run(embedded, encoded, AttnLrp.Params(), target)
    conservation = result.conservation
    parts = ("score", "relevance_sum", "absorbed_bias", "absorbed_embeddings", "absorbed_softmax")
    assert abs(conservation["rounding"]) <= 6 * 2048 * EPS32 * sum(abs(conservation[p]) for p in parts)
    assert conservation["score"] == pytest.approx(result.prediction["score"], rel=4 * EPS32)
