"""The runner: validation, caching keyed by weights revision, and stored results."""

from __future__ import annotations

import numpy as np
import pytest

from app.errors import InvalidInput, UnknownMethod
from app.services.runner import AnalysisRequest, Runner
from app.store.analyses import AnalysisStore
from app.store.db import make_engine
from tests.conftest import make_settings, sqlite_url
from tests.tiny import tiny_loaded


@pytest.fixture
def runner(tmp_path, tiny_bert):
    return Runner(tiny_bert, AnalysisStore(make_engine(sqlite_url(tmp_path))), make_settings(tmp_path))


def test_second_identical_request_is_a_cache_hit(runner):
    request = AnalysisRequest(method="attention", text="the cat sat")
    first, cached_first = runner.analyze(request)
    second, cached_second = runner.analyze(request)
    assert (cached_first, cached_second) == (False, True)
    assert first.id == second.id
    np.testing.assert_array_equal(first.result["mean"], second.result["mean"])


def test_different_input_is_a_miss(runner):
    a, _ = runner.analyze(AnalysisRequest(method="attention", text="the cat sat"))
    b, cached = runner.analyze(AnalysisRequest(method="attention", text="the cat sat", text_pair="a dog"))
    assert not cached and a.id != b.id


def test_new_weights_never_serve_stale_results(tmp_path, tiny_bert):
    store = AnalysisStore(make_engine(sqlite_url(tmp_path)))
    settings = make_settings(tmp_path)
    other = tiny_loaded(tmp_path, "bert", seed=1)
    assert other.revision != tiny_bert.revision
    request = AnalysisRequest(method="attention", text="the cat sat")
    first, _ = Runner(tiny_bert, store, settings).analyze(request)
    second, cached = Runner(other, store, settings).analyze(request)
    assert not cached
    assert second.model["revision"] == other.revision
    assert not np.allclose(first.result["mean"], second.result["mean"])


def test_unknown_method_lists_valid_ones(runner):
    with pytest.raises(UnknownMethod, match="Valid methods: .*attention"):
        runner.analyze(AnalysisRequest(method="nope", text="x"))


def test_bad_params_name_the_field(runner):
    with pytest.raises(InvalidInput, match="params.layers"):
        runner.analyze(AnalysisRequest(method="attention", text="x", params={"layers": 3}))


def test_token_limit_is_the_smaller_of_setting_and_model(tmp_path, tiny_bert):
    settings = make_settings(tmp_path, max_tokens=10_000)
    runner = Runner(tiny_bert, AnalysisStore(make_engine(sqlite_url(tmp_path))), settings)
    assert runner.max_tokens == tiny_bert.max_positions == 66
