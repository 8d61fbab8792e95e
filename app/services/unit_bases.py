"""Which units a neuron-browser request is about: the neurons, a dictionary's features, or the random
directions that were described beside either (the illusion check's control).

A basis is named in URLs and the API as ``neurons``, ``features:<dictionary id>``, ``random:neurons`` or
``random:features:<dictionary id>``; :func:`resolve_basis` turns that name into the indexes and the
description run to read, or a clear error.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from app.errors import InvalidInput, NotFound
from app.methods.features.basis import FEATURES_PREFIX, FeatureBasis, feature_basis_key
from app.methods.neurons.units import NEURONS, NEURONS_KEY, UnitBasis
from app.store.neuron_descriptions import DescriptionSet, random_basis
from app.store.stores import Stores

RANDOM_PREFIX = "random:"
BASIS_NAME = re.compile(r"(random:)?(neurons|features:[A-Za-z0-9_-]{1,64})")
BASES_CACHED = 4


@dataclass
class BrowsedBasis:
    """A resolved basis: what its indexes are stored under, the run to list, and the dictionary if any."""

    key: str  # as named in the request
    kind: str  # neurons | features | random
    index_basis: str  # the indexes' basis (a random basis reads its parent's)
    described: DescriptionSet | None  # the run whose rows are listed (None: not described yet)
    dictionary: dict[str, Any] | None  # the dictionary's description (features, random in its space)

    def unit_name(self, layer: int, unit: int) -> str:
        """How a unit is shown: L3 · 17 (neuron), L3 · f17 (feature), L3 · d17 (random direction)."""
        if self.kind == "random":
            return f"L{self.layer_of(layer)} · d{unit}"
        prefix = "f" if self.kind == "features" else ""
        return f"L{self.layer_of(layer)} · {prefix}{unit}"

    def layer_of(self, slot: int) -> int:
        """The model layer of a stored slot (a dictionary's units all sit at its layer)."""
        return int(self.dictionary["layer"]) if self.dictionary else slot

    def unit_url(self, layer: int, unit: int) -> str | None:
        if self.kind == "neurons":
            return f"/neurons/{layer}/{unit}"
        if self.kind == "features":
            return f"/features/{self.dictionary['id']}/{unit}"  # type: ignore[index]
        return None  # random directions have no page: their vectors live only in the run that drew them

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "kind": self.kind,
            "index_basis": self.index_basis,
            "dictionary": self.dictionary,
            "description_id": self.described.id if self.described else None,
        }


def resolve_basis(stores: Stores, revision: str, key: str) -> BrowsedBasis:
    """The basis called ``key`` for the loaded model's revision (see the module docstring)."""
    match = BASIS_NAME.fullmatch(key or "")
    if match is None:
        raise InvalidInput(
            f"Unknown basis {key!r}: use 'neurons', 'features:<dictionary id>', 'random:neurons' or "
            "'random:features:<dictionary id>'."
        )
    random, index_basis = bool(match.group(1)), match.group(2)
    dictionary = None
    if index_basis.startswith(FEATURES_PREFIX):
        dictionary = find_dictionary(stores, revision, index_basis.removeprefix(FEATURES_PREFIX))
    described = stores.descriptions.latest(revision, basis=index_basis)
    if random:
        parent = described
        described = (
            None if parent is None else stores.descriptions.latest(revision, basis=random_basis(parent.id))
        )
    kind = "random" if random else "features" if dictionary else "neurons"
    return BrowsedBasis(key, kind, index_basis, described, dictionary)


def find_dictionary(stores: Stores, revision: str, dictionary_id: str) -> dict[str, Any]:
    """A finished dictionary's description (no weights read), or a 404 naming the ones there are."""
    found = stores.dictionaries.description_of(dictionary_id, revision)
    if found is not None:
        return found
    known = (
        ", ".join(f"{d['id']} ({d['name']})" for d in stores.dictionaries.descriptions(revision))
        or "none yet"
    )
    raise NotFound(f"No dictionary {dictionary_id!r} for the loaded model (dictionaries: {known}).")


def browsable_bases(stores: Stores, revision: str) -> list[dict[str, Any]]:
    """The bases the Neurons page offers: neurons, each dictionary's features, and their random controls."""
    bases = [{"key": NEURONS_KEY, "label": "neurons (FFN, every layer)"}]
    controls = [{"key": RANDOM_PREFIX + NEURONS_KEY, "label": "random directions (FFN space)"}]
    for dictionary in stores.dictionaries.descriptions(revision):
        key = feature_basis_key(dictionary["id"])
        where = f"L{dictionary['layer']} {dictionary['site']}"
        bases.append({"key": key, "label": f"SAE features: {dictionary['name']} ({where})"})
        controls.append({"key": RANDOM_PREFIX + key, "label": f"random directions ({where} space)"})
    return bases + controls


_BASES: OrderedDict[str, FeatureBasis] = OrderedDict()
_BASES_LOCK = threading.Lock()


def unit_basis(stores: Stores, revision: str, index_basis: str) -> UnitBasis:
    """The computable basis of an index basis name (a dictionary's weights are read once, then cached)."""
    if index_basis == NEURONS_KEY:
        return NEURONS
    return feature_basis(stores, revision, index_basis.removeprefix(FEATURES_PREFIX))


def feature_basis(stores: Stores, revision: str, dictionary_id: str) -> FeatureBasis:
    """The features of a stored dictionary as a basis (its weights read once, then cached)."""
    index_basis = feature_basis_key(dictionary_id)
    with _BASES_LOCK:
        if index_basis in _BASES:
            _BASES.move_to_end(index_basis)
            return _BASES[index_basis]
    basis = FeatureBasis(stores.dictionaries.find(dictionary_id, revision))
    with _BASES_LOCK:
        _BASES[index_basis] = basis
        while len(_BASES) > BASES_CACHED:
            _BASES.popitem(last=False)
    return basis
