"""Searching described neurons: ranked by the score of the matching descriptor."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select

from app.methods.neurons.descriptions import Described, DescriptionRun
from app.methods.neurons.descriptors import DescriptorSet
from app.services.neuron_views import _best_match, _named
from app.store.db import make_engine
from app.store.neuron_descriptions import DescriptionStore
from app.store.tables import DescriptorScoreRow
from tests.conftest import sqlite_url

LABELS = ["negation", "proper name", "mozilla", "not only"]


def _unit(descriptors: dict[str, list[list]]) -> Described:
    return Described(descriptors, {name: 0.5 for name in descriptors}, None, None, "consistent")


def _run() -> DescriptionRun:
    """Four neurons (1 layer) on corpora a and b; [descriptor, score, count, q] per entry."""
    neurons = [
        _unit({"a": [[2, 3.3, 5, 0.001], [0, 1.4, 3, 0.01]], "b": []}),  # best overall: mozilla
        _unit({"a": [[0, 2.0, 4, 0.002]], "b": [[0, 2.5, 4, 0.003]]}),  # negation, best on b
        _unit({"a": [[1, 4.0, 6, 0.0001]], "b": [[3, 0.9, 2, 0.04]]}),  # "not only" contains "not"
        _unit({"a": [], "b": []}),
    ]
    descriptor_set = DescriptorSet(LABELS, [[label] for label in LABELS], np.zeros((3, 4), bool), {})
    return DescriptionRun(descriptor_set, ["a", "b"], neurons, num_units=4)


@pytest.fixture
def saved(tmp_path) -> tuple[DescriptionStore, str]:
    store = DescriptionStore(make_engine(sqlite_url(tmp_path)))
    set_id = store.save(_run(), "tiny", "rev", {"a": "index-a", "b": "index-b"}, {})
    return store, set_id


def test_search_ranks_by_the_matching_descriptor(saved):
    store, set_id = saved
    total, items = store.page(set_id, query="Negation", sort="score")
    assert total == 2
    # unit 0's best score is 3.3 (mozilla) but its negation score is 1.4: unit 1 (2.5 on b) comes first
    assert [item["unit"] for item in items] == [1, 0]
    total, items = store.page(set_id, query="not", sort="score")
    assert total == 1 and [item["unit"] for item in items] == [2]
    total, items = store.page(set_id, sort="score")  # no query: by the best score of any descriptor
    assert [item["unit"] for item in items][:3] == [2, 0, 1]
    assert store.page(set_id, query="%")[0] == 0 and store.page(set_id, query="_")[0] == 0


def test_the_match_names_descriptor_score_and_corpus(saved):
    store, set_id = saved
    _, items = store.page(set_id, query="negation")
    named = _named(items[0]["descriptors"], LABELS)
    assert _best_match(named, "NEGATION") == {"descriptor": "negation", "score": 2.5, "corpus": "b"}
    assert _best_match(named, "zebra") is None


def test_saving_a_run_writes_one_score_row_per_neuron_and_descriptor(saved):
    store, set_id = saved
    query = select(DescriptorScoreRow.layer, DescriptorScoreRow.unit, DescriptorScoreRow.descriptor)
    with store._session() as session:
        rows = {tuple(row) for row in session.execute(query.where(DescriptorScoreRow.set_id == set_id))}
        best = session.scalar(
            select(DescriptorScoreRow.score).where(
                DescriptorScoreRow.unit == 1, DescriptorScoreRow.descriptor == "negation"
            )
        )
    assert rows == {
        (0, 0, "mozilla"),
        (0, 0, "negation"),
        (0, 1, "negation"),
        (0, 2, "proper name"),
        (0, 2, "not only"),
    }
    assert best == 2.5  # the best over the corpora (b)


def test_a_descriptor_equal_to_the_query_ranks_first(tmp_path):
    labels = ["t-numbers", "number"]
    neurons = [
        _unit({"a": [[0, 3.0, 4, 0.001]]}),  # only contains the query
        _unit({"a": [[1, 0.95, 9, 0.01]]}),
        _unit({"a": [[1, 0.5, 7, 0.02], [0, 4.0, 4, 0.001]]}),  # both: ranked by its exact score
    ]
    descriptor_set = DescriptorSet(labels, [[label] for label in labels], np.zeros((3, 2), bool), {})
    run = DescriptionRun(descriptor_set, ["a"], neurons, num_units=3)
    store = DescriptionStore(make_engine(sqlite_url(tmp_path)))
    set_id = store.save(run, "tiny", "rev", {"a": "index-a"}, {})
    _, items = store.page(set_id, query="Number", sort="score")
    assert [item["unit"] for item in items] == [1, 2, 0]
    matches = [_best_match(_named(item["descriptors"], labels), "Number") for item in items]
    assert [(m["descriptor"], m["score"]) for m in matches] == [
        ("number", 0.95),
        ("number", 0.5),
        ("t-numbers", 3.0),
    ]
