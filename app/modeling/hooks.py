"""Context-managed forward hooks that always remove themselves, even when the body raises."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

OutputFn = Callable[[Any], Any]


def _first_tensor(output: Any) -> torch.Tensor:
    return output[0] if isinstance(output, tuple | list) else output


@contextmanager
def capture(modules: Mapping[str, nn.Module], *, detach: bool = True) -> Iterator[dict[str, Any]]:
    """Record each module's output under its key while the block runs.

    The yielded dict is filled during forward passes inside the block; a module called several times
    keeps its last output. Tuple outputs keep only their first element unless the key ends in ``:all``.
    """
    captured: dict[str, Any] = {}
    handles = []

    def make_hook(key: str) -> Callable[..., None]:
        keep_all = key.endswith(":all")

        def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
            value = output if keep_all else _first_tensor(output)
            if detach and isinstance(value, torch.Tensor):
                value = value.detach()
            captured[key] = value

        hook._bertscope = True
        return hook

    try:
        for key, module in modules.items():
            handles.append(module.register_forward_hook(make_hook(key)))
        yield captured
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def patch(modules: Mapping[nn.Module, OutputFn]) -> Iterator[None]:
    """Replace each module's output by ``fn(output)`` while the block runs."""
    handles = []

    def make_hook(fn: OutputFn) -> Callable[..., Any]:
        def hook(_module: nn.Module, _inputs: Any, output: Any) -> Any:
            return fn(output)

        hook._bertscope = True
        return hook

    try:
        for module, fn in modules.items():
            handles.append(module.register_forward_hook(make_hook(fn)))
        yield
    finally:
        for handle in handles:
            handle.remove()


def leftover_hooks(model: nn.Module) -> list[str]:
    """Names of modules still carrying a bertscope hook (should always be empty).

    transformers 5 installs its own persistent output-capturing hooks when attentions are requested;
    those are not ours and are ignored.
    """
    return [
        name or "<root>"
        for name, module in model.named_modules()
        for hook in [*module._forward_hooks.values(), *module._forward_pre_hooks.values()]
        if getattr(hook, "_bertscope", False)
    ]
