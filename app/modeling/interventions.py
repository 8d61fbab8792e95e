"""Splice a transformed hidden state back into the model at one layer, for interventions such as concept
erasure (Elazar et al., "Amnesic Probing", TACL 2021: erase a property from layer L and let the later layers
run on what is left).

Layers follow the hidden-state convention of the probes: layer 0 is the input of the first block (the
embedding output, after ELECTRA's projection), layer l >= 1 the output of block l. The hooks remove
themselves in ``finally`` and carry the ``_bertscope`` mark that ``hooks.leftover_hooks`` looks for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from app.errors import InvalidInput
from app.modeling.loading import LoadedModel

HiddenFn = Callable[[torch.Tensor], torch.Tensor]


def _replace_first(value: Any, fn: HiddenFn) -> Any:
    """``fn`` applied to a tensor, or to the first element of a tuple/list output (the rest kept)."""
    if isinstance(value, torch.Tensor):
        return fn(value)
    if isinstance(value, tuple | list) and value and isinstance(value[0], torch.Tensor):
        return type(value)([fn(value[0]), *value[1:]])
    raise TypeError(f"Cannot splice into an output of type {type(value).__name__}.")


@contextmanager
def spliced_hidden_state(loaded: LoadedModel, layer: int, fn: HiddenFn) -> Iterator[None]:
    """While the block runs, hidden state ``layer`` [batch, token, hidden] is replaced by ``fn(state)`` at
    every position before any later block reads it; the model's own hidden-state outputs see the replaced
    state too (our hook runs before transformers' output-capturing hooks)."""
    count = loaded.num_layers
    if not 0 <= layer <= count:
        raise InvalidInput(f"Layer {layer} does not exist; the model has hidden states 0..{count}.")
    handle: torch.utils.hooks.RemovableHandle | None = None
    if layer == 0:
        block = loaded.adapter.block(loaded.model, 0)

        def pre_hook(_module: nn.Module, args: tuple) -> tuple:
            return (fn(args[0]), *args[1:])  # every adapter's encoder passes hidden_states first

        pre_hook._bertscope = True
        handle = block.register_forward_pre_hook(pre_hook)
    else:
        block = loaded.adapter.block(loaded.model, layer - 1)

        def hook(_module: nn.Module, _inputs: Any, output: Any) -> Any:
            return _replace_first(output, fn)

        hook._bertscope = True
        handle = block.register_forward_hook(hook, prepend=True)
    try:
        yield
    finally:
        handle.remove()
