"""What the activation index, the exemplar shading and the random-direction control count as *units*.

The index (:mod:`app.methods.neurons.index`) folds ``[slot, unit]`` values: a slot is a module whose output
it hooks, a unit one coordinate of what the basis makes of that output. Neurons are the FFN non-linearity
outputs of every layer as they are (one slot per layer). Other bases, such as a sparse autoencoder's
features (:mod:`app.methods.features.basis`), hook one site and transform its activations; the statistics,
exemplars, descriptions, stability and the illusion check then run on them unchanged. Random directions
(the control of Bolukbasi et al. 2021) are drawn in the space the basis reads: ``direction_modules`` and
``direction_dimension``.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch
from torch import nn

from app.modeling.loading import LoadedModel

NEURONS_KEY = "neurons"


def first_tensor(output: Any) -> torch.Tensor:
    """A module's output tensor (blocks may return a tuple whose first element is the hidden state)."""
    return output[0] if isinstance(output, tuple | list) else output


class UnitBasis(Protocol):
    """A set of units: where they are read and how an activation becomes their values."""

    key: str  # "neurons", "features:<dictionary id>": what indexes and description runs are stored under

    def shape(self, loaded: LoadedModel) -> tuple[int, int]:
        """(slots, units per slot)."""
        ...

    def modules(self, loaded: LoadedModel) -> list[nn.Module]:
        """One module per slot, in forward order; its output is what the slot's units are computed from."""
        ...

    def values(self, slot: int, output: torch.Tensor) -> torch.Tensor:
        """The units' values [..., units] of one slot from its module's output tensor [..., d]."""
        ...

    def layer_of(self, slot: int) -> int:
        """The model layer a slot reads (what pages show)."""
        ...

    def direction_modules(self, loaded: LoadedModel) -> list[nn.Module]:
        """The modules whose output space random directions are drawn in, one per direction layer."""
        ...

    def direction_dimension(self, loaded: LoadedModel) -> int:
        """The width of that space."""
        ...


class NeuronBasis:
    """Every layer's FFN activation output (post-GELU), unit by unit: the neurons."""

    key = NEURONS_KEY

    def shape(self, loaded: LoadedModel) -> tuple[int, int]:
        return loaded.num_layers, loaded.num_units

    def modules(self, loaded: LoadedModel) -> list[nn.Module]:
        return [
            loaded.adapter.ffn_activation_module(loaded.model, layer) for layer in range(loaded.num_layers)
        ]

    def values(self, slot: int, output: torch.Tensor) -> torch.Tensor:
        return output

    def layer_of(self, slot: int) -> int:
        return slot

    def direction_modules(self, loaded: LoadedModel) -> list[nn.Module]:
        return self.modules(loaded)

    def direction_dimension(self, loaded: LoadedModel) -> int:
        return loaded.num_units


NEURONS = NeuronBasis()
