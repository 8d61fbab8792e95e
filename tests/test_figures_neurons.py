"""The neuron page's activation histogram, built server-side: hand-computed cases."""

from __future__ import annotations

import pytest

from app.figures.neuron_histogram import histogram_figure

EDGES = [-0.5, -0.375, -0.25, -0.125, 0.0, 0.125]  # five bins of width 0.125


def test_bars_span_only_the_used_bins_and_outliers_are_named():
    # slots: underflow 2 | bins 0, 0, 5, 7, 0 | overflow 3 -> bars over bins 2 and 3 only
    figure = histogram_figure(EDGES, [2, 0, 0, 5, 7, 0, 3], "wiki")
    (bars,) = figure["data"]
    assert bars["type"] == "bar"
    assert bars["x"] == [-0.1875, -0.0625]  # the centres of [-0.25, -0.125) and [-0.125, 0)
    assert bars["y"] == [5, 7]
    assert figure["layout"]["title"]["text"] == "Activations on wiki (2 below -0.5, 3 at or above 0.125)"
    assert figure["layout"]["yaxis"]["type"] == "log"


def test_an_empty_bin_inside_the_span_stays_a_gap():
    figure = histogram_figure(EDGES, [0, 1, 0, 0, 4, 0, 0], "news")
    assert figure["data"][0]["x"] == [-0.4375, -0.3125, -0.1875, -0.0625]
    assert figure["data"][0]["y"] == [1, 0, 0, 4]
    assert figure["layout"]["title"]["text"] == "Activations on news"  # nothing outside the edges


def test_only_outliers_or_nothing_gives_no_bars():
    figure = histogram_figure(EDGES, [0, 0, 0, 0, 0, 0, 9], "tiny")
    assert figure["data"][0]["x"] == [] and figure["data"][0]["y"] == []
    assert figure["layout"]["title"]["text"] == "Activations on tiny (9 at or above 0.125)"
    assert histogram_figure(EDGES, [0] * 7, "none")["layout"]["title"]["text"] == "Activations on none"


def test_a_corpus_name_is_shown_not_applied_as_markup():
    title = histogram_figure(EDGES, [0, 1, 0, 0, 0, 0, 0], "<b>x</b>")["layout"]["title"]["text"]
    assert title == "Activations on &lt;b&gt;x&lt;/b&gt;"


def test_counts_must_have_the_underflow_and_overflow_slots():
    with pytest.raises(ValueError, match="6 edges need 7 count slots, got 5"):
        histogram_figure(EDGES, [0, 1, 2, 3, 4], "wiki")
