"""The method registry: an explicit dict literal, one entry per algorithm."""

from __future__ import annotations

from app.errors import UnknownMethod
from app.methods.attribution.attnlrp import AttnLrp
from app.methods.attribution.decompx import DecompX
from app.methods.attribution.gradients import GradientXInput, IntegratedGradientsMethod, SaliencyMethod
from app.methods.attribution.iba import InformationBottleneck
from app.methods.attribution.mixing_rows import AltiRow, AttentionRolloutRow, ValueZeroingRow
from app.methods.attribution.perturbation import LimeMethod, OcclusionMethod
from app.methods.base import Method
from app.methods.mixing.alti import Alti
from app.methods.mixing.attention import Attention
from app.methods.mixing.attention_norm import AttentionNorm
from app.methods.mixing.attention_rollout import AttentionRollout
from app.methods.mixing.decompx import DecompxMixing
from app.methods.mixing.value_zeroing import ValueZeroing
from app.methods.probes.structural_probe import StructuralProbe

METHODS: dict[str, Method] = {
    Attention.name: Attention(),
    ValueZeroing.name: ValueZeroing(),
    AttentionRollout.name: AttentionRollout(),
    AttentionNorm.name: AttentionNorm(),
    Alti.name: Alti(),
    DecompxMixing.name: DecompxMixing(),
    InformationBottleneck.name: InformationBottleneck(),
    IntegratedGradientsMethod.name: IntegratedGradientsMethod(),
    GradientXInput.name: GradientXInput(),
    SaliencyMethod.name: SaliencyMethod(),
    LimeMethod.name: LimeMethod(),
    OcclusionMethod.name: OcclusionMethod(),
    ValueZeroingRow.name: ValueZeroingRow(),
    AttentionRolloutRow.name: AttentionRolloutRow(),
    AltiRow.name: AltiRow(),
    DecompX.name: DecompX(),
    AttnLrp.name: AttnLrp(),
    StructuralProbe.name: StructuralProbe(),
}


def get_method(name: str) -> Method:
    """The registered method called ``name``; unknown names list the valid ones."""
    try:
        return METHODS[name]
    except (KeyError, TypeError):
        raise UnknownMethod(str(name), METHODS) from None
