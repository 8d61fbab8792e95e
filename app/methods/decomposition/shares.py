"""How DecompX hands each bias vector to the tokens: ``absdot`` (the paper's default) or a bias column.

The decomposition holds, for every target token i, one vector per source token k plus one *bias part*
(the last source column). A bias b added to token i's representation is split among the sources by

* ``absdot`` (Modarressi et al., ACL 2023, section 3, "bias_decomp_type='absdot'" in the released code):
  share_ik = |<c_ik, b>| / sum_k' |<c_ik', b>|, the absolute dot products of the token components c_ik (before
  the bias) with b. Rows whose components are all orthogonal to b (every weight 0) keep b in the bias part,
  so nothing is lost; the released code would drop it there (it divides by sum + 1e-12);
* ``bias_token``: every bias goes to the bias part (the released code's ``include_bias_token``), so the
  token columns carry only what the tokens themselves contribute.

Either way the shares of a row sum to 1: the components plus the bias part still sum to the real vector.
"""

from __future__ import annotations

from typing import Literal

import torch

BiasMode = Literal["absdot", "bias_token"]


def bias_shares(dots: torch.Tensor, mode: BiasMode) -> torch.Tensor:
    """Shares [target, source + 1] of one bias vector from the dots <c_ik, b> [target, source + 1].

    The last column is the bias part: it never takes an ``absdot`` share of its own (its dot is ignored) and
    takes the whole bias where every token weight is 0, or always in ``bias_token`` mode.
    """
    shares = torch.zeros_like(dots)
    if mode == "bias_token":
        shares[:, -1] = 1
        return shares
    weights = dots.abs()
    weights[:, -1] = 0
    total = weights.sum(dim=-1, keepdim=True)
    empty = total[:, 0] == 0
    shares = weights / torch.where(total == 0, torch.ones_like(total), total)
    shares[empty, -1] = 1
    return shares
