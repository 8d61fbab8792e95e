"""Attention-derived token attribution: a context-mixing method's rolled-out row as token scores.

The row of the position the prediction is read from ([CLS], or the [MASK] for masked-token targets; or the
mean of all word rows, matching mean-pooled sentence embeddings), after rolling the mixing matrices out over
all layers. As compared with gradient and perturbation attributions by Abnar & Zuidema (ACL 2020,
https://arxiv.org/abs/2005.00928) for ``attention_rollout`` and by Mohebbi et al. (EACL 2023,
https://aclanthology.org/2023.eacl-main.245/) for ``value_zeroing``, and by Ferrando et al. (EMNLP 2022,
https://arxiv.org/abs/2203.04212) and Modarressi et al. (DecompX, ACL 2023) for ``alti``. Unsigned shares;
the target only chooses the row (mixing does not depend on the explained label). Output: ``scores`` [token].
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from pydantic import BaseModel, ConfigDict

from app.methods.attribution.common import AttributionMethod
from app.methods.base import NoParams
from app.methods.mixing.alti import Alti
from app.methods.mixing.attention_rollout import AttentionRollout
from app.methods.mixing.value_zeroing import ValueZeroing
from app.modeling.encoding import Encoded
from app.modeling.loading import LoadedModel
from app.modeling.targets import BoundTarget


class RowParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    row: Literal["auto", "cls", "mean"] = "auto"


class MixingRowAttribution(AttributionMethod):
    """Token scores read from a mixing method's rollout (row of the prediction position)."""

    mixing: ClassVar[type] = ValueZeroing
    Params: ClassVar[type[BaseModel]] = RowParams
    signed: ClassVar[bool] = False

    def passes(self, params: BaseModel, tokens: int, layers: int) -> float:
        """The mixing method's cost, and the pass that binds the target."""
        return self.mixing().passes(NoParams(), tokens, layers) + 1.0

    def attribute(
        self, loaded: LoadedModel, encoded: Encoded, params: RowParams, target: BoundTarget
    ) -> tuple[torch.Tensor, dict]:
        rollout = torch.from_numpy(self.mixing().run(loaded, encoded, NoParams(), None).rollout)
        if params.row == "mean":
            words = [i for i, special in enumerate(encoded.special_mask) if not special]
            return rollout[words].mean(dim=0), {}
        position = target.position if target.position is not None and params.row == "auto" else 0
        return rollout[position], {}


class ValueZeroingRow(MixingRowAttribution):
    """Value Zeroing rollout row of the prediction position, as token attribution."""

    name: ClassVar[str] = "value_zeroing_row"
    title: ClassVar[str] = "Value Zeroing rollout row"
    citation: ClassVar[str] = "Mohebbi, Zuidema, Chrupała & Alishahi, EACL 2023"
    summary: ClassVar[str] = (
        "The Value Zeroing rollout read at the prediction position: which input tokens the "
        "prediction is built from."
    )
    mixing: ClassVar[type] = ValueZeroing


class AttentionRolloutRow(MixingRowAttribution):
    """Attention rollout row of the prediction position, as token attribution."""

    name: ClassVar[str] = "attention_rollout_row"
    title: ClassVar[str] = "Attention rollout row"
    citation: ClassVar[str] = "Abnar & Zuidema, ACL 2020"
    summary: ClassVar[str] = (
        "The attention rollout read at the prediction position: which input tokens it attends to "
        "through the layers."
    )
    mixing: ClassVar[type] = AttentionRollout


class AltiRow(MixingRowAttribution):
    """ALTI rollout row of the prediction position, as token attribution."""

    name: ClassVar[str] = "alti_row"
    title: ClassVar[str] = "ALTI rollout row"
    citation: ClassVar[str] = "Ferrando, Gállego & Costa-jussà, EMNLP 2022"
    summary: ClassVar[str] = (
        "The ALTI rollout read at the prediction position: each input token's share in the "
        "representation the prediction is read from."
    )
    mixing: ClassVar[type] = Alti
