"""TopK sparse autoencoders: a planted sparse dictionary is recovered; invariants of the training."""

from __future__ import annotations

import itertools

import torch

from app.methods.features.sae import (
    SaeOptions,
    evaluate_sae,
    shuffled_minibatches,
    start_training,
    train_sae,
)


def _planted(
    atoms: int, dimension: int, active: int, tokens: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """x = sum of ``active`` random atoms (unit directions) with positive coefficients, per token."""
    generator = torch.Generator().manual_seed(seed)
    dictionary = torch.randn(atoms, dimension, generator=generator)
    dictionary /= dictionary.norm(dim=1, keepdim=True)
    chosen = torch.rand(tokens, atoms, generator=generator).argsort(dim=1)[:, :active]
    codes = torch.zeros(tokens, atoms).scatter(
        1, chosen, 0.5 + torch.rand(tokens, active, generator=generator)
    )
    return codes @ dictionary, dictionary


def _chunks(data: torch.Tensor, size: int = 5000):
    return (data[start : start + size] for start in range(0, data.shape[0], size))


def test_a_planted_sparse_dictionary_is_recovered():
    data, dictionary = _planted(atoms=64, dimension=32, active=3, tokens=60_000, seed=1)
    options = SaeOptions(width=128, k=3, steps=1500, batch_size=256, learning_rate=3e-3, dead_after=2_000)
    state = start_training(data[:4096], options)
    batches = itertools.cycle(list(shuffled_minibatches(_chunks(data[:50_000]), options.batch_size, seed=0)))
    state = train_sae(state, batches, options)
    decoder = state.sae.decoder.detach()
    assert torch.allclose(decoder.norm(dim=1), torch.ones(128), atol=1e-5)  # unit directions throughout
    best = (dictionary @ decoder.T).max(dim=1).values  # each true atom's closest latent
    assert (best > 0.9).float().mean() >= 0.9, best.sort().values[:10]
    metrics = evaluate_sae(state.sae, data[50_000:], state, options.dead_after)
    assert metrics.fvu < 0.1 and metrics.l0 <= 3.0 + 1e-9
    assert metrics.heldout_tokens == 10_000 and 1400 * 256 < metrics.tokens_seen <= 1500 * 256


def test_codes_are_top_k_and_non_negative():
    data, _ = _planted(atoms=16, dimension=8, active=2, tokens=500, seed=2)
    state = start_training(data, SaeOptions(width=32, k=4))
    codes = state.sae.encode(data)
    assert ((codes > 0).sum(dim=1) <= 4).all() and (codes >= 0).all()


def test_a_stopped_training_resumes_to_the_uninterrupted_result():
    data, _ = _planted(atoms=32, dimension=16, active=2, tokens=8_000, seed=3)
    options = SaeOptions(width=48, k=2, steps=60, batch_size=128, dead_after=500)

    def batches():
        return itertools.cycle(
            list(shuffled_minibatches(_chunks(data, 1000), 128, seed=0, buffer_tokens=2048))
        )

    whole = train_sae(start_training(data[:1024], options), batches(), options)
    answers = iter([False] * 25 + [True])
    partial = train_sae(
        start_training(data[:1024], options), batches(), options, should_stop=lambda: next(answers)
    )
    assert partial.step == 25
    resumed = train_sae(partial, itertools.islice(batches(), partial.step, None), options)
    assert resumed.step == 60
    for name, value in whole.sae.state_dict().items():
        assert torch.equal(value, resumed.sae.state_dict()[name]), name


def test_shuffled_minibatches_keep_every_token_once():
    data = torch.arange(10_000, dtype=torch.float32)[:, None]
    out = torch.cat(list(shuffled_minibatches(_chunks(data, 700), 256, seed=0, buffer_tokens=3000)))
    assert sorted(out[:, 0].tolist()) == list(range(10_000))
    assert not torch.equal(out[:, 0], data[:, 0])  # shuffled
