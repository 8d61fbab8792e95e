"""Attribution methods: hand-checkable properties on tiny random models, and IBA against its reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from app.errors import InvalidInput, TargetNotAvailable
from app.methods import METHODS
from app.methods.attribution import iba
from app.methods.attribution.iba import IbaParams, InformationBottleneck, default_layer
from app.modeling.encoding import encode
from app.modeling.targets import ZeroShotTarget, bind_target
from tests.reference.iba import corpus_statistics_reference, iba_reference
from tests.tiny import ARCHITECTURES, tiny_loaded

ATTRIBUTION = sorted(name for name, method in METHODS.items() if method.kind == "attribution")
SENTENCE = "a good movie with a bad end ."


@pytest.fixture
def setup(tiny_bert):
    encoded = encode(tiny_bert.tokenizer, SENTENCE, max_tokens=64)
    return tiny_bert, encoded, bind_target(tiny_bert, ZeroShotTarget(labels=["good", "bad"]), encoded)


def _score(loaded, target, **inputs) -> float:
    with torch.no_grad():
        return float(target.scores(**inputs)[0, target.index])


@pytest.mark.parametrize("name", ATTRIBUTION)
def test_every_attribution_method_shape_and_prediction(setup, name):
    loaded, encoded, target = setup
    method = METHODS[name]
    result = method.run(loaded, encoded, method.Params(), target)
    assert result.scores.shape == (encoded.length,) and np.isfinite(result.scores).all()
    assert result.prediction["label"] in ("good", "bad") and 0 <= result.prediction["probability"] <= 1


@pytest.mark.parametrize("name", ATTRIBUTION)
def test_attribution_needs_a_target(setup, name):
    loaded, encoded, _ = setup
    with pytest.raises(TargetNotAvailable):
        METHODS[name].run(loaded, encoded, METHODS[name].Params(), None)


def test_integrated_gradients_completeness(setup):
    """Sum of attributions = f(input) - f(baseline) (Sundararajan et al.'s completeness axiom)."""
    loaded, encoded, target = setup
    method = METHODS["integrated_gradients"]
    result = method.run(loaded, encoded, method.Params(steps=200), target)
    baseline = encoded.input_ids.clone()
    baseline[0, 1:-1] = loaded.tokenizer.pad_token_id
    difference = _score(loaded, target, **encoded.model_inputs()) - _score(
        loaded, target, **{**encoded.model_inputs(), "input_ids": baseline}
    )
    assert result.scores.sum() == pytest.approx(difference, abs=1e-3)
    assert result.convergence_delta < 1e-3


def test_gradient_x_input_by_autograd(setup):
    loaded, encoded, target = setup
    result = METHODS["gradient_x_input"].run(loaded, encoded, METHODS["gradient_x_input"].Params(), target)
    embeddings = loaded.model.get_input_embeddings()(encoded.input_ids).detach().requires_grad_(True)
    with torch.enable_grad():
        inputs = {k: v for k, v in encoded.model_inputs().items() if k != "input_ids"}
        target.scores(inputs_embeds=embeddings, **inputs)[0, target.index].backward()
    expected = (embeddings.grad * embeddings).sum(-1)[0].detach().numpy()
    np.testing.assert_allclose(result.scores, expected, atol=1e-6)


def test_occlusion_by_hand(setup):
    loaded, encoded, target = setup
    result = METHODS["occlusion"].run(loaded, encoded, METHODS["occlusion"].Params(), target)
    full = _score(loaded, target, **encoded.model_inputs())
    for position in range(1, encoded.length - 1):
        ids = encoded.input_ids.clone()
        ids[0, position] = loaded.tokenizer.pad_token_id
        occluded = _score(loaded, target, **{**encoded.model_inputs(), "input_ids": ids})
        assert result.scores[position] == pytest.approx(full - occluded, abs=1e-5)
    assert result.scores[0] == result.scores[-1] == 0.0  # special tokens are never occluded


def test_lime_is_seeded_and_skips_specials(setup):
    loaded, encoded, target = setup
    method = METHODS["lime"]
    first = method.run(loaded, encoded, method.Params(samples=200, seed=3), target).scores
    again = method.run(loaded, encoded, method.Params(samples=200, seed=3), target).scores
    other = method.run(loaded, encoded, method.Params(samples=200, seed=4), target).scores
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert first[0] == first[-1] == 0.0


def test_lime_agrees_with_occlusion_given_many_samples(setup):
    """On a small input, LIME's surrogate and leave-one-out rank tokens alike (loose sanity check)."""
    from scipy.stats import spearmanr

    loaded, encoded, target = setup
    lime = METHODS["lime"].run(loaded, encoded, METHODS["lime"].Params(samples=3000), target).scores[1:-1]
    occlusion = METHODS["occlusion"].run(loaded, encoded, METHODS["occlusion"].Params(), target).scores[1:-1]
    assert spearmanr(lime, occlusion).statistic > 0.3


@pytest.mark.parametrize("estimator", ["dataset", "sentence"])
@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_iba_equals_reference_style_implementation(tmp_path, architecture, estimator):
    loaded = tiny_loaded(tmp_path, architecture)
    encoded = encode(loaded.tokenizer, SENTENCE, max_tokens=64, token_types=loaded.uses_token_types)
    target = bind_target(loaded, ZeroShotTarget(labels=["good", "bad"]), encoded)
    params = IbaParams(layer=0, seed=7, estimator=estimator)
    ours = InformationBottleneck().run(loaded, encoded, params, target).scores
    expected = iba_reference(loaded, encoded, target, params).numpy()
    # The reference copies the method's clamp of the noise's log-variance to [-10, 10]: without it, the
    # dataset estimator's large sigma lets capacities move by up to 16 % (the sentence estimator's 5e-4).
    # What remains is float32 summation order (batched vs one forward per step) and the statistics summed
    # batched vs one sentence at a time, amplified by 10 Adam steps at lr 1: 1e-3 relative, exact ranking.
    np.testing.assert_allclose(ours, expected, rtol=1e-3)
    assert (np.argsort(ours) == np.argsort(expected)).all()
    assert all(parameter.grad is None for parameter in loaded.model.parameters())


def test_iba_is_deterministic_given_a_seed(setup):
    loaded, encoded, target = setup
    method = InformationBottleneck()
    first = method.run(loaded, encoded, IbaParams(seed=1), target).scores
    np.testing.assert_array_equal(first, method.run(loaded, encoded, IbaParams(seed=1), target).scores)
    assert not np.array_equal(first, method.run(loaded, encoded, IbaParams(seed=2), target).scores)


def test_iba_sweep_and_layers(setup):
    loaded, encoded, target = setup
    result = InformationBottleneck().run(loaded, encoded, IbaParams(sweep=True), target)
    assert result.layers.shape == (2, encoded.length)
    np.testing.assert_allclose(result.layers[default_layer(2)], result.scores)
    with pytest.raises(InvalidInput, match="below 2"):
        InformationBottleneck().run(loaded, encoded, IbaParams(layer=2), target)


def test_iba_defaults_to_the_dataset_estimator_and_says_so(setup):
    loaded, encoded, target = setup
    result = InformationBottleneck().run(loaded, encoded, IbaParams(), target)
    assert IbaParams().estimator == "dataset"
    assert "dataset estimator" in result.computed_with and "block 1" in result.computed_with
    sentence = InformationBottleneck().run(loaded, encoded, IbaParams(estimator="sentence"), target)
    assert "per-sentence estimator of the released IBA BERT code" in sentence.computed_with
    assert not np.allclose(result.scores, sentence.scores)


def test_iba_dataset_statistics_match_a_sentence_by_sentence_computation(tiny_bert):
    means, stds = iba._corpus_statistics(tiny_bert)
    expected_means, expected_stds = corpus_statistics_reference(tiny_bert)
    # float32 states summed over ~5k tokens in float64: agreement far below the features' spread
    np.testing.assert_allclose(means.numpy(), expected_means.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(stds.numpy(), expected_stds.numpy(), rtol=1e-4, atol=1e-5)


def test_iba_dataset_statistics_are_cached_on_disk_per_revision(tmp_path, monkeypatch):
    loaded = tiny_loaded(tmp_path, "bert")
    loaded.cache_dir = tmp_path / "cache"
    monkeypatch.setattr(iba, "_STATISTICS", {})
    mean, std = iba.dataset_statistics(loaded, 1)
    path = iba.statistics_file(loaded)
    assert path.is_file() and loaded.revision in path.name

    def recomputed(_loaded):
        raise AssertionError("statistics recomputed despite the cache file")

    monkeypatch.setattr(iba, "_STATISTICS", {})  # a restarted server: memory empty, the file is there
    monkeypatch.setattr(iba, "_corpus_statistics", recomputed)
    cached_mean, cached_std = iba.dataset_statistics(loaded, 1)
    np.testing.assert_array_equal(cached_mean.numpy(), mean.numpy())
    np.testing.assert_array_equal(cached_std.numpy(), std.numpy())
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no partial file left behind


def test_iba_statistics_cache_survives_a_corrupt_file(tmp_path, monkeypatch):
    loaded = tiny_loaded(tmp_path, "bert")
    loaded.cache_dir = tmp_path / "cache"
    monkeypatch.setattr(iba, "_STATISTICS", {})
    path = iba.statistics_file(loaded)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not an npz file")
    mean, _ = iba.dataset_statistics(loaded, 0)
    assert np.isfinite(mean.numpy()).all()
    with np.load(path) as stored:  # rewritten with the real statistics
        np.testing.assert_array_equal(stored["mean"][0], mean.numpy())


def test_default_layer_scales_the_published_choice():
    assert [default_layer(n) for n in (12, 6, 24, 2)] == [8, 4, 16, 1]


def test_mixing_rows_are_rollout_rows(setup):
    from app.methods.mixing.value_zeroing import ValueZeroing

    loaded, encoded, target = setup
    rollout = ValueZeroing().run(loaded, encoded, ValueZeroing.Params(), None).rollout
    method = METHODS["value_zeroing_row"]
    np.testing.assert_allclose(
        method.run(loaded, encoded, method.Params(), target).scores, rollout[0], atol=1e-6
    )
    mean = method.run(loaded, encoded, method.Params(row="mean"), target).scores
    np.testing.assert_allclose(mean, rollout[1:-1].mean(axis=0), atol=1e-6)


def test_alti_row_is_the_alti_rollout_row(setup):
    from app.methods.mixing.alti import Alti

    loaded, encoded, target = setup
    rollout = Alti().run(loaded, encoded, Alti.Params(), None).rollout
    method = METHODS["alti_row"]
    result = method.run(loaded, encoded, method.Params(), target)
    np.testing.assert_allclose(result.scores, rollout[0], atol=1e-6)
    assert result.signed is False and abs(result.scores.sum() - 1) < 1e-5
