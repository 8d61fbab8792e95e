"""A dictionary's features as index units: the site its layer reads, encoded by the sparse autoencoder.

With this basis (:class:`app.methods.neurons.units.UnitBasis`) the activation index, exemplar shading,
descriptions, stability and the cross-corpus illusion check run on the features of a TopK SAE (Gao et al.
2024; :mod:`app.methods.features.sae`) exactly as they run on neurons: one slot (the dictionary's layer and
site), ``width`` units, a unit's value on a token its code z_i (0 unless the feature is among the token's
k active ones). Random directions, the control, are drawn in the space the dictionary reads (the residual
stream or the FFN activations of that layer), where its decoder directions live too.
"""

from __future__ import annotations

import torch
from torch import nn

from app.methods.features.activations import Site, site_dimension, site_module
from app.methods.features.dictionary import FeatureDictionary
from app.methods.neurons.units import first_tensor
from app.modeling.loading import LoadedModel

FEATURES_PREFIX = "features:"


def feature_basis_key(dictionary_id: str) -> str:
    """What indexes and description runs over this dictionary's features are stored under."""
    return f"{FEATURES_PREFIX}{dictionary_id}"


class FeatureBasis:
    """The features of one dictionary (its autoencoder moves to the activations' device when first used)."""

    def __init__(self, dictionary: FeatureDictionary) -> None:
        self.dictionary = dictionary
        self.key = feature_basis_key(dictionary.id)
        self.site: Site = dictionary.site  # type: ignore[assignment]
        self._sae = dictionary.sae()

    def __getstate__(self) -> dict:
        """Pickled (to Ray workers) without the autoencoder module: it is rebuilt from the arrays."""
        return {key: value for key, value in self.__dict__.items() if key != "_sae"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._sae = self.dictionary.sae()

    def shape(self, loaded: LoadedModel) -> tuple[int, int]:
        return 1, self.dictionary.width

    def modules(self, loaded: LoadedModel) -> list[nn.Module]:
        return [site_module(loaded, self.dictionary.layer, self.site)]

    @torch.no_grad()
    def values(self, slot: int, output: torch.Tensor) -> torch.Tensor:
        x = first_tensor(output)
        if self._sae.decoder.device != x.device:
            self._sae = self._sae.to(x.device)
        codes = self._sae.encode(x.reshape(-1, x.shape[-1]).float())  # [token, latent]
        return codes.reshape(*x.shape[:-1], codes.shape[-1])

    def layer_of(self, slot: int) -> int:
        return self.dictionary.layer

    def direction_modules(self, loaded: LoadedModel) -> list[nn.Module]:
        return self.modules(loaded)

    def direction_dimension(self, loaded: LoadedModel) -> int:
        return site_dimension(loaded, self.site)
