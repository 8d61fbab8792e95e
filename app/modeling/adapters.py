"""Architecture adapters: the one place that knows module paths inside each supported encoder.

A method asks for "the value projection of layer l"; the adapter answers with the module. Adding an
architecture means adding one entry to ``ADAPTERS``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from torch import nn

from app.errors import UnsupportedArchitecture


@dataclass(frozen=True)
class ModelAdapter:
    """Module paths, relative to the encoder (``model.base_model``) or to one of its blocks."""

    model_type: str
    embeddings_path: str
    blocks_path: str
    self_attention_path: str
    query_path: str
    key_path: str
    value_path: str
    attention_output_path: str
    attention_layer_norm_path: str
    ffn_input_path: str
    ffn_activation_path: str
    ffn_output_path: str
    output_layer_norm_path: str

    def encoder(self, model: nn.Module) -> nn.Module:
        """The bare encoder, whatever head sits on top of it."""
        return model.base_model

    def block_list(self, model: nn.Module) -> nn.ModuleList:
        """The transformer blocks in order, first to last."""
        return self.encoder(model).get_submodule(self.blocks_path)

    def num_layers(self, model: nn.Module) -> int:
        return len(self.block_list(model))

    def block(self, model: nn.Module, layer: int) -> nn.Module:
        """Block ``layer`` (0-based); its output is the hidden state after that layer."""
        return self.block_list(model)[layer]

    def _in_block(self, model: nn.Module, layer: int, path: str) -> nn.Module:
        return self.block(model, layer).get_submodule(path)

    @contextmanager
    def blocks_replaced(self, model: nn.Module, blocks: list[nn.Module]) -> Iterator[None]:
        """Run the encoder over ``blocks`` instead of its own block list while the block runs."""
        parent_path, _, attribute = self.blocks_path.rpartition(".")
        parent = self.encoder(model).get_submodule(parent_path) if parent_path else self.encoder(model)
        original = getattr(parent, attribute)
        setattr(parent, attribute, nn.ModuleList(blocks))
        try:
            yield
        finally:
            setattr(parent, attribute, original)

    def embedding_module(self, model: nn.Module) -> nn.Module:
        return self.encoder(model).get_submodule(self.embeddings_path)

    def self_attention_module(self, model: nn.Module, layer: int) -> nn.Module:
        """The module whose second output is the attention probabilities [batch, head, query, key]."""
        return self._in_block(model, layer, self.self_attention_path)

    def query_projection(self, model: nn.Module, layer: int) -> nn.Linear:
        return self._in_block(model, layer, self.query_path)

    def key_projection(self, model: nn.Module, layer: int) -> nn.Linear:
        return self._in_block(model, layer, self.key_path)

    def value_projection(self, model: nn.Module, layer: int) -> nn.Linear:
        return self._in_block(model, layer, self.value_path)

    def attention_output_projection(self, model: nn.Module, layer: int) -> nn.Linear:
        """W_O: maps the concatenated heads back to the hidden size."""
        return self._in_block(model, layer, self.attention_output_path)

    def attention_layer_norm(self, model: nn.Module, layer: int) -> nn.LayerNorm:
        """LayerNorm applied to (attention output + residual)."""
        return self._in_block(model, layer, self.attention_layer_norm_path)

    def ffn_input_projection(self, model: nn.Module, layer: int) -> nn.Linear:
        """W_1: hidden -> intermediate, before the non-linearity."""
        return self._in_block(model, layer, self.ffn_input_path)

    def ffn_activation_module(self, model: nn.Module, layer: int) -> nn.Module:
        """Output = the FFN neurons after the non-linearity [batch, token, intermediate]."""
        return self._in_block(model, layer, self.ffn_activation_path)

    def ffn_output_projection(self, model: nn.Module, layer: int) -> nn.Linear:
        return self._in_block(model, layer, self.ffn_output_path)

    def output_layer_norm(self, model: nn.Module, layer: int) -> nn.LayerNorm:
        """LayerNorm applied to (FFN output + residual); its output is the block output."""
        return self._in_block(model, layer, self.output_layer_norm_path)


_BERT_LIKE = {
    "embeddings_path": "embeddings",
    "blocks_path": "encoder.layer",
    "self_attention_path": "attention.self",
    "query_path": "attention.self.query",
    "key_path": "attention.self.key",
    "value_path": "attention.self.value",
    "attention_output_path": "attention.output.dense",
    "attention_layer_norm_path": "attention.output.LayerNorm",
    "ffn_input_path": "intermediate.dense",
    "ffn_activation_path": "intermediate.intermediate_act_fn",
    "ffn_output_path": "output.dense",
    "output_layer_norm_path": "output.LayerNorm",
}

ADAPTERS: dict[str, ModelAdapter] = {
    "bert": ModelAdapter(model_type="bert", **_BERT_LIKE),
    "roberta": ModelAdapter(model_type="roberta", **_BERT_LIKE),
    "xlm-roberta": ModelAdapter(model_type="xlm-roberta", **_BERT_LIKE),
    "camembert": ModelAdapter(model_type="camembert", **_BERT_LIKE),
    "electra": ModelAdapter(model_type="electra", **_BERT_LIKE),
    "distilbert": ModelAdapter(
        model_type="distilbert",
        embeddings_path="embeddings",
        blocks_path="transformer.layer",
        self_attention_path="attention",
        query_path="attention.q_lin",
        key_path="attention.k_lin",
        value_path="attention.v_lin",
        attention_output_path="attention.out_lin",
        attention_layer_norm_path="sa_layer_norm",
        ffn_input_path="ffn.lin1",
        ffn_activation_path="ffn.activation",
        ffn_output_path="ffn.lin2",
        output_layer_norm_path="output_layer_norm",
    ),
}


def adapter_for(model_type: str) -> ModelAdapter:
    """The adapter for a ``config.model_type``; unknown types list the supported ones."""
    try:
        return ADAPTERS[model_type]
    except KeyError:
        supported = ", ".join(sorted(ADAPTERS))
        raise UnsupportedArchitecture(
            f"Architecture {model_type!r} is not supported. Supported model types: {supported}."
        ) from None
