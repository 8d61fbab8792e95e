"""A trained dictionary as the store keeps it: the autoencoder's arrays, where it reads, how well it does."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import torch

from app.ids import new_id
from app.methods.features.sae import TopKSae

ARRAYS = ("encoder", "encoder_bias", "decoder", "pre_bias")


def description(record: object, width: int) -> dict:
    """The API's view of a dictionary, from a record or a stored row (whose weights need not be read)."""
    fields = ("id", "name", "model_name", "model_revision", "layer", "site", "k", "params", "metrics")
    return {
        **{name: getattr(record, name) for name in fields},
        "width": width,
        "created_at": record.created_at.isoformat(),  # type: ignore[attr-defined]
    }


@dataclass
class FeatureDictionary:
    """TopK SAE weights (numpy, float32) for activations at (layer, site) of one model revision."""

    name: str
    model_name: str
    model_revision: str
    layer: int
    site: str
    k: int
    scale: float
    encoder: np.ndarray  # [d, latent]
    encoder_bias: np.ndarray  # [latent]
    decoder: np.ndarray  # [latent, d] unit rows: each feature's direction
    pre_bias: np.ndarray  # [d]
    params: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    id: str = field(default_factory=new_id)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def width(self) -> int:
        return int(self.decoder.shape[0])

    def describe(self) -> dict:
        """What the API and pages show: identity, where it reads, width, k, params and held-out metrics."""
        return description(self, self.width)

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in ARRAYS} | {"scale": np.array(self.scale)}

    def sae(self) -> TopKSae:
        """The autoencoder these weights make (CPU, float32, eval)."""
        sae = TopKSae(self.decoder.shape[1], self.width, self.k, self.scale)
        with torch.no_grad():
            for name in ARRAYS:
                getattr(sae, name).copy_(torch.from_numpy(np.asarray(getattr(self, name))))
        return sae.eval()

    @classmethod
    def from_sae(cls, sae: TopKSae, **fields: object) -> FeatureDictionary:
        def get(tensor: torch.Tensor) -> np.ndarray:
            return tensor.detach().float().cpu().numpy().copy()

        return cls(
            k=sae.k,
            scale=float(sae.scale),
            encoder=get(sae.encoder),
            encoder_bias=get(sae.encoder_bias),
            decoder=get(sae.decoder),
            pre_bias=get(sae.pre_bias),
            **fields,  # type: ignore[arg-type]
        )


_PARAMETER = {
    "encoder": "encoder",
    "encoder_bias": "encoder_bias",
    "decoder": "decoder",
    "pre_bias": "pre_bias",
}
