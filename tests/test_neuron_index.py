"""The neuron activation index: key order, streaming top-k, statistics, merging, resuming, hooks.

The reference is the slow, obvious computation: capture every FFN activation with plain hooks, keep the
non-special tokens, and compute top-k (by sorting), statistics and histograms in numpy. Every test runs on
both fold paths: the compiled CPU kernel and the torch path that GPUs take.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
import torch

from app.data import SAMPLE_CORPUS
from app.errors import InvalidInput
from app.methods.neurons.corpora import plan_batches, read_corpus
from app.methods.neurons.index import (
    build_shard,
    build_state,
    ffn_modules,
    run_encoder,
    sentence_activations,
    token_activations,
)
from app.methods.neurons.stats import (
    HISTOGRAM_SLOTS,
    SUM_QUANTUM,
    IndexState,
    combine,
    histogram_edges,
    merge,
    quantise,
)
from app.methods.neurons.topk import (
    EMPTY_KEY,
    decode_keys,
    encode_keys,
    fold_topk,
    kth_values,
    merge_topk_arrays,
    sort_keys,
    tiebreak_codes,
)
from app.modeling.hooks import capture, leftover_hooks
from app.store.codec import pack, unpack
from tests.numerics import assert_float32_close, encoder_reduction_length, float32_difference_bound

CORPUS = [
    "the cat sat on the mat",
    "a dog is good",
    "this movie was very bad",
    "i have a big old table",
    "they could not sit",
    "the keys to the cabinet are on the table",
    "it is",
    "we will be first",
    "the cat sat on the mat",  # a duplicate: exact ties, broken by the lower sentence id
    "my old dog was good ! [MASK] was not",  # a special token typed in the text is not counted
    "how can he be so little ?",
    "she had a long review of the new movie",
]
K = 3
_PER_NEURON = (
    "top_values",
    "top_sentences",
    "top_positions",
    "total",
    "total_squares",
    "minimum",
    "maximum",
    "histogram",
)


def _reference(loaded, sentences, batch_size=1):
    """Every non-special token's activations [token, layer, unit] with sentence ids and positions.

    With the ``batch_size`` of the build under test, the reference runs the very same padded batches in the
    same process, so it sees bitwise the same activations: exemplars, extremes and histograms are then
    selections and counts of equal floats and are compared exactly. Only sums (which fold in another order)
    and results of other batchings (float32 rounding, see ``tests/numerics.py``) get a tolerance.
    """
    plan = plan_batches(loaded, sentences, batch_size)
    modules = {str(layer): module for layer, module in enumerate(ffn_modules(loaded))}
    values, sentence_ids, positions = [], [], []
    for batch in plan.batches():
        with torch.inference_mode(), capture(modules) as captured:
            run_encoder(loaded, batch)
        activations = torch.stack([captured[str(layer)] for layer in range(len(modules))], dim=-2)
        rows, columns = batch.valid.nonzero(as_tuple=True)
        values.append(activations[rows, columns].numpy())
        sentence_ids.append(batch.sentence_ids[rows].numpy())
        positions.append(columns.numpy())
    return np.concatenate(values), np.concatenate(sentence_ids), np.concatenate(positions)


def _assert_matches_reference(state: IndexState, values, sentence_ids, positions) -> None:
    layers, units = values.shape[1:]
    assert state.tokens == values.shape[0]
    np.testing.assert_allclose(state.total, values.sum(0, dtype=np.float64), rtol=1e-5, atol=1e-4)
    squares = (values.astype(np.float64) ** 2).sum(0)
    np.testing.assert_allclose(state.total_squares, squares, rtol=1e-5, atol=1e-4)
    np.testing.assert_array_equal(state.minimum, values.min(0))
    np.testing.assert_array_equal(state.maximum, values.max(0))
    slots = np.searchsorted(histogram_edges(), values.astype(np.float64), side="right")
    for layer in range(layers):
        for unit in range(units):
            counts = np.bincount(slots[:, layer, unit], minlength=HISTOGRAM_SLOTS)
            np.testing.assert_array_equal(state.histogram[layer, unit], counts)
            column = values[:, layer, unit]
            order = np.lexsort((positions, sentence_ids, -column))[: state.k]
            np.testing.assert_array_equal(state.top_values[layer, unit], column[order])
            np.testing.assert_array_equal(state.top_sentences[layer, unit], sentence_ids[order])
            np.testing.assert_array_equal(state.top_positions[layer, unit], positions[order])


def _assert_same_state(a: IndexState, b: IndexState) -> None:
    """Equal byte for byte: exemplars, counts, histograms and the (quantised, so order-free) sums."""
    for name in _PER_NEURON:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert (a.tokens, a.num_sentences, a.sentences_done, a.k) == (
        b.tokens,
        b.num_sentences,
        b.sentences_done,
        b.k,
    )


# --- keys and the streaming top-k on hand-made tensors -----------------------------------------------


def test_keys_order_by_value_then_sentence_then_position():
    values = torch.tensor([2.0, 2.0, 2.0, -1.0, -0.5, 0.0, -0.0, 3.5])
    sentences = torch.tensor([4, 2, 2, 0, 0, 7, 1, 9])
    positions = torch.tensor([1, 5, 3, 1, 2, 1, 1, 6])
    keys = encode_keys(values, tiebreak_codes(sentences, positions))
    order = torch.argsort(keys, descending=True).tolist()
    # 3.5; the three 2.0s by sentence then position; 0 and -0 tie (sentence 1 first); -0.5; -1
    assert order == [7, 2, 1, 0, 6, 5, 4, 3]
    decoded_values, decoded_sentences, decoded_positions = decode_keys(keys)
    assert torch.equal(decoded_values, values + 0.0)
    assert torch.equal(decoded_sentences, sentences.int()) and torch.equal(decoded_positions, positions.int())


def test_empty_slots_decode_as_missing():
    keys = torch.tensor(
        [[encode_keys(torch.tensor(1.5), tiebreak_codes(torch.tensor(3), torch.tensor(2))), EMPTY_KEY]]
    )
    values, sentences, positions = decode_keys(keys)
    assert values.tolist() == [[1.5, float("-inf")]]
    assert sentences.tolist() == [[3, -1]] and positions.tolist() == [[2, -1]]
    assert kth_values(keys).tolist() == [float("-inf")]


def _fold(keys, values, sentences, positions):
    codes = tiebreak_codes(torch.tensor(sentences), torch.tensor(positions))
    return sort_keys(fold_topk(keys, kth_values(keys), torch.tensor(values), codes))


def test_fold_topk_by_hand():
    empty = torch.full((2, 2), EMPTY_KEY, dtype=torch.int64)  # [unit, k]
    # batch 1: tokens (sentence, position) = (5, 1), (5, 2), (6, 1); two units
    keys = _fold(empty, [[1.0, 0.5], [3.0, 0.5], [1.0, 0.25]], [5, 5, 6], [1, 2, 1])
    values, sentences, positions = decode_keys(keys)
    assert values.tolist() == [[3.0, 1.0], [0.5, 0.5]]
    assert sentences.tolist() == [[5, 5], [5, 5]] and positions.tolist() == [[2, 1], [1, 2]]
    # batch 2: a lower sentence ties unit 0's 1.0 and wins; unit 1 gets a new best and keeps (5, 1)
    keys = _fold(keys, [[1.0, 0.75], [0.0, 0.0]], [2, 2], [3, 4])
    values, sentences, positions = decode_keys(keys)
    assert values.tolist() == [[3.0, 1.0], [0.75, 0.5]]
    assert sentences.tolist() == [[5, 2], [2, 5]] and positions.tolist() == [[2, 3], [3, 1]]


@pytest.mark.parametrize("k", [1, 3, 8])
@pytest.mark.parametrize("ties", [True, False])
def test_fold_topk_equals_sorting(k, ties):
    """Integer-valued activations tie everywhere, continuous ones never: every path of fold_topk runs."""
    generator = torch.Generator().manual_seed(k)
    units, batches = 6, 6
    keys = torch.full((units, k), EMPTY_KEY, dtype=torch.int64)
    seen_values, seen_sentences, seen_positions = [], [], []
    for batch in range(batches):
        tokens = int(torch.randint(1, 60, (1,), generator=generator))
        if ties:
            values = torch.randint(-2, 3, (tokens, units), generator=generator).float()
        else:
            values = (
                torch.randn((tokens, units), generator=generator) + 0.1 * batch
            )  # later batches rank higher
        sentences = torch.randint(0, 50, (tokens,), generator=generator)
        positions = torch.arange(tokens) + batch * 100  # (sentence, position) pairs stay unique
        keys = fold_topk(keys, kth_values(keys), values, tiebreak_codes(sentences, positions))
        seen_values.append(values.numpy())
        seen_sentences.append(sentences.numpy())
        seen_positions.append(positions.numpy())
    values, sentences, positions = (
        np.concatenate(part) for part in (seen_values, seen_sentences, seen_positions)
    )
    top_values, top_sentences, top_positions = (t.numpy() for t in decode_keys(sort_keys(keys)))
    for unit in range(units):
        order = np.lexsort((positions, sentences, -values[:, unit]))[:k]
        filled = len(order)
        np.testing.assert_array_equal(top_values[unit, :filled], values[order, unit])
        np.testing.assert_array_equal(top_sentences[unit, :filled], sentences[order])
        np.testing.assert_array_equal(top_positions[unit, :filled], positions[order])
        assert (top_sentences[unit, filled:] == -1).all()


def test_merge_topk_arrays_by_hand():
    values = np.array([[5.0, 1.0, -np.inf, 5.0, 2.0, 1.0]], dtype=np.float32)
    sentences = np.array([[3, 0, -1, 1, 4, 0]], dtype=np.int32)
    positions = np.array([[1, 9, -1, 2, 1, 2]], dtype=np.int32)
    top_values, top_sentences, top_positions = merge_topk_arrays(values, sentences, positions, 4)
    assert top_values.tolist() == [[5.0, 5.0, 2.0, 1.0]]
    assert top_sentences.tolist() == [[1, 3, 4, 0]] and top_positions.tolist() == [[2, 1, 1, 2]]


# --- builds on a tiny random BERT --------------------------------------------------------------------


@pytest.fixture(scope="module", params=["compiled", "torch"], autouse=True)
def fold_path(request):
    """Builds fold batches with the compiled CPU kernel, or with the torch path (as on a GPU)."""
    with pytest.MonkeyPatch.context() as patcher:
        if request.param == "torch":
            patcher.setattr("app.methods.neurons.index.compiled_fold_available", lambda device: False)
        yield request.param


@pytest.fixture(scope="module")
def one_by_one(tiny_bert, fold_path) -> IndexState:
    """The whole corpus, one sentence per batch: no padding, so shard builds see identical activations."""
    return build_state(tiny_bert, CORPUS, k=K, batch_size=1)


@pytest.mark.parametrize("batch_size", [1, 4])
def test_build_equals_numpy_reference(tiny_bert, batch_size):
    state = build_state(tiny_bert, CORPUS, k=K, batch_size=batch_size)
    assert state.complete and state.num_sentences == len(CORPUS)
    _assert_matches_reference(state, *_reference(tiny_bert, CORPUS, batch_size))


def test_special_tokens_are_never_counted(tiny_bert):
    state = build_state(tiny_bert, CORPUS, k=K, batch_size=4)
    tokenizer = tiny_bert.tokenizer
    ids = tokenizer(CORPUS)["input_ids"]
    special = set(tokenizer.all_special_ids) - {tokenizer.unk_token_id}  # [UNK] stands for a real word
    assert tokenizer.unk_token_id in ids[10]
    assert state.tokens == sum(1 for row in ids for token in row if token not in special)
    assert tokenizer.mask_token_id in ids[9]  # the typed [MASK] is a special token ...
    for sentence, position in zip(state.top_sentences.ravel(), state.top_positions.ravel(), strict=True):
        assert ids[sentence][position] not in special  # ... and no exemplar is [CLS], [SEP] or [MASK]
    assert state.histogram.sum(-1).min() == state.histogram.sum(-1).max() == state.tokens


def test_duplicate_sentences_tie_and_the_first_wins(one_by_one):
    state = one_by_one
    # sentences 0 and 8 are identical: wherever 8 is an exemplar, 0 is one too, just before it
    for layer, unit, slot in zip(*np.nonzero(state.top_sentences == 8), strict=True):
        assert slot > 0
        assert state.top_sentences[layer, unit, slot - 1] == 0
        assert state.top_values[layer, unit, slot - 1] == state.top_values[layer, unit, slot]


@pytest.mark.parametrize("cuts", [(5,), (3, 8)])
def test_merged_shards_equal_one_build(tiny_bert, one_by_one, cuts):
    bounds = [0, *cuts, len(CORPUS)]
    shards = [CORPUS[start:end] for start, end in zip(bounds, bounds[1:], strict=False)]
    states = [build_state(tiny_bert, shard, k=K, batch_size=1) for shard in shards]
    whole = one_by_one
    merged = states[0]
    for state in states[1:]:
        merged = merge(merged, state)
    _assert_same_state(merged, whole)
    if len(states) == 3:
        _assert_same_state(
            merge(merge(states[0], states[1]), states[2]), merge(states[0], merge(states[1], states[2]))
        )


@pytest.mark.parametrize("cuts", [(4,), (2, 6, 8)])
def test_shards_of_one_plan_combine_into_the_whole_build(tiny_bert, cuts):
    """Shards of the batch plan built apart (as Ray workers do) and combined in any order equal one pass."""
    plan = plan_batches(tiny_bert, CORPUS, 2)
    ranges = list(pairwise([0, *cuts, len(CORPUS)]))
    shards = [build_shard(tiny_bert, plan.shard(a, b), K, len(CORPUS)) for a, b in ranges]
    assert [s.sentences_done for s in shards] == [b - a for a, b in ranges]
    whole = build_state(tiny_bert, CORPUS, k=K, batch_size=2)
    in_order = shards[0]
    for shard in shards[1:]:
        in_order = combine(in_order, shard)
    _assert_same_state(in_order, whole)
    backwards = shards[-1]
    for shard in reversed(shards[:-1]):
        backwards = combine(shard, backwards)
    _assert_same_state(backwards, whole)
    with pytest.raises(InvalidInput, match="overlap"):
        combine(in_order, shards[0])
    with pytest.raises(InvalidInput, match="batch boundary"):
        plan.shard(1, 4)


def test_the_digest_tells_byte_equal_states_apart(tiny_bert):
    state = build_state(tiny_bert, CORPUS, k=K, batch_size=4)
    again = IndexState.from_arrays(unpack(pack(state.to_arrays())))
    assert again.digest() == state.digest() and len(state.digest()) == 64
    again.total_squares[0, 0] = np.nextafter(again.total_squares[0, 0], np.inf)  # one ulp
    assert again.digest() != state.digest()


def test_quantised_sums_make_batch_order_irrelevant():
    sums = torch.tensor([0.1, 1 / 3, -2.5e-9, 12345.678], dtype=torch.float64)
    q = quantise(sums, SUM_QUANTUM)
    assert torch.all((q / SUM_QUANTUM) == torch.round(q / SUM_QUANTUM))  # whole multiples
    assert torch.all((q - sums).abs() <= SUM_QUANTUM / 2)
    parts = [
        quantise(torch.tensor([value], dtype=torch.float64), SUM_QUANTUM) for value in (0.1, 1 / 3, 7.77)
    ]
    assert (parts[0] + parts[1]) + parts[2] == parts[0] + (parts[1] + parts[2])


def test_merge_refuses_unfinished_or_mismatched_states(tiny_bert):
    finished = build_state(tiny_bert, CORPUS[:4], k=K)
    partial = build_state(tiny_bert, CORPUS[:4], k=K, batch_size=1, should_stop=iter([False, True]).__next__)
    with pytest.raises(InvalidInput, match="finished"):
        merge(finished, partial)
    with pytest.raises(InvalidInput, match="do not match"):
        merge(finished, build_state(tiny_bert, CORPUS[:4], k=K + 1))


def test_stop_and_resume_equals_an_uninterrupted_build(tiny_bert):
    answers = iter([False, True])
    progress: list[tuple[int, int]] = []
    partial = build_state(
        tiny_bert,
        CORPUS,
        k=K,
        batch_size=5,
        should_stop=lambda: next(answers),
        progress=lambda *p: progress.append(p),
    )
    assert (partial.sentences_done, partial.complete) == (5, False) and progress == [(5, 12)]
    saved = IndexState.from_arrays(unpack(pack(partial.to_arrays())))  # as a checkpoint would keep it
    resumed = build_state(
        tiny_bert, CORPUS, k=K, batch_size=5, resume=saved, progress=lambda *p: progress.append(p)
    )
    assert progress == [(5, 12), (10, 12), (12, 12)]
    _assert_same_state(resumed, build_state(tiny_bert, CORPUS, k=K, batch_size=5))


def test_checkpoints_are_snapshots(tiny_bert):
    checkpoints: list[IndexState] = []
    final = build_state(
        tiny_bert, CORPUS, k=K, batch_size=2, checkpoint=checkpoints.append, checkpoint_every=2
    )
    assert [c.sentences_done for c in checkpoints] == [4, 8]
    assert checkpoints[0].tokens < checkpoints[1].tokens < final.tokens  # later batches did not change them
    resumed = build_state(tiny_bert, CORPUS, k=K, batch_size=2, resume=checkpoints[0])
    _assert_same_state(resumed, final)


def test_resume_state_must_fit(tiny_bert):
    state = build_state(tiny_bert, CORPUS[:4], k=K)
    with pytest.raises(InvalidInput, match="does not fit"):
        build_state(tiny_bert, CORPUS, k=K, resume=state)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k": 0}, "k \\(exemplars per neuron\\)"),
        ({"batch_size": 0}, "Batch size"),
        ({"max_tokens": 2}, "max_tokens"),
        ({"max_tokens": 10_000}, "max_tokens"),
        ({"checkpoint_every": 0}, "checkpoint_every"),
    ],
)
def test_bad_parameters_are_clear_errors(tiny_bert, kwargs, message):
    with pytest.raises(InvalidInput, match=message):
        build_state(tiny_bert, CORPUS, **kwargs)


def test_empty_corpus_is_refused(tiny_bert):
    with pytest.raises(InvalidInput, match="no sentences"):
        build_state(tiny_bert, [])


def test_truncation_to_max_tokens(tiny_bert):
    state = build_state(tiny_bert, CORPUS, k=K, max_tokens=4)
    assert state.tokens == sum(min(len(sentence.split()), 2) for sentence in CORPUS)  # [CLS] w w [SEP]
    assert state.top_positions.max() <= 2


def test_no_hook_is_left_behind(tiny_bert):
    build_state(tiny_bert, CORPUS, k=K, batch_size=4)
    token_activations(tiny_bert, CORPUS[:2], 0, 0)
    sentence_activations(tiny_bert, CORPUS[:3])
    assert leftover_hooks(tiny_bert.model) == []

    def fail(done: int, total: int) -> None:
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        build_state(tiny_bert, CORPUS, k=K, batch_size=4, progress=fail)
    assert leftover_hooks(tiny_bert.model) == []


def _reduction_length(loaded, sentences) -> int:
    """``N`` of an FFN activation (``tests/numerics.py``): the encoder at the longest sentence's width."""
    width = max(len(ids) for ids in loaded.tokenizer(sentences)["input_ids"])
    return encoder_reduction_length(loaded.config, width)


def test_token_activations_line_up_with_exemplars(tiny_bert):
    state = build_state(tiny_bert, CORPUS, k=K, batch_size=4)
    layer, unit = 1, 5
    sentence_ids = [int(i) for i in state.top_sentences[layer, unit]]
    shaded = token_activations(tiny_bert, [CORPUS[i] for i in sentence_ids], layer, unit)
    # other batches than the index's: equal up to float32 rounding on the scale of the layer's activations
    scale = max(np.abs(state.maximum[layer]).max(), np.abs(state.minimum[layer]).max())
    rounding = float(float32_difference_bound(scale, _reduction_length(tiny_bert, CORPUS)))
    for (tokens, activations), position, value in zip(
        shaded, state.top_positions[layer, unit], state.top_values[layer, unit], strict=True
    ):
        assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"
        assert np.isnan(activations[0]) and np.isnan(activations[-1])
        assert activations[position] == pytest.approx(value, abs=rounding)
        assert np.nanmax(activations) <= state.maximum[layer, unit] + rounding
    with pytest.raises(InvalidInput, match="does not exist"):
        token_activations(tiny_bert, CORPUS[:1], 2, 0)


def test_sentence_activations_are_per_sentence_maxima(tiny_bert):
    values, sentence_ids, _ = _reference(tiny_bert, CORPUS, batch_size=1)
    maxima = sentence_activations(tiny_bert, CORPUS, batch_size=3)
    assert maxima.shape == (len(CORPUS), 2, 37) and maxima.dtype == np.float32
    length = _reduction_length(tiny_bert, CORPUS)  # batches of three, padded, against one by one
    for sentence in range(len(CORPUS)):
        alone = values[sentence_ids == sentence].max(0)
        assert_float32_close(maxima[sentence], alone, reduction_length=length, err_msg=str(sentence))
    halves = sentence_activations(tiny_bert, CORPUS, dtype=np.float16)
    assert halves.dtype == np.float16
    np.testing.assert_allclose(halves, maxima, rtol=1e-2, atol=1e-2)


def test_state_round_trips_through_the_codec(tiny_bert):
    state = build_state(tiny_bert, CORPUS[:5], k=K)
    _assert_same_state(IndexState.from_arrays(unpack(pack(state.to_arrays()))), state)
    layers = [state.layer_arrays(layer) for layer in range(state.num_layers)]
    _assert_same_state(IndexState.from_layers(state.to_arrays(), layers), state)
    np.testing.assert_allclose(state.mean, state.total / state.tokens)
    assert (state.std >= 0).all()


@pytest.mark.slow
def test_embedded_model_index_equals_reference(embedded):
    sentences = read_corpus(SAMPLE_CORPUS, limit=40)
    state = build_state(embedded, sentences, k=5, batch_size=8)
    values, sentence_ids, positions = _reference(embedded, sentences, batch_size=8)
    assert state.top_values.shape == (6, 1536, 5)
    units = np.arange(0, 1536, 97)  # a spread of neurons keeps the numpy reference quick
    picked = IndexState(
        k=5,
        num_sentences=state.num_sentences,
        sentences_done=state.sentences_done,
        tokens=state.tokens,
        **{name: getattr(state, name)[:, units] for name in _PER_NEURON},
    )
    _assert_matches_reference(picked, values[:, :, units], sentence_ids, positions)
    assert leftover_hooks(embedded.model) == []


def test_the_fold_path_is_the_one_under_test(tiny_bert, fold_path):
    from app.methods.neurons.index import _Accumulator

    state = IndexState.empty(tiny_bert.num_layers, 37, K, len(CORPUS))
    assert _Accumulator(state, tiny_bert.device).compiled == (fold_path == "compiled")
