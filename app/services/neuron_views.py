"""Assembling what the neuron pages and API show, from the index, the descriptions and the live model."""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

import numpy as np
import torch

from app.errors import InvalidInput
from app.figures.neuron_histogram import histogram_figure
from app.methods.features.basis import feature_basis_key
from app.methods.neurons.index import token_activations
from app.methods.neurons.units import NEURONS_KEY
from app.modeling.encoding import Encoded
from app.services.runner import Runner
from app.services.unit_bases import BrowsedBasis, resolve_basis, unit_basis
from app.store.analyses import StoredAnalysis
from app.store.stores import Stores

SHADED_EXEMPLARS = 12
ACTIVE_NEURONS = 12
SELECTIVE_SENTENCES_PER_EXEMPLAR = 5  # a corpus below k x this many sentences gets a warning


def neuron_page(
    runner: Runner,
    stores: Stores,
    *,
    layer: int | None,
    query: str | None,
    label: str | None,
    sort: str,
    limit: int,
    offset: int,
    basis: str = NEURONS_KEY,
) -> dict[str, Any]:
    """One page of the browser over ``basis`` (neurons, a dictionary's features or random directions):
    described units when a description run exists, else index statistics; with the runs' summaries that
    compare neurons, features and random directions side by side."""
    revision = runner.revision
    browsed = resolve_basis(stores, revision, basis)
    residual = browsed.dictionary is not None and browsed.dictionary["site"] == "residual"
    top = runner.num_layers if residual else runner.num_layers - 1  # the residual stream has L + 1 layers
    if layer is not None and not 0 <= layer <= top:
        raise InvalidInput(f"layer must be between 0 and {top} (got {layer}).")
    common = {"basis": browsed.to_json(), "comparison": comparison(stores, revision, browsed)}
    indexes = [info.to_json() for info in stores.neurons.list_for_revision(revision, browsed.index_basis)]
    slot = _slot(browsed, layer)
    if slot == -1:  # a dictionary's units all sit at its own layer
        return {"total": 0, "items": [], "description": None, "indexes": indexes, **common}
    described = browsed.described
    if described is not None:
        total, items = stores.descriptions.page(
            described.id, layer=slot, query=query, label=label, sort=sort, limit=limit, offset=offset
        )
        labels = described.descriptor_set.get("labels", [])
        for item in items:
            item["descriptors"] = _named(item["descriptors"], labels)
            item["match"] = _best_match(item["descriptors"], query) if query else None
            _locate(browsed, item)
        return {
            "total": total,
            "items": items,
            "description": described.to_json(),
            "indexes": indexes,
            **common,
        }
    done = [info for info in indexes if info["status"] == "done"]
    if query or label:
        raise InvalidInput(
            "No descriptions of these units exist yet: describe the indexed corpora before searching."
        )
    if not done or browsed.kind == "random":
        return {"total": 0, "items": [], "description": None, "indexes": indexes, **common}
    page = stores.neurons.neurons_page(done[0]["id"], layer=slot, sort="max", limit=limit, offset=offset)
    items = [_locate(browsed, dataclasses.asdict(item)) for item in page.items]
    return {"total": page.total, "items": items, "description": None, "indexes": indexes, **common}


def _slot(browsed: BrowsedBasis, layer: int | None) -> int | None:
    """The stored slot of a model layer filter: the layer itself for neurons; 0 for a dictionary's layer
    and -1 (nothing) for any other."""
    if layer is None or browsed.dictionary is None:
        return layer
    return 0 if layer == browsed.dictionary["layer"] else -1


def _locate(browsed: BrowsedBasis, item: dict[str, Any]) -> dict[str, Any]:
    """Add a unit's display name, model layer and page link (none for random directions)."""
    item["name"] = browsed.unit_name(item["layer"], item["unit"])
    item["url"] = browsed.unit_url(item["layer"], item["unit"])
    item["model_layer"] = browsed.layer_of(item["layer"])
    return item


def comparison(stores: Stores, revision: str, browsed: BrowsedBasis) -> dict[str, Any]:
    """The summaries of the newest neuron run and of the newest feature run (of the browsed dictionary,
    else of the newest dictionary described): neurons, features and random directions side by side."""
    neurons = stores.descriptions.latest(revision)
    candidates = [browsed.dictionary] if browsed.dictionary else stores.dictionaries.descriptions(revision)
    features, dictionary = None, None
    for candidate in candidates:
        features = stores.descriptions.latest(revision, basis=feature_basis_key(candidate["id"]))
        if features is not None:
            dictionary = candidate
            break
    return {
        "neurons": neurons.summary if neurons else None,
        "features": features.summary if features else None,
        "dictionary": dictionary,
    }


def _best_match(descriptors: dict[str, list[dict]], query: str) -> dict[str, Any] | None:
    """The descriptor whose label is ``query`` (case-insensitive), else the highest-scoring one containing it,
    with its score and corpus."""
    needle = query.lower()
    found = [
        {"descriptor": entry["descriptor"], "score": entry["score"], "corpus": corpus}
        for corpus, entries in descriptors.items()
        for entry in entries
        if needle in entry["descriptor"].lower()
    ]
    return max(found, key=lambda entry: (entry["descriptor"].lower() == needle, entry["score"]), default=None)


def _named(descriptors: dict[str, list[list]], labels: list[str]) -> dict[str, list[dict]]:
    return {
        corpus: [
            {"descriptor": labels[entry[0]], "score": entry[1], "count": entry[2], "q": entry[3]}
            for entry in entries
        ]
        for corpus, entries in descriptors.items()
    }


def neuron_detail(
    runner: Runner,
    stores: Stores,
    layer: int,
    unit: int,
    shaded: int = SHADED_EXEMPLARS,
    basis: str = NEURONS_KEY,
) -> dict[str, Any]:
    """Everything about one unit of ``basis`` (a neuron, or a feature at slot 0): per corpus exemplars
    (with token activations), stats, histogram, descriptors and stability; across corpora its consistency
    and label."""
    revision = runner.revision
    browsed = resolve_basis(stores, revision, basis)
    if browsed.kind == "random":
        raise InvalidInput("Random directions have no page of their own: browse them on the Neurons page.")
    indexes = [
        info
        for info in stores.neurons.list_for_revision(revision, browsed.index_basis)
        if info.status == "done"
    ]
    if not indexes:
        raise InvalidInput(
            f"No index of {browsed.index_basis} exists for the loaded model yet; index a corpus first."
        )
    described = browsed.described
    row = stores.descriptions.neuron(described.id, layer, unit) if described else None
    labels = described.descriptor_set.get("labels", []) if described else []
    run_order = (
        {name: number for number, name in enumerate(described.summary.get("corpora", []))}
        if described
        else {}
    )
    in_run = set(described.corpora) if described else set()
    # the described corpora first, in the run's order; then the others
    indexes.sort(key=lambda info: (info.corpus not in in_run, run_order.get(info.corpus, len(run_order))))
    units = unit_basis(stores, revision, browsed.index_basis)
    corpora = []
    for info in indexes:
        detail = stores.neurons.neuron(info.id, layer, unit)
        exemplars = [dataclasses.asdict(item) for item in detail.exemplars]
        with runner.exclusive() as loaded:
            _shade(loaded, exemplars[:shaded], layer, unit, info.max_tokens, units)
        _name_tokens(runner, exemplars[shaded:], info.max_tokens)
        corpora.append(
            {
                "corpus": info.corpus,
                "index_id": info.id,
                "sentences": info.sentence_count,
                "stats": {
                    key: getattr(detail, key) for key in ("count", "mean", "std", "minimum", "maximum")
                },
                "histogram": {
                    "edges": detail.histogram_edges,
                    "counts": detail.histogram,
                    "figure": histogram_figure(detail.histogram_edges, detail.histogram, info.corpus),
                },
                "exemplars": exemplars,
                "descriptors": _named({info.corpus: row["descriptors"].get(info.corpus, [])}, labels)[
                    info.corpus
                ]
                if row
                else [],
                "stability": row["stability"].get(info.corpus) if row else None,
                "in_description": info.corpus in in_run,
                "warning": _small_corpus_warning(info.sentence_count, info.k),
            }
        )
    return {
        "layer": browsed.layer_of(layer),
        "unit": unit,
        "name": browsed.unit_name(layer, unit),
        "basis": browsed.to_json(),
        "model": runner.describe_model(),
        "label": row["label"] if row else None,
        "consistency": row["consistency"] if row else None,
        "token_overlap": row["token_overlap"] if row else None,
        "description": described.to_json() if described else None,
        "corpora": corpora,
    }


def _small_corpus_warning(sentences: int, k: int) -> str | None:
    """A note when a corpus is too small for its exemplars to be selective."""
    if sentences >= SELECTIVE_SENTENCES_PER_EXEMPLAR * k:
        return None
    return (
        f"This corpus has {sentences} sentences for k = {k} exemplars per neuron (fewer than "
        f"{SELECTIVE_SENTENCES_PER_EXEMPLAR * k}): many neurons' exemplars reach down to ordinary "
        "activations, so its exemplars (and any description built on them) are weak evidence. Index a larger "
        "corpus."
    )


def _name_tokens(runner: Runner, exemplars: list[dict], max_tokens: int) -> None:
    """Attach the exemplar's token (the one that fired) to exemplars shown without shading: tokenizer only."""
    unique = list(dict.fromkeys(item["sentence"] for item in exemplars))
    if not unique:
        return
    tokens = dict(zip(unique, runner.token_strings(unique, max_tokens), strict=True))
    for item in exemplars:
        row = tokens[item["sentence"]]
        item["token"] = row[item["position"]] if 0 <= item["position"] < len(row) else None


def _shade(loaded: Any, exemplars: list[dict], layer: int, unit: int, max_tokens: int, basis: Any) -> None:
    """Attach tokens and this unit's activation on each token to the first exemplars (one forward)."""
    unique = list(dict.fromkeys(item["sentence"] for item in exemplars))
    if not unique:
        return
    rows = token_activations(loaded, unique, layer, unit, max_tokens=max_tokens, basis=basis)
    by_text = dict(zip(unique, rows, strict=True))
    for item in exemplars:
        row = by_text[item["sentence"]]
        item["tokens"] = row.tokens
        item["token_activations"] = [None if np.isnan(v) else float(v) for v in row.activations]


@torch.no_grad()
def active_neurons(
    runner: Runner, stores: Stores, analysis: StoredAnalysis, count: int = ACTIVE_NEURONS
) -> dict[str, Any]:
    """Neurons most active on an analysed text, relative to their maximum over the indexed corpus."""
    indexes = [i for i in stores.neurons.list_for_revision(runner.revision) if i.status == "done"]
    if not indexes:
        return {"items": [], "index": None}
    browsed = resolve_basis(stores, runner.revision, NEURONS_KEY)
    in_run = set(browsed.described.corpora) if browsed.described else set()
    # the reference: the largest corpus of the latest description run (else the largest indexed one)
    reference = max(indexes, key=lambda info: (info.corpus in in_run, info.sentence_count))
    encoded = runner.encode(analysis.text, analysis.text_pair)
    ffn = runner.clean_pass(encoded, ffn=True).ffn  # micro-batched with concurrent requests
    values = torch.stack(ffn).float().cpu()  # [layer, token, unit]
    items = most_active(stores, browsed, values, neuron_maxima(stores, reference.id), encoded, count)
    return {"items": items, "index": reference.corpus, "index_in_description": reference.corpus in in_run}


def most_active(
    stores: Stores,
    browsed: BrowsedBasis,
    values: torch.Tensor,
    maxima: np.ndarray,
    encoded: Encoded,
    count: int = ACTIVE_NEURONS,
) -> list[dict[str, Any]]:
    """The ``count`` units of ``browsed`` with the highest peak on the text relative to their corpus maximum,
    from their values [slot, token, unit] on every token and their maxima [slot, unit]; special tokens are
    left out, and a unit that never rises above zero is not active."""
    keep = torch.tensor([not special for special in encoded.special])
    tokens = [token for token, special in zip(encoded.tokens, encoded.special, strict=True) if not special]
    peak, where = values[:, keep].max(dim=1)  # [slot, unit]
    ratio = peak.numpy() / np.where(maxima > 0, maxima, np.inf)
    described = browsed.described
    items = []
    for position in np.argsort(-ratio, axis=None, kind="stable")[:count]:
        slot, unit = divmod(int(position), ratio.shape[1])
        if peak[slot, unit] <= 0:
            continue
        row = stores.descriptions.neuron(described.id, slot, unit) if described else None
        items.append(
            {
                "layer": browsed.layer_of(slot),
                "unit": unit,
                "name": browsed.unit_name(slot, unit),
                "activation": float(peak[slot, unit]),
                "relative": float(ratio[slot, unit]),
                "token": tokens[int(where[slot, unit])],
                "best_descriptor": row["best_descriptor"] if row else None,
                "label": row["label"] if row else None,
                "url": browsed.unit_url(slot, unit),
            }
        )
    return items


_MAXIMA: dict[str, np.ndarray] = {}  # index id -> [layer, unit]; an index never changes once done
_MAXIMA_LOCK = threading.Lock()
MAXIMA_CACHED = 16


def neuron_maxima(stores: Stores, index_id: str) -> np.ndarray:
    """[layer, unit] maximum activation of every neuron over an index's corpus (cached per index)."""
    with _MAXIMA_LOCK:
        if index_id in _MAXIMA:
            return _MAXIMA[index_id]
    count = stores.neurons.neurons_page(index_id, sort="max", limit=1, offset=0).total
    items = []
    for offset in range(0, count, 500):
        items += stores.neurons.neurons_page(index_id, sort="max", limit=500, offset=offset).items
    layers = max(item.layer for item in items) + 1
    maxima = np.zeros((layers, count // layers), dtype=np.float64)
    for item in items:
        maxima[item.layer, item.unit] = item.maximum or 0.0
    with _MAXIMA_LOCK:
        if len(_MAXIMA) >= MAXIMA_CACHED:
            _MAXIMA.pop(next(iter(_MAXIMA)))
        _MAXIMA[index_id] = maxima
    return maxima


def neuron_summary(runner: Runner, stores: Stores) -> dict[str, Any]:
    """The latest description run of the loaded model and its neuron indexes."""
    described = stores.descriptions.latest(runner.revision)
    indexes = [info.to_json() for info in stores.neurons.list_for_revision(runner.revision)]
    return {"description": described.to_json() if described else None, "indexes": indexes}
