"""The runner: validation, caching keyed by weights revision, and stored results."""

from __future__ import annotations

import numpy as np
import pytest

from app.errors import InvalidInput, UnknownMethod
from app.services.analyses import Analyses, AnalysisRequest
from app.services.container import build_services
from app.services.runner import Runner
from app.store.db import make_engine
from app.store.stores import Stores
from tests.conftest import make_settings, sqlite_url
from tests.tiny import tiny_loaded


@pytest.fixture
def analyses(tmp_path, tiny_bert):
    return build_services(tiny_bert, make_engine(sqlite_url(tmp_path)), make_settings(tmp_path)).analyses


def test_second_identical_request_is_a_cache_hit(analyses):
    request = AnalysisRequest(method="attention", text="the cat sat")
    first, cached_first = analyses.analyze(request)
    second, cached_second = analyses.analyze(request)
    assert (cached_first, cached_second) == (False, True)
    assert first.id == second.id
    np.testing.assert_array_equal(first.result["mean"], second.result["mean"])


def test_different_input_is_a_miss(analyses):
    a, _ = analyses.analyze(AnalysisRequest(method="attention", text="the cat sat"))
    b, cached = analyses.analyze(AnalysisRequest(method="attention", text="the cat sat", text_pair="a dog"))
    assert not cached and a.id != b.id


def test_new_weights_never_serve_stale_results(tmp_path, tiny_bert):
    stores = Stores.on(make_engine(sqlite_url(tmp_path)))
    settings = make_settings(tmp_path)
    other = tiny_loaded(tmp_path, "bert", seed=1)
    assert other.revision != tiny_bert.revision
    request = AnalysisRequest(method="attention", text="the cat sat")
    first, _ = Analyses(Runner(tiny_bert, settings), stores).analyze(request)
    second, cached = Analyses(Runner(other, settings), stores).analyze(request)
    assert not cached
    assert second.model["revision"] == other.revision
    assert not np.allclose(first.result["mean"], second.result["mean"])


def test_unknown_method_lists_valid_ones(analyses):
    with pytest.raises(UnknownMethod, match="Valid methods: .*attention"):
        analyses.analyze(AnalysisRequest(method="nope", text="x"))


def test_bad_params_name_the_field(analyses):
    with pytest.raises(InvalidInput, match="params.layers"):
        analyses.analyze(AnalysisRequest(method="attention", text="x", params={"layers": 3}))


def test_token_limit_is_the_smaller_of_setting_and_model(tmp_path, tiny_bert):
    settings = make_settings(tmp_path, max_tokens=10_000)
    runner = Runner(tiny_bert, settings)
    assert runner.max_tokens == tiny_bert.max_positions == 66
