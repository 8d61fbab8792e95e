"""The neuron activation index: one streaming pass over a corpus records, for every FFN neuron, its top-k
exemplar tokens, activation statistics and a fixed-edge histogram (see :mod:`app.methods.neurons.stats`).

A neuron is one unit of a block's FFN non-linearity output (post-GELU), ``[layer, unit]``; exemplar-based
neuron descriptions (Bolukbasi et al. 2021, https://arxiv.org/abs/2104.07143; Mondal et al., arXiv
2401.16731, 2024) start from the sentences that activate a neuron most. Sentences are tokenised once,
truncated to ``max_tokens``, sorted longest first and run in batches through the bare encoder; a hook on each
layer's activation module folds the batch into the running state while the activations are still in cache:
on the CPU with one compiled kernel per layer (:mod:`app.methods.neurons.fold_cpu`), elsewhere (GPUs) with
torch operations (:func:`fold_statistics` and :class:`RunningTopK`); both give the same state. The forward
pass stops once the last hooked module has been folded: a basis that reads one middle layer (a dictionary's
features, :mod:`app.methods.neurons.units`) runs only the blocks up to it. Special
tokens ([CLS], [SEP], padding, and special tokens typed in the text) are never counted.

The build checks ``should_stop()`` between batches, reports ``progress(done, total)`` after each, hands a
checkpoint state to ``checkpoint(state)`` every ``checkpoint_every`` batches, and resumes from such a state.
Given ``exclusive`` (see :mod:`app.methods.callbacks`), it holds the model only while the model runs
(tokenising the corpus, then one batch's forward pass with its hooks at a time), so that interactive
requests interleave with a long build; progress reports and checkpoints happen outside it. Storing the
state is the job's business (:mod:`app.jobs.neurons`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from app.errors import InvalidInput
from app.methods.callbacks import Exclusive, Progress, ShouldStop, no_exclusion
from app.methods.neurons.corpora import DEFAULT_BATCH_SIZE, Batch, BatchPlan, plan_batches
from app.methods.neurons.fold_cpu import compiled_fold_available, fold_layer, heapify, warm_up
from app.methods.neurons.stats import DEFAULT_K, IndexState, fold_statistics
from app.methods.neurons.topk import (
    CANDIDATE_GROUP,
    EMPTY_KEY,
    MAX_SENTENCES,
    RunningTopK,
    decode_keys,
    encode_keys,
    sort_keys,
    tiebreak_codes,
)
from app.methods.neurons.units import NEURONS, UnitBasis, first_tensor
from app.modeling.hooks import capture, patch
from app.modeling.loading import LoadedModel

DEFAULT_CHECKPOINT_EVERY = 50  # batches between checkpoints
MAX_K = 1000

Checkpoint = Callable[[IndexState], None]


def ffn_modules(loaded: LoadedModel) -> list[nn.Module]:
    """Each layer's FFN activation module; its output [batch, token, unit] is what a neuron index records."""
    return NEURONS.modules(loaded)


def run_encoder(loaded: LoadedModel, batch: Batch) -> None:
    """One forward pass of the bare encoder (no task head: the index only needs the blocks)."""
    device = loaded.device
    loaded.adapter.encoder(loaded.model)(
        input_ids=batch.input_ids.to(device, non_blocking=True),
        attention_mask=batch.attention_mask.to(device, non_blocking=True),
    )


class _Workspace:
    """Reused scratch tensors: fresh multi-megabyte tensors per layer and batch cost page faults."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._buffers: dict[str, torch.Tensor] = {}

    def get(self, name: str, shape: tuple[int, int], dtype: torch.dtype) -> torch.Tensor:
        """A contiguous [rows, columns] tensor, carved from a buffer that only ever grows."""
        buffer = self._buffers.get(name)
        if buffer is None or buffer.shape[0] < shape[0] or buffer.shape[1] != shape[1]:
            buffer = torch.empty(shape, dtype=dtype, device=self.device)
            self._buffers[name] = buffer
        return buffer[: shape[0]]


class _LastSlotFolded(Exception):
    """Raised by the last slot's hook: the blocks after it cannot change what the index records."""


class _Accumulator:
    """The index state on the model's device while a build runs; hooks fold each layer in as it runs."""

    def __init__(
        self,
        state: IndexState,
        device: torch.device,
        compiled: bool | None = None,
        basis: UnitBasis = NEURONS,
    ) -> None:
        def put(array: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(array.copy()).to(device)

        self.k = state.k
        self.num_sentences = state.num_sentences
        filled = put(state.top_sentences >= 0)
        codes = tiebreak_codes(put(state.top_sentences.clip(0)), put(state.top_positions.clip(0)))
        keys = encode_keys(put(state.top_values), codes).masked_fill(~filled, EMPTY_KEY)  # [l, u, k]
        self.compiled = compiled_fold_available(device) if compiled is None else compiled
        if self.compiled:
            self.heaps = keys.clone()  # [layer, unit, k] min-heaps: the root is the admission bound
            for layer_heap in self.heaps.numpy():
                heapify(layer_heap)
            self.bounds = self.heaps[..., 0] >> 32  # [layer, unit]
        else:
            self.top = [RunningTopK(layer_keys.clone()) for layer_keys in keys]
        self.total, self.total_squares = put(state.total), put(state.total_squares)
        self.minimum, self.maximum = put(state.minimum), put(state.maximum)
        self.histogram = put(state.histogram.transpose(0, 2, 1))  # [layer, slot, unit]
        self.tokens = state.tokens
        self.device = device
        self.basis = basis
        self._workspace = _Workspace(device)
        self._token_index = torch.empty(0, dtype=torch.int64)  # [token] flat index of counted tokens
        self._codes = torch.empty(0, dtype=torch.int64)  # [token] tie-break codes
        self._last_slot = -1  # the slot whose hook ends the forward pass (set per batch)

    def observe(self, layer: int, output: torch.Tensor) -> torch.Tensor:
        """Forward-hook body: fold slot ``layer``'s unit values [batch, token, unit] into the state; the
        module's output passes on unchanged."""
        self._fold_values(layer, self.basis.values(layer, first_tensor(output)))
        if layer == self._last_slot:
            raise _LastSlotFolded  # stop the forward pass here (a dictionary at layer 3 of 12 runs 3 blocks)
        return output

    def _fold_values(self, layer: int, output: torch.Tensor) -> None:
        units = output.shape[-1]
        if self.compiled:
            fold_layer(
                output.reshape(-1, units).to(torch.float32).contiguous(),
                self._token_index,
                self._codes,
                self.total[layer],
                self.total_squares[layer],
                self.minimum[layer],
                self.maximum[layer],
                self.histogram[layer],
                self.heaps[layer],
                self.bounds[layer],
            )
            return
        tokens = int(self._token_index.shape[0])
        shape = (tokens, units)
        groups = -(-tokens // CANDIDATE_GROUP)
        padded = self._workspace.get("values", (groups * CANDIDATE_GROUP, units), torch.float32)
        padded[tokens:] = float("-inf")  # the tail of the last candidate group
        x = padded[:tokens]  # [token, unit] the counted tokens, in float32 whatever the model's dtype
        flat = output.reshape(-1, units)
        if flat.dtype == torch.float32:
            torch.index_select(flat, 0, self._token_index, out=x)
        else:
            x.copy_(flat.index_select(0, self._token_index))
        group_max = padded.view(-1, CANDIDATE_GROUP, units).amax(1)  # [group, unit]
        fold_statistics(
            x,
            self.total[layer],
            self.total_squares[layer],
            self.minimum[layer],
            self.maximum[layer],
            self.histogram[layer],
            self._workspace.get("scratch", shape, torch.float32),
            self._workspace.get("slots", shape, torch.int64),
            group_max,
        )
        self.top[layer].fold(x, self._codes, padded, group_max)

    def fold(self, loaded: LoadedModel, batch: Batch, modules: list[nn.Module]) -> None:
        """Run one batch with the hooks on: every layer is folded in while its activations are fresh.

        Nothing is copied to the host; on CUDA the sparse top-k's ``nonzero`` waits for the device a few
        times per layer, which costs far less than ranking every token of every neuron.
        """
        width = batch.valid.shape[1]
        token_index = batch.valid.view(-1).nonzero().squeeze(1)  # [token] flat (row * width + position)
        if token_index.shape[0] == 0:
            return  # only special tokens: nothing to count
        codes = tiebreak_codes(batch.sentence_ids[token_index // width], token_index % width)
        self._token_index = token_index.to(self.device, non_blocking=True)
        self._codes = codes.to(self.device, non_blocking=True)
        self._last_slot = len(modules) - 1
        with patch({module: partial(self.observe, layer) for layer, module in enumerate(modules)}):
            try:
                run_encoder(loaded, batch)
            except _LastSlotFolded:
                pass
        self.tokens += int(token_index.shape[0])

    def state(self, num_sentences: int, sentences_done: int) -> IndexState:
        """A numpy copy of the state (later batches do not change it)."""

        def get(tensor: torch.Tensor) -> np.ndarray:
            return tensor.cpu().numpy().copy()

        if self.compiled:
            keys = self.heaps
        else:
            keys = torch.stack([top.flush() for top in self.top])  # [layer, unit, k]
        values, sentences, positions = (get(t) for t in decode_keys(sort_keys(keys)))
        return IndexState(
            k=self.k,
            num_sentences=num_sentences,
            sentences_done=sentences_done,
            tokens=self.tokens,
            top_values=values,
            top_sentences=sentences,
            top_positions=positions,
            total=get(self.total),
            total_squares=get(self.total_squares),
            minimum=get(self.minimum),
            maximum=get(self.maximum),
            histogram=get(self.histogram.transpose(1, 2)),
        )


def start_state(
    loaded: LoadedModel,
    sentences: list[str],
    k: int,
    resume: IndexState | None,
    num_sentences: int | None = None,
    basis: UnitBasis = NEURONS,
) -> IndexState:
    """A fresh (or the resumed) state for a corpus of ``sentences`` (or of ``num_sentences``, for a shard)."""
    num_sentences = len(sentences) if num_sentences is None else num_sentences
    if not 1 <= k <= MAX_K:
        raise InvalidInput(f"k (exemplars per neuron) must be between 1 and {MAX_K} (got {k}).")
    if num_sentences > MAX_SENTENCES:
        raise InvalidInput(
            f"The corpus has {num_sentences} sentences; one build takes at most {MAX_SENTENCES}. "
            "Split it into shards and merge their states."
        )
    layers, units = basis.shape(loaded)
    if resume is None:
        return IndexState.empty(layers, units, k, num_sentences)
    expected = (k, layers, units, num_sentences)
    if (resume.k, resume.num_layers, resume.num_units, resume.num_sentences) != expected:
        raise InvalidInput(
            "The saved index state does not fit this build (different k, model or corpus); start it afresh."
        )
    return resume


def build_state(
    loaded: LoadedModel,
    sentences: list[str],
    *,
    k: int = DEFAULT_K,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_tokens: int | None = None,
    resume: IndexState | None = None,
    progress: Progress | None = None,
    should_stop: ShouldStop | None = None,
    checkpoint: Checkpoint | None = None,
    checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY,
    exclusive: Exclusive = no_exclusion,
    basis: UnitBasis = NEURONS,
) -> IndexState:
    """Index ``sentences`` (or continue ``resume``); returns a partial state when ``should_stop()`` said so.

    Resuming with the same ``batch_size`` and ``max_tokens`` gives exactly the uninterrupted result. The
    model is held (``exclusive``) per batch only (see the module docstring). ``basis``: the units counted
    (:mod:`app.methods.neurons.units`; default the FFN neurons).
    """
    state = start_state(loaded, sentences, k, resume, basis=basis)
    with exclusive():
        plan = plan_batches(loaded, sentences, batch_size, max_tokens)
    if checkpoint_every < 1:
        raise InvalidInput(f"checkpoint_every must be at least 1 batch (got {checkpoint_every}).")
    accumulator = _Accumulator(state, loaded.device, basis=basis)
    done = _fold_batches(
        loaded,
        accumulator,
        plan.batches(start=state.sentences_done),
        state.sentences_done,
        progress=progress,
        should_stop=should_stop,
        exclusive=exclusive,
        checkpoint=checkpoint,
        checkpoint_every=checkpoint_every,
    )
    return accumulator.state(len(sentences), done)


def build_shard(
    loaded: LoadedModel, shard: BatchPlan, k: int, num_sentences: int, basis: UnitBasis = NEURONS
) -> IndexState:
    """The state of one shard of a corpus's batch plan (:meth:`BatchPlan.shard`), sentence ids global:
    what a worker builds; :func:`app.methods.neurons.stats.combine` joins shards into the corpus's state,
    equal byte for byte to :func:`build_state` over the whole plan (same batch size and thread count)."""
    state = start_state(loaded, [], k, None, num_sentences, basis=basis)
    accumulator = _Accumulator(state, loaded.device, basis=basis)
    done = _fold_batches(loaded, accumulator, shard.batches(), 0)
    return accumulator.state(num_sentences, done)


def _fold_batches(
    loaded: LoadedModel,
    accumulator: _Accumulator,
    batches: Iterator[Batch],
    done: int,
    *,
    progress: Progress | None = None,
    should_stop: ShouldStop | None = None,
    exclusive: Exclusive = no_exclusion,
    checkpoint: Checkpoint | None = None,
    checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY,
) -> int:
    """Fold ``batches`` in; returns the sentences done (``done`` before them) when they end or stop."""
    if accumulator.compiled:
        warm_up()  # the first call in a process compiles for seconds: not while holding the model lock
    modules = accumulator.basis.modules(loaded)
    total = accumulator.num_sentences
    with torch.inference_mode():
        for number, batch in enumerate(batches, start=1):
            if should_stop is not None and should_stop():
                break
            with exclusive():
                accumulator.fold(loaded, batch, modules)
            done += len(batch)
            if progress is not None:
                progress(done, total)
            if checkpoint is not None and number % checkpoint_every == 0 and done < total:
                checkpoint(accumulator.state(total, done))
    return done


class TokenActivations(NamedTuple):
    """One sentence as the index saw it: tokens (specials included) and one neuron's activation per token.

    Positions match exemplar positions; special tokens, which the index ignores, carry NaN.
    """

    tokens: list[str]
    activations: np.ndarray  # [token] float32


def token_activations(
    loaded: LoadedModel,
    sentences: list[str],
    layer: int,
    unit: int,
    max_tokens: int | None = None,
    basis: UnitBasis = NEURONS,
) -> list[TokenActivations]:
    """Unit (layer, unit) of ``basis`` (default: a neuron) on every token of ``sentences`` in one batched
    forward (for exemplar shading); ``layer`` is the basis's slot."""
    layers, units = basis.shape(loaded)
    if not 0 <= layer < layers or not 0 <= unit < units:
        raise InvalidInput(
            f"Unit ({layer}, {unit}) does not exist: {basis.key} of {loaded.name} has slots 0-{layers - 1} "
            f"and units 0-{units - 1}."
        )
    if not sentences:
        return []
    plan = plan_batches(loaded, sentences, len(sentences), max_tokens)
    batch = plan.batch(np.arange(len(sentences)))
    module = basis.modules(loaded)[layer]
    with torch.inference_mode(), capture({"unit": module}) as captured:
        run_encoder(loaded, batch)
        values = basis.values(layer, captured["unit"])[..., unit].float().cpu()  # [sentence, token]
    values = values.masked_fill(~batch.valid, float("nan")).numpy()
    return [
        TokenActivations(loaded.tokenizer.convert_ids_to_tokens(ids), values[row, : len(ids)])
        for row, ids in enumerate(plan.token_ids)
    ]


def sentence_activations(
    loaded: LoadedModel,
    sentences: list[str],
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_tokens: int | None = None,
    dtype: type[np.floating] = np.float32,
) -> np.ndarray:
    """[sentence, layer, unit] max activation over each sentence's non-special tokens (NaN if none).

    One preallocated array (float16 halves it: 5,000 sentences x 9,216 neurons is 92 MB); for scoring
    neurons against sentence labels, e.g. by AUROC.
    """
    plan = plan_batches(loaded, sentences, batch_size, max_tokens)
    modules = ffn_modules(loaded)
    result = np.empty((len(sentences), len(modules), loaded.num_units), dtype=dtype)
    for batch in plan.batches():
        valid = batch.valid.to(loaded.device)[..., None]  # [batch, token, 1]
        maxima: list[torch.Tensor] = []  # per layer, in forward order

        def keep(output: torch.Tensor, valid: torch.Tensor = valid, maxima: list = maxima) -> torch.Tensor:
            maxima.append(output.masked_fill(~valid, float("-inf")).amax(dim=1))  # [batch, unit]
            return output

        with torch.inference_mode(), patch(dict.fromkeys(modules, keep)):
            run_encoder(loaded, batch)
        block = torch.stack(maxima, dim=1).float().cpu().numpy()  # [batch, layer, unit]
        result[batch.sentence_ids.numpy()] = np.where(np.isneginf(block), np.nan, block)
    return result
