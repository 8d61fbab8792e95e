"""Tree topological probe over seeds (Li, Yin & Lin, EMNLP 2023): the batched training equals one probe at a
time, seeds are independent and repeatable, the bracket is judged with the spread, trained maps measure any
treebank."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from app.methods.probes.batches import make_batches
from app.methods.probes.features import WordFeatures
from app.methods.probes.topological import (
    MODES,
    TTP_LEARNING_RATE,
    TopologicalCurves,
    _batch_order,
    _from_columns,
    _losses,
    _SquaredNorms,
    _to_columns,
    bracket_verdict,
    fit_topological_probes,
    learning_rate,
    train_topological_probes,
)
from app.methods.probes.treebank import read_conllu, tree_distances
from tests.reference.topological_training import losses_loop
from tests.treebanks import write_treebank

HIDDEN = 8


def depth_features(sentences, seed: int = 0) -> WordFeatures:
    """Layer 1: the first coordinate is 10 sqrt(depth + 1), so ||0.1 e_1^T h||^2 is the SP label exactly
    (plus a little noise elsewhere; the scale suits maps initialised at +-0.05); layer 0: noise."""
    rng = np.random.default_rng(seed)
    vectors = []
    for sentence in sentences:
        depth = tree_distances(sentence.heads)[sentence.root]
        signal = rng.normal(scale=0.05, size=(sentence.length, HIDDEN))
        signal[:, 0] = 10 * np.sqrt(depth + 1.0)
        noise = rng.normal(size=(sentence.length, HIDDEN))
        vectors.append(np.stack([noise, signal]).astype(np.float16))
    return WordFeatures(list(sentences), vectors)


@pytest.fixture(scope="module")
def treebanks(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ttp")
    train = make_batches(
        depth_features(read_conllu(write_treebank(folder / "a.conllu", 32, extras=False))), 8
    )
    dev = make_batches(depth_features(read_conllu(write_treebank(folder / "b.conllu", 8)), seed=1), 4)
    other = make_batches(depth_features(read_conllu(write_treebank(folder / "c.conllu", 5)), seed=2), 4)
    return train, dev, other


def test_bracket_verdict_by_hand():
    assert bracket_verdict((0.1, 0.05), (1.0, 0.1), (2.0, 0.1)) == "holds"
    assert bracket_verdict((0.1, 0.05), (1.0, 0.1), (0.5, 0.1)) == "violated"  # X_essp below X_sp
    assert bracket_verdict((0.1, 0.05), (1.0, 0.3), (1.2, 0.3)) == "undecided"  # sp and essp overlap
    # neighbours overlap, but X_ssp lies above X_essp beyond both spreads: the bracket cannot hold
    assert bracket_verdict((1.0, 0.1), (0.95, 0.3), (0.8, 0.05)) == "violated"
    assert bracket_verdict((0.5, 0.0), (0.5, 0.0), (0.7, 0.0)) == "holds"  # one seed: plain comparison
    assert bracket_verdict((0.6, 0.0), (0.5, 0.0), (0.7, 0.0)) == "violated"


def test_curves_summary_by_hand():
    curves = TopologicalCurves(
        layers=[0, 3],
        seeds=[4, 5],
        per_seed={
            "sp": [[1.0, 1.0], [3.0, 1.0]],
            "ssp": [[0.5, 1.5], [0.5, 1.5]],
            "essp": [[5.0, 2.0], [7.0, 2.0]],
        },
    )
    result = curves.to_dict()
    assert result["layers"] == [0, 3] and result["seeds"] == [4, 5]
    assert result["x_sp"] == [2.0, 1.0] and result["x_sp_std"] == pytest.approx([2**0.5, 0.0])
    assert result["x_essp"] == [6.0, 2.0] and result["x_essp_std"] == pytest.approx([2**0.5, 0.0])
    assert result["per_seed"]["x_ssp"] == [[0.5, 1.5], [0.5, 1.5]]
    # layer 0: 0.5 | 2 +- 1.41 | 6 +- 1.41 ordered beyond the spread; layer 3: X_ssp 1.5 > X_sp 1
    assert result["bracket"] == ["holds", "violated"]
    assert result["bracket_holds"] == [True, False]


def test_batched_losses_equal_one_probe_at_a_time(treebanks):
    train, _, _ = treebanks
    batch = train[-1]
    generator = torch.Generator().manual_seed(0)
    maps = torch.rand(len(MODES), 2, 3, HIDDEN, generator=generator) * 0.8  # [mode, layer, rank, hidden]
    depths = [[int(d) for d in row[: int(n)]] for row, n in zip(batch.depths, batch.lengths, strict=True)]
    expected = losses_loop(batch.vectors.float().numpy(), depths, maps.numpy())
    actual = _losses(batch, [0, 1], _to_columns(maps)).numpy()
    np.testing.assert_allclose(actual, expected, rtol=1e-5)
    assert torch.equal(_from_columns(_to_columns(maps), 3), maps)


def test_learning_rate_decays_linearly_to_zero():
    assert learning_rate(0, 10) == TTP_LEARNING_RATE
    assert learning_rate(5, 10) == pytest.approx(TTP_LEARNING_RATE / 2)
    assert learning_rate(9, 10) == pytest.approx(TTP_LEARNING_RATE / 10)


def test_each_seed_has_its_own_batch_order():
    orders = {(seed, epoch): tuple(_batch_order(12, seed, epoch)) for seed in range(4) for epoch in range(4)}
    assert len(set(orders.values())) == len(orders)
    assert sorted(orders[(2, 3)]) == list(range(12))


def test_two_runs_give_identical_numbers(treebanks):
    train, dev, _ = treebanks

    def run():
        return fit_topological_probes(train, [0, 1], HIDDEN, rank=4, epochs=2, seeds=[7, 8])

    first, again = run(), run()
    for mode in MODES:
        assert np.array_equal(first.maps[mode], again.maps[mode])
    assert first.curves(dev).to_dict() == again.curves(dev).to_dict()
    assert first.history == again.history


def test_seeds_train_independently_in_the_batched_computation(treebanks):
    train, _, _ = treebanks
    both = fit_topological_probes(train, [0, 1], HIDDEN, rank=4, epochs=2, seeds=[3, 5])
    alone = fit_topological_probes(train, [0, 1], HIDDEN, rank=4, epochs=2, seeds=[5])
    for mode in MODES:
        assert both.maps[mode].shape == (2, 2, 4, HIDDEN)  # [seed, layer, rank, hidden]
        assert np.array_equal(both.maps[mode][1], alone.maps[mode][0])
        assert not np.allclose(both.maps[mode][0], both.maps[mode][1])


def test_probes_learn_planted_depths_and_measure_another_treebank(treebanks):
    train, dev, other = treebanks
    probes = fit_topological_probes(train, [0, 1], HIDDEN, rank=4, epochs=30, seeds=[0, 1, 2])
    curves = probes.curves(dev)
    mean_sp = curves.mean("sp")
    assert mean_sp[1] < 0.05 < mean_sp[0]  # layer 1 encodes depth, layer 0 is noise
    assert curves.mean("ssp")[1] < 0.05  # a valid depth profile fits the planted depths too
    elsewhere = probes.curves(other).to_dict()
    assert len(elsewhere["per_seed"]["x_essp"]) == 3 and len(elsewhere["x_essp"]) == 2
    assert elsewhere["x_sp"] != curves.to_dict()["x_sp"]
    wrapped = train_topological_probes(train, dev, [0, 1], HIDDEN, rank=4, epochs=30, seed=0)
    assert wrapped.to_dict() == curves.to_dict()  # the default: the given seed and the next two


def test_progress_counts_every_step_and_may_cancel(treebanks):
    train, _, _ = treebanks
    seen: list[tuple[int, int]] = []
    fit_topological_probes(
        train, [1], HIDDEN, rank=2, epochs=2, seeds=[0], progress=lambda *a: seen.append(a)
    )
    assert seen == [(step, 2 * len(train)) for step in range(1, 2 * len(train) + 1)]

    class Stop(Exception):
        pass

    def cancel(step: int, steps: int) -> None:
        if step == 3:
            raise Stop

    with pytest.raises(Stop):
        fit_topological_probes(train, [1], HIDDEN, rank=2, epochs=2, seeds=[0], progress=cancel)


def test_written_out_gradient_equals_autograd():
    generator = torch.Generator().manual_seed(1)
    vectors = torch.randn(2, 5, HIDDEN, generator=generator, dtype=torch.float64)
    columns = torch.randn(2, HIDDEN, 3 * 4, generator=generator, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(2, 5, 3, generator=generator, dtype=torch.float64)
    (_SquaredNorms.apply(vectors, columns, 3) * weights).sum().backward()
    written = columns.grad.clone()
    columns.grad = None
    plain = torch.bmm(vectors, columns).view(2, 5, 3, 4).square().sum(-1)
    (plain * weights).sum().backward()
    torch.testing.assert_close(written, columns.grad)


def test_any_chosen_layers_are_read(treebanks):
    train, _, _ = treebanks
    maps = torch.rand(len(MODES), 2, 3, HIDDEN, generator=torch.Generator().manual_seed(2))
    both = _losses(train[0], [0, 1], _to_columns(maps))
    assert torch.equal(_losses(train[0], [1], _to_columns(maps[:, 1:])), both[:, 1:])
    swapped = _losses(train[0], [1, 0], _to_columns(maps.flip(1)))
    torch.testing.assert_close(swapped, both.flip(1))
