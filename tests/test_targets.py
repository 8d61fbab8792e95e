"""Targets: classification logits, masked-token logits and zero-shot label similarity."""

from __future__ import annotations

import pytest
import torch

from app.errors import TargetNotAvailable
from app.modeling.encoding import encode
from app.modeling.targets import (
    ClassificationTarget,
    MaskedTokenTarget,
    ZeroShotTarget,
    available_targets,
    bind_target,
    mean_pool,
)
from tests.tiny import tiny_loaded


def test_mean_pool_ignores_padding():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert mean_pool(hidden, mask).tolist() == [[2.0, 3.0]]


def test_zero_shot_scores_are_cosines_of_mean_pooled_embeddings(tiny_bert):
    encoded = encode(tiny_bert.tokenizer, "a good movie", max_tokens=64)
    spec = ZeroShotTarget(labels=["good", "bad"], template="it was {} .")
    bound = bind_target(tiny_bert, spec, encoded)
    scores = bound.scores(**encoded.model_inputs())
    model = tiny_bert.model
    with torch.no_grad():
        sentence = model(**encoded.model_inputs()).last_hidden_state.mean(1)[0]
        expected = []
        for label in ["good", "bad"]:
            prompt = tiny_bert.tokenizer(f"it was {label} .", return_tensors="pt")
            expected.append(
                torch.cosine_similarity(sentence, model(**prompt).last_hidden_state.mean(1)[0], dim=0)
            )
    torch.testing.assert_close(scores[0], torch.stack(expected), atol=1e-5, rtol=1e-5)
    assert bound.index == int(scores.argmax())
    assert bind_target(tiny_bert, ZeroShotTarget(labels=["good", "bad"], label="bad"), encoded).index == 1


def test_zero_shot_unknown_label_is_an_error(tiny_bert):
    encoded = encode(tiny_bert.tokenizer, "a good movie", max_tokens=64)
    with pytest.raises(TargetNotAvailable, match="not one of the labels"):
        bind_target(tiny_bert, ZeroShotTarget(labels=["good", "bad"], label="ugly"), encoded)


def test_classification_target_defaults_to_predicted_class(tmp_path):
    loaded = tiny_loaded(tmp_path, "bert", head="classification")
    encoded = encode(loaded.tokenizer, "a bad movie", max_tokens=64)
    bound = bind_target(loaded, None, encoded)
    logits = loaded.model(**encoded.model_inputs()).logits
    assert bound.spec.kind == "classification"
    assert bound.index == int(logits.argmax())
    assert bind_target(loaded, ClassificationTarget(label="positive"), encoded).index == 1
    assert [t["kind"] for t in available_targets(loaded)] == ["classification", "zero_shot"]


def test_classification_needs_a_head(tiny_bert):
    encoded = encode(tiny_bert.tokenizer, "a movie", max_tokens=64)
    with pytest.raises(TargetNotAvailable, match="no classification head"):
        bind_target(tiny_bert, ClassificationTarget(), encoded)


def test_masked_token_target(tmp_path):
    loaded = tiny_loaded(tmp_path, "bert", head="masked_lm")
    encoded = encode(loaded.tokenizer, "the [MASK] sat", max_tokens=64)
    bound = bind_target(loaded, MaskedTokenTarget(token="cat"), encoded)
    assert bound.position == 2
    assert bound.index == loaded.tokenizer.convert_tokens_to_ids("cat")
    assert bound.scores(**encoded.model_inputs()).shape == (1, len(loaded.tokenizer))
    with pytest.raises(TargetNotAvailable, match="needs a"):
        bind_target(loaded, MaskedTokenTarget(), encode(loaded.tokenizer, "no mask here", max_tokens=64))
    with pytest.raises(TargetNotAvailable, match="not in the vocabulary"):
        bind_target(loaded, MaskedTokenTarget(token="zebra"), encoded)
