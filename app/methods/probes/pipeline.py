"""Train and evaluate a probe set end to end: cached word vectors -> structural probes (Hewitt & Manning,
NAACL 2019) over several seeds -> tree topological probe curves (Li, Yin & Lin, EMNLP 2023) -> dev metrics
and baselines, on a second treebank when one is given.

Every structural figure is trained with ``options.seeds`` seeds (``seeds.seed_list``) and reported as the
mean over them (``layers``) with the sample standard deviation (``layers_std``) and every seed's own values
(``per_seed``); the probes of the first seed are the ones stored and drawn on the Sentence page, and their own
dev metrics are kept as ``stored_probes``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from app.methods.callbacks import Exclusive, no_exclusion
from app.methods.probes.amnesic import amnesic_table
from app.methods.probes.batches import make_batches
from app.methods.probes.control_task import ControlTask, control_features, selectivity
from app.methods.probes.description_length import online_code_length
from app.methods.probes.erasure import fit_depth_erasers, pack_erasers
from app.methods.probes.features import WordFeatures, compute_word_features, random_copy
from app.methods.probes.probe_maps import DEFAULT_RANK, MAX_EPOCHS, ProbeWeights, train_structural_probes
from app.methods.probes.scoring import evaluate_probes
from app.methods.probes.seeds import mean_and_spread, seed_list
from app.methods.probes.topological import TTP_EPOCHS, fit_topological_probes
from app.methods.probes.treebank import TreeSentence
from app.modeling.loading import LoadedModel

Progress = Callable[[int, int], None]
TRAIN_SHARE = 12  # the structural stage's time: training one seed ~ 12 evaluations on one treebank


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
    seeds: int = 3
    selectivity: bool = True
    description_length: bool = True
    amnesic: bool = False


@dataclass
class TrainedProbes:
    """The trained weights, everything measured on the dev treebank, and the amnesic check's erasures."""

    weights: ProbeWeights
    metrics: dict = field(default_factory=dict)
    erasers: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class AmnesicInputs:
    """What the amnesic check scores besides later layers' UUAS: a classifier on labelled texts.

    ``classifier`` is a fitted head, or None for the model's own logits (a sequence classifier);
    ``labelled`` None measures no accuracy."""

    classifier: Any = None
    labelled: list[tuple[str, str]] | None = None


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


FeatureSource = Callable[[LoadedModel, list[TreeSentence], int, Progress | None, Exclusive], WordFeatures]


def word_features(
    loaded: LoadedModel,
    sentences: list[TreeSentence],
    max_tokens: int,
    progress: Progress | None,
    exclusive: Exclusive = no_exclusion,
) -> WordFeatures:
    """Word vectors of all layers, here; the model is held (``exclusive``) only while it runs."""
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
    second: list[TreeSentence] | None = None,
    amnesic: AmnesicInputs | None = None,
    features: FeatureSource = word_features,
) -> TrainedProbes:
    """Structural probes for each layer, evaluated on ``dev`` (and on the ``second`` treebank) with the chain
    baseline, the tree topological curves, and optionally the same probes on a randomly initialised copy of
    the model (the control). ``features`` computes the word vectors (elsewhere, e.g. on Ray workers)."""
    torch.set_flush_denormal(True)  # Adam's second moments of near-converged probes otherwise crawl on CPU
    stages = Stages(_stage_weights(options, second is not None), progress)
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    train_features = features(loaded, train, max_tokens, stages.stage("train features"), exclusive)
    dev_features = features(loaded, dev, max_tokens, stages.stage("dev features"), exclusive)
    second_features = (
        features(loaded, second, max_tokens, stages.stage("second features"), exclusive)
        if second is not None
        else None
    )
    timings["features_s"] = time.perf_counter() - clock
    layers = options.layers or list(range(train_features.num_layers))
    clock = time.perf_counter()
    seeds = seed_list(options.seed, options.seeds)
    runs = _train_over_seeds(
        train_features, [dev_features, second_features], layers, options, seeds, stages.stage("structural")
    )
    timings["structural_s"] = time.perf_counter() - clock
    weights = runs[0].weights
    metrics = _summary(runs, 0)
    metrics["training"] = weights.history
    metrics["train_sentences"] = train_features.report()
    if second_features is not None:
        metrics["second"] = _summary(runs, 1)
    if options.topological:
        clock = time.perf_counter()
        topological = fit_topological_probes(
            make_batches(train_features),
            layers,
            loaded.hidden_size,
            rank=options.rank,
            epochs=options.topological_epochs,
            seeds=seeds,
            progress=stages.stage("topological"),
        )
        metrics["topological"] = topological.curves(make_batches(dev_features)).to_dict()
        if second_features is not None:
            metrics["second"]["topological"] = topological.curves(make_batches(second_features)).to_dict()
        timings["topological_s"] = time.perf_counter() - clock
    if options.control:
        clock = time.perf_counter()
        control = random_copy(loaded, options.seed)
        control_train = word_features(control, train, max_tokens, stages.stage("control features"), exclusive)
        control_dev = word_features(control, dev, max_tokens, None, exclusive)
        control_runs = _train_over_seeds(
            control_train, [control_dev], layers, options, seeds, stages.stage("control structural")
        )
        metrics["control"] = _summary(control_runs, 0)
        timings["control_s"] = time.perf_counter() - clock
    if options.selectivity:
        clock = time.perf_counter()
        metrics["selectivity"] = _selectivity(
            train_features, dev_features, runs, layers, options, stages.stage("selectivity")
        )
        timings["selectivity_s"] = time.perf_counter() - clock
    if options.description_length:
        clock = time.perf_counter()
        metrics["description_length"] = online_code_length(
            train_features, layers, seed=options.seed, progress=stages.stage("description length")
        )
        timings["description_length_s"] = time.perf_counter() - clock
    erasers: dict[str, np.ndarray] = {}
    if options.amnesic:
        clock = time.perf_counter()
        metrics["amnesic"], erasers = _amnesic(
            loaded, train, dev, weights, amnesic or AmnesicInputs(), max_tokens, stages, exclusive
        )
        timings["amnesic_s"] = time.perf_counter() - clock
    metrics["timings"] = timings
    return TrainedProbes(weights, metrics, erasers)


def _amnesic(
    loaded: LoadedModel,
    train: list[TreeSentence],
    dev: list[TreeSentence],
    weights: ProbeWeights,
    inputs: AmnesicInputs,
    max_tokens: int,
    stages: Stages,
    exclusive: Exclusive,
) -> tuple[dict, dict[str, np.ndarray]]:
    """Erase bucketed depth at each probed layer (LEACE, and a random subspace of the same rank), fitted on
    the training treebank; measure the classifier and later layers' UUAS (the stored seed's probes) on dev.
    The model is held for the whole measurement: its hook would otherwise change what other requests see."""
    with exclusive():
        erasers = fit_depth_erasers(
            loaded, train, weights.layers, max_tokens=max_tokens, seed=0, progress=stages.stage("erasers")
        )
        table = amnesic_table(
            loaded,
            erasers,
            dev,
            weights,
            inputs.classifier,
            inputs.labelled,
            max_tokens=max_tokens,
            progress=stages.stage("amnesic"),
        )
    return table, pack_erasers(erasers)


def _selectivity(
    train: WordFeatures,
    dev: WordFeatures,
    runs: list[SeedRun],
    layers: list[int],
    options: TrainOptions,
    progress: Progress,
) -> dict:
    """Hewitt & Liang's control task with the same budget as the real probes: per seed, the type-assigned
    trees of a control task drawn with that seed, probes trained with that seed; selectivity = real dev
    metric - control dev metric of the same seed, then mean and spread over seeds."""
    control_runs, per_seed = [], []
    for number, run in enumerate(runs):
        task = ControlTask.from_sentences(train.sentences, run.seed)
        control = _train_over_seeds(
            control_features(train, task),
            [control_features(dev, task)],
            layers,
            options,
            [run.seed],
            _span(progress, number, 1, len(runs)),
        )[0]
        control_runs.append(control)
        per_seed.append(selectivity(run.reports[0], control.reports[0]))
    mean, spread = mean_and_spread(per_seed)
    return {
        "layers": mean,
        "layers_std": spread,
        "seeds": [run.seed for run in runs],
        "per_seed": per_seed,
        "control": _summary(control_runs, 0),
        "task": {"first_share": task.first_share, "design": "type-assigned two-anchor trees"},
    }


@dataclass
class SeedRun:
    """One seed's structural probes and their metrics on each evaluation treebank (None where absent)."""

    seed: int
    weights: ProbeWeights
    reports: list[dict | None]


def _train_over_seeds(
    train: WordFeatures,
    evaluations: list[WordFeatures | None],
    layers: list[int],
    options: TrainOptions,
    seeds: list[int],
    stage: Progress,
) -> list[SeedRun]:
    """Distance and depth probes of every layer trained once per seed, each evaluated on every treebank."""
    train_batches = make_batches(train)
    dev_batches = make_batches(evaluations[0]) if evaluations[0] is not None else train_batches
    present = [features for features in evaluations if features is not None]
    # each seed's share of the stage: training (weight TRAIN_SHARE) then one evaluation per treebank
    parts = TRAIN_SHARE + len(present)
    runs = []
    for number, seed in enumerate(seeds):
        offset = number * parts
        weights = train_structural_probes(
            train_batches,
            dev_batches,
            layers,
            int(train.vectors[0].shape[-1]),
            rank=options.rank,
            max_epochs=options.max_epochs,
            seed=seed,
            progress=_span(stage, offset, TRAIN_SHARE, len(seeds) * parts),
        )
        offset += TRAIN_SHARE
        reports: list[dict | None] = []
        for features in evaluations:
            report = None
            if features is not None:
                report = evaluate_probes(features, weights, _span(stage, offset, 1, len(seeds) * parts))
                offset += 1
            reports.append(report)
        runs.append(SeedRun(seed, weights, reports))
    return runs


def _span(progress: Progress, start: int, width: int, total: int) -> Progress:
    """Progress of the piece [start, start + width) of a stage divided into ``total`` units."""

    def report(step: int, steps: int) -> None:
        progress(round((start + width * step / max(steps, 1)) * 1000), total * 1000)

    return report


def _summary(runs: list[SeedRun], which: int) -> dict:
    """Metrics on evaluation treebank ``which`` over the seeds: mean, spread, each seed, the stored probes."""
    per_seed = [run.reports[which]["layers"] for run in runs]
    mean, spread = mean_and_spread(per_seed)
    first = runs[0].reports[which]
    return {
        "layers": mean,
        "layers_std": spread,
        "seeds": [run.seed for run in runs],
        "per_seed": per_seed,
        "stored_probes": first["layers"],
        "baselines": first["baselines"],
        "sentences": first["sentences"],
    }


def _stage_weights(options: TrainOptions, second: bool) -> dict[str, float]:
    seeds = options.seeds
    evaluations = 2 if second else 1
    weights = {"train features": 1.0, "dev features": 0.5, "structural": (4.0 + 0.3 * evaluations) * seeds}
    if second:
        weights["second features"] = 0.5
    if options.topological:
        weights["topological"] = 0.3 * options.topological_epochs * seeds
    if options.control:
        weights.update({"control features": 1.5, "control structural": 4.3 * seeds})
    if options.selectivity:
        weights["selectivity"] = 4.3 * seeds
    if options.description_length:
        weights["description length"] = 2.0
    if options.amnesic:
        weights.update({"erasers": 1.0, "amnesic": 4.0})
    return weights
