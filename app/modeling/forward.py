"""The clean forward pass: what every layer saw and computed on unmodified inputs, for one input or many.

Several inputs run as one right-padded batch (padding keys are masked out, so every real token sees exactly
the tokens it would see alone) and each input gets back its own tensors, trimmed to its tokens. This is the
unit of work the server's micro-batcher gathers from concurrent requests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from app.modeling.encoding import Encoded
from app.modeling.hooks import capture
from app.modeling.loading import LoadedModel


@dataclass
class CleanPass:
    """What every layer saw and computed on the unmodified input (batch dimension dropped)."""

    inputs: list[torch.Tensor]  # per layer: [token, hidden], the hidden states entering the layer
    attentions: list[torch.Tensor]  # per layer: [head, query, key]
    values: list[torch.Tensor]  # per layer: [token, all_head], value projection output (bias included)
    attention_outputs: list[torch.Tensor]  # per layer: [token, hidden], W_O context + b_O, before residual
    ffn: list[torch.Tensor] | None = None  # per layer: [token, unit], FFN activation output (when asked)


def pad_batch(loaded: LoadedModel, batch: Sequence[Encoded]) -> dict[str, torch.Tensor]:
    """Right-pad single inputs into one batch: ids, mask (and segment ids), each [batch, token]."""
    width = max(encoded.length for encoded in batch)
    pad_id = loaded.tokenizer.pad_token_id
    pad_id = 0 if pad_id is None else int(pad_id)
    device = batch[0].input_ids.device
    ids = torch.full((len(batch), width), pad_id, dtype=batch[0].input_ids.dtype, device=device)
    mask = torch.zeros((len(batch), width), dtype=batch[0].attention_mask.dtype, device=device)
    types = torch.zeros_like(ids) if batch[0].token_type_ids is not None else None
    for row, encoded in enumerate(batch):
        ids[row, : encoded.length] = encoded.input_ids[0]
        mask[row, : encoded.length] = encoded.attention_mask[0]
        if types is not None:
            types[row, : encoded.length] = encoded.token_type_ids[0]
    inputs = {"input_ids": ids, "attention_mask": mask}
    if types is not None:
        inputs["token_type_ids"] = types
    return inputs


@torch.no_grad()
def clean_passes(loaded: LoadedModel, batch: Sequence[Encoded], *, ffn: bool = False) -> list[CleanPass]:
    """One forward pass over ``batch`` recording, per input and layer, its input, attention, values and
    attention output (and FFN activations when ``ffn``). The caller holds the model lock."""
    model, adapter = loaded.model, loaded.adapter
    layers = range(loaded.num_layers)
    modules = {f"v{layer}": adapter.value_projection(model, layer) for layer in layers}
    modules |= {f"o{layer}": adapter.attention_output_projection(model, layer) for layer in layers}
    if ffn:
        modules |= {f"f{layer}": adapter.ffn_activation_module(model, layer) for layer in layers}
    inputs = batch[0].model_inputs() if len(batch) == 1 else pad_batch(loaded, batch)
    with capture(modules) as seen:
        outputs = adapter.encoder(model)(**inputs, output_attentions=True, output_hidden_states=True)
    passes = []
    for row, encoded in enumerate(batch):
        n = encoded.length
        passes.append(
            CleanPass(
                inputs=[outputs.hidden_states[layer][row, :n] for layer in layers],
                attentions=[outputs.attentions[layer][row, :, :n, :n] for layer in layers],
                values=[seen[f"v{layer}"][row, :n] for layer in layers],
                attention_outputs=[seen[f"o{layer}"][row, :n] for layer in layers],
                ffn=[seen[f"f{layer}"][row, :n] for layer in layers] if ffn else None,
            )
        )
    return passes


def clean_pass(loaded: LoadedModel, encoded: Encoded, *, ffn: bool = False) -> CleanPass:
    """The clean pass of a single input (no padding)."""
    return clean_passes(loaded, [encoded], ffn=ffn)[0]
