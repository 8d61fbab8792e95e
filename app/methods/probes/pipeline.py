"""Train and evaluate a probe set end to end: cached word vectors -> structural probes (Hewitt & Manning,
NAACL 2019) -> tree topological probe curves (Li, Yin & Lin, EMNLP 2023) -> dev metrics and baselines."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from app.methods.callbacks import Exclusive, no_exclusion
from app.methods.probes.batches import make_batches
from app.methods.probes.features import WordFeatures, compute_word_features, random_copy
from app.methods.probes.probe_maps import DEFAULT_RANK, MAX_EPOCHS, ProbeWeights, train_structural_probes
from app.methods.probes.scoring import evaluate_probes
from app.methods.probes.topological import TTP_EPOCHS, train_topological_probes
from app.methods.probes.treebank import TreeSentence
from app.modeling.loading import LoadedModel

Progress = Callable[[int, int], None]


@dataclass
class TrainOptions:
    """What to train: layers (None = embeddings and every block), probe rank, epochs, extras."""

    layers: list[int] | None = None
    rank: int = DEFAULT_RANK
    max_epochs: int = MAX_EPOCHS
    topological: bool = True
    topological_epochs: int = TTP_EPOCHS
    control: bool = False
    seed: int = 0


@dataclass
class TrainedProbes:
    """The trained weights and everything measured on the dev treebank."""

    weights: ProbeWeights
    metrics: dict = field(default_factory=dict)


class Stages:
    """Maps the progress of consecutive stages onto one overall progress (each stage weighted)."""

    def __init__(self, weights: dict[str, float], progress: Progress | None) -> None:
        self.weights = weights
        self.total = sum(weights.values())
        self.progress = progress
        self.done = 0.0

    def stage(self, name: str) -> Progress:
        start, width = self.done, self.weights[name]
        self.done += width

        def report(step: int, steps: int) -> None:
            if self.progress:
                fraction = (start + width * step / max(steps, 1)) / self.total
                self.progress(round(fraction * 1000), 1000)

        return report


def word_features(
    loaded: LoadedModel,
    sentences: list[TreeSentence],
    max_tokens: int,
    progress: Progress | None,
    exclusive: Exclusive = no_exclusion,
) -> WordFeatures:
    """Word vectors of all layers; the model is held (``exclusive``) only while it runs."""
    with exclusive():
        return compute_word_features(loaded, sentences, max_tokens=max_tokens, progress=progress)


def train_probe_set(
    loaded: LoadedModel,
    train: list[TreeSentence],
    dev: list[TreeSentence],
    options: TrainOptions,
    *,
    max_tokens: int,
    progress: Progress | None = None,
    exclusive: Exclusive = no_exclusion,
) -> TrainedProbes:
    """Structural probes for each layer, evaluated on ``dev`` with the chain baseline, the tree topological
    curves, and optionally the same probes on a randomly initialised copy of the model (the control)."""
    torch.set_flush_denormal(True)  # Adam's second moments of near-converged probes otherwise crawl on CPU
    stages = Stages(_stage_weights(options), progress)
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    train_features = word_features(loaded, train, max_tokens, stages.stage("train features"), exclusive)
    dev_features = word_features(loaded, dev, max_tokens, stages.stage("dev features"), exclusive)
    timings["features_s"] = time.perf_counter() - clock
    layers = options.layers or list(range(train_features.num_layers))
    weights, metrics = _train_and_evaluate(train_features, dev_features, layers, options, stages, timings)
    metrics["train_sentences"] = train_features.report()
    if options.topological:
        clock = time.perf_counter()
        curves = train_topological_probes(
            make_batches(train_features),
            make_batches(dev_features),
            layers,
            loaded.hidden_size,
            rank=options.rank,
            epochs=options.topological_epochs,
            seed=options.seed,
            progress=stages.stage("topological"),
        )
        metrics["topological"] = curves.to_dict()
        timings["topological_s"] = time.perf_counter() - clock
    if options.control:
        control = random_copy(loaded, options.seed)
        control_train = word_features(control, train, max_tokens, stages.stage("control features"), exclusive)
        control_dev = word_features(control, dev, max_tokens, None, exclusive)
        metrics["control"] = _train_and_evaluate(
            control_train, control_dev, layers, options, stages, {}, "control "
        )[1]
    metrics["timings"] = timings
    return TrainedProbes(weights, metrics)


def _train_and_evaluate(
    train: WordFeatures,
    dev: WordFeatures,
    layers: list[int],
    options: TrainOptions,
    stages: Stages,
    timings: dict[str, float],
    prefix: str = "",
) -> tuple[ProbeWeights, dict]:
    clock = time.perf_counter()
    weights = train_structural_probes(
        make_batches(train),
        make_batches(dev),
        layers,
        int(train.vectors[0].shape[-1]),
        rank=options.rank,
        max_epochs=options.max_epochs,
        seed=options.seed,
        progress=stages.stage(prefix + "structural"),
    )
    timings["structural_s"] = time.perf_counter() - clock
    clock = time.perf_counter()
    metrics = evaluate_probes(dev, weights, stages.stage(prefix + "evaluation"))
    timings["evaluation_s"] = time.perf_counter() - clock
    metrics["training"] = weights.history
    return weights, metrics


def _stage_weights(options: TrainOptions) -> dict[str, float]:
    weights = {"train features": 1.0, "dev features": 0.5, "structural": 4.0, "evaluation": 0.3}
    if options.topological:
        weights["topological"] = 0.3 * options.topological_epochs
    if options.control:
        weights.update({"control features": 1.5, "control structural": 4.0, "control evaluation": 0.3})
    return weights
