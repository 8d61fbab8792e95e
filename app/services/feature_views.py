"""What the feature pages and API show: a feature as a unit (exemplars, statistics, descriptions, through
:mod:`app.services.neuron_views`), plus what its decoder direction touches, and the features most active on
an analysed text."""

from __future__ import annotations

from typing import Any

import torch

from app.errors import InvalidInput
from app.methods.features.basis import FeatureBasis, feature_basis_key
from app.methods.features.effects import nearest_neurons, probe_effect, residual_direction, token_directions
from app.modeling.hooks import capture
from app.modeling.loading import LoadedModel
from app.services.neuron_views import ACTIVE_NEURONS, most_active, neuron_detail, neuron_maxima
from app.services.runner import Runner
from app.services.unit_bases import feature_basis, find_dictionary, resolve_basis
from app.store.analyses import StoredAnalysis
from app.store.stores import Stores


def feature_detail(runner: Runner, stores: Stores, dictionary_id: str, feature: int) -> dict[str, Any]:
    """One feature: the neuron page's evidence over the feature's indexes, the dictionary, and the decoder
    direction's nearest neurons, token directions and probe effect."""
    dictionary = find_dictionary(stores, runner.revision, dictionary_id)
    if not 0 <= feature < dictionary["width"]:
        raise InvalidInput(
            f"Dictionary {dictionary['name']!r} has features 0-{dictionary['width'] - 1} (got {feature})."
        )
    key = feature_basis_key(dictionary_id)
    basis = feature_basis(stores, runner.revision, dictionary_id)
    indexed = any(info.status == "done" for info in stores.neurons.list_for_revision(runner.revision, key))
    detail = (
        neuron_detail(runner, stores, 0, feature, basis=key) if indexed else _unindexed(dictionary, feature)
    )
    with runner.exclusive() as loaded:
        effects = {
            "nearest_neurons": nearest_neurons(loaded, basis.dictionary, feature),
            "tokens": token_directions(loaded, basis.dictionary, feature),
            "probe": _probe(stores, runner.revision, loaded, basis, feature),
        }
    return {**detail, "dictionary": dictionary, "effects": effects}


def _unindexed(dictionary: dict[str, Any], feature: int) -> dict[str, Any]:
    """A feature whose dictionary has no finished index yet: its direction's effects only."""
    return {
        "layer": dictionary["layer"],
        "unit": feature,
        "name": f"L{dictionary['layer']} · f{feature}",
        "label": None,
        "consistency": None,
        "token_overlap": None,
        "description": None,
        "corpora": [],
        "not_indexed": "This dictionary's features are not indexed yet: run 'Index and describe features'.",
    }


def _probe(
    stores: Stores, revision: str, loaded: LoadedModel, basis: FeatureBasis, feature: int
) -> dict[str, Any]:
    """The newest probe set's distance probe at the residual layer the feature writes to, against random
    directions (an FFN feature of block l writes into the residual stream after block l, layer l + 1)."""
    dictionary = basis.dictionary
    layer = dictionary.layer if dictionary.site == "residual" else dictionary.layer + 1
    found = [p for p in stores.probes.list_for_revision(revision) if layer in p.layers]
    if not found:
        return {"skipped": f"no probe set of the loaded model has a probe at layer {layer}"}
    probes = found[0]
    distance = probes.distance[probes.layers.index(layer)]
    effect = probe_effect(residual_direction(loaded, dictionary, feature), distance)
    return {"probe_set": probes.id, "probe_set_name": probes.name, "layer": layer, **effect}


@torch.no_grad()
def active_features(
    runner: Runner,
    stores: Stores,
    analysis: StoredAnalysis,
    dictionary_id: str | None,
    count: int = ACTIVE_NEURONS,
) -> dict[str, Any]:
    """The features of a dictionary (default: the newest with a finished index) most active on an analysed
    text, relative to their maximum over the largest indexed corpus."""
    revision = runner.revision
    listed = stores.dictionaries.descriptions(revision)
    if dictionary_id is not None:
        listed = [find_dictionary(stores, revision, dictionary_id)]
    for dictionary in listed:
        key = feature_basis_key(dictionary["id"])
        indexes = [i for i in stores.neurons.list_for_revision(revision, key) if i.status == "done"]
        if indexes:
            break
    else:
        return {"items": [], "index": None, "dictionary": listed[0] if listed else None}
    reference = max(indexes, key=lambda info: info.sentence_count)
    basis = feature_basis(stores, revision, dictionary["id"])
    encoded = runner.encode(analysis.text, analysis.text_pair)
    with runner.exclusive() as loaded, capture({"x": basis.modules(loaded)[0]}) as seen:
        loaded.adapter.encoder(loaded.model)(**encoded.model_inputs())
        codes = basis.values(0, seen["x"][0]).float().cpu()  # [token, feature]
    browsed = resolve_basis(stores, revision, key)
    items = most_active(stores, browsed, codes[None], neuron_maxima(stores, reference.id), encoded, count)
    return {"items": items, "index": reference.corpus, "dictionary": dictionary, "basis": key}
