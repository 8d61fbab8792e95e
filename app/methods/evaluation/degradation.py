"""Degradation tests: remove the tokens an attribution ranks first and watch the prediction degrade.

As in Jiang et al. (Findings of EMNLP 2020, Section 4.2): for k = 0, 10, ..., 100 % of the (non-special)
tokens, remove the top-k % by attribution (``order="most"``; ``"least"`` removes the lowest first),
re-predict, and record the probability of the explained label (the gold label when the data has one) and the
accuracy against it. Removal deletes the tokens (``mode="delete"``, as the published code does) or replaces
them by [MASK] (``mode="mask"``).
Summaries: AOPC over the curve (Samek et al., IEEE TNNLS 2017: mean over steps of p_0 - p_k), and
comprehensiveness / sufficiency (DeYoung et al., "ERASER", ACL 2020): p(x) - p(x without the top-k %) and
p(x) - p(only the top-k %), each averaged over the bins k in {1, 5, 10, 20, 50} %.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

from app.errors import InputTooLong, InvalidInput, TargetNotAvailable
from app.methods.base import Method
from app.methods.callbacks import Exclusive, no_exclusion
from app.modeling.encoding import Encoded, encode_for
from app.modeling.loading import LoadedModel
from app.modeling.targets import (
    AnyTarget,
    BoundTarget,
    HeadLookup,
    MaskedTokenTarget,
    bind_target,
    default_target,
)

Mode = Literal["delete", "mask"]
Order = Literal["most", "least"]
STEPS = [step / 10 for step in range(11)]
ERASER_BINS = [0.01, 0.05, 0.10, 0.20, 0.50]
RANDOM = "random"


@dataclass
class DegradationEvaluation:
    methods: list[str]
    mode: str
    order: str
    probabilities: dict[str, list[list[float]]] = field(default_factory=dict)  # method -> [example][step]
    correct: dict[str, list[list[bool]]] = field(default_factory=dict)  # method -> [example][step]
    comprehensiveness: dict[str, list[float]] = field(default_factory=dict)
    sufficiency: dict[str, list[float]] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    labels: list[str] = field(default_factory=list)

    def extend(self, later: DegradationEvaluation) -> None:
        """Append the examples of ``later``, an evaluation of the rows that follow (a shard), in place."""
        for name in self.methods:
            self.probabilities[name] += later.probabilities[name]
            self.correct[name] += later.correct[name]
            self.comprehensiveness[name] += later.comprehensiveness[name]
            self.sufficiency[name] += later.sufficiency[name]
        for reason, count in later.skipped.items():
            self.skipped[reason] = self.skipped.get(reason, 0) + count
        self.labels = self.labels or later.labels

    def summary(self) -> dict:
        table = {}
        for method in self.methods:
            probabilities = np.asarray(self.probabilities[method])
            if probabilities.size == 0:
                continue
            curve = probabilities.mean(axis=0)
            table[method] = {
                "probability": curve.tolist(),
                "accuracy": np.asarray(self.correct[method], dtype=float).mean(axis=0).tolist(),
                "aopc": float((probabilities[:, :1] - probabilities).mean()),
                "comprehensiveness": float(np.mean(self.comprehensiveness[method])),
                "sufficiency": float(np.mean(self.sufficiency[method])),
            }
        examples = len(next(iter(self.probabilities.values()), []))
        return {
            "methods": self.methods,
            "mode": self.mode,
            "order": self.order,
            "steps": STEPS,
            "bins": ERASER_BINS,
            "summary": table,
            "examples": examples,
            "skipped": self.skipped,
            "labels": self.labels,
        }


def ranking(scores: np.ndarray, removable: list[int], order: Order) -> list[int]:
    """Removable positions, most important first (``most``) or least important first (``least``)."""
    values = np.asarray(scores, dtype=np.float64)[removable]
    order_index = np.argsort(-values if order == "most" else values, kind="stable")
    return [removable[i] for i in order_index]


def count(fraction: float, total: int) -> int:
    """How many of ``total`` tokens make ``fraction`` of them (rounded; at least one for a non-zero bin)."""
    return 0 if fraction == 0 else max(1, min(total, int(round(fraction * total))))


def variant_inputs(
    encoded: Encoded, removed: list[set[int]], mode: Mode, mask_id: int | None, pad_id: int
) -> dict[str, torch.Tensor]:
    """One padded batch holding the input with each set of positions deleted (or masked)."""
    inputs = {name: tensor[0].tolist() for name, tensor in encoded.model_inputs().items()}
    rows: dict[str, list[list[int]]] = {name: [] for name in inputs}
    for positions in removed:
        for name, values in inputs.items():
            if mode == "delete":
                rows[name].append([v for i, v in enumerate(values) if i not in positions])
            elif name == "input_ids":
                rows[name].append([mask_id if i in positions else v for i, v in enumerate(values)])
            else:
                rows[name].append(list(values))
    width = max(len(row) for row in rows["input_ids"])
    fill = {"input_ids": pad_id, "attention_mask": 0, "token_type_ids": 0}
    device = encoded.input_ids.device
    return {
        name: torch.tensor([row + [fill[name]] * (width - len(row)) for row in batch], device=device)
        for name, batch in rows.items()
    }


def evaluate_degradation(
    loaded: LoadedModel,
    rows: list[tuple[str, str | None]],
    methods: dict[str, Method | None],
    target_spec: AnyTarget | None,
    *,
    mode: Mode = "delete",
    order: Order = "most",
    method_params: dict[str, dict] | None = None,
    heads: HeadLookup | None = None,
    max_tokens: int = 512,
    exclusive: Exclusive = no_exclusion,
    progress: Callable[[int, int], None] | None = None,
    seed: int = 0,
    first_row: int = 0,
) -> DegradationEvaluation:
    """Run the degradation test of every method on every (text, gold label) row.

    The random control draws row i's scores from its own stream, seeded by (``seed``, ``first_row`` + i):
    rows evaluated in shards (``first_row`` their offset) and joined with :meth:`DegradationEvaluation.extend`
    give the evaluation of all rows at once.
    """
    if isinstance(target_spec, MaskedTokenTarget):
        raise InvalidInput(
            "Degradation tests need a sentence-level target (classification, zero_shot or head)."
        )
    evaluation = DegradationEvaluation(list(methods), mode, order)
    for name in methods:
        evaluation.probabilities[name], evaluation.correct[name] = [], []
        evaluation.comprehensiveness[name], evaluation.sufficiency[name] = [], []
    for done, (text, gold) in enumerate(rows, start=1):
        rng = np.random.default_rng([seed, first_row + done - 1])
        with exclusive():
            _evaluate_example(
                loaded,
                text,
                gold,
                methods,
                target_spec,
                method_params or {},
                heads,
                max_tokens,
                evaluation,
                rng,
            )
        if progress is not None:
            progress(done, len(rows))
    return evaluation


def _skip(evaluation: DegradationEvaluation, reason: str) -> None:
    evaluation.skipped[reason] = evaluation.skipped.get(reason, 0) + 1


def _evaluate_example(
    loaded: LoadedModel,
    text: str,
    gold: str | None,
    methods: dict[str, Method | None],
    target_spec: AnyTarget | None,
    method_params: dict[str, dict],
    heads: HeadLookup | None,
    max_tokens: int,
    evaluation: DegradationEvaluation,
    rng: np.random.Generator,
) -> None:
    try:
        encoded = encode_for(loaded, text, max_tokens=max_tokens)
    except InputTooLong:
        _skip(evaluation, "too_long")
        return
    removable = [i for i, special in enumerate(encoded.special_mask) if not special]
    if len(removable) < 2:
        _skip(evaluation, "fewer_than_2_tokens")
        return
    spec = target_spec or default_target(loaded)
    if gold is not None:
        spec = spec.model_copy(update={"label": gold})
    try:
        target = bind_target(loaded, spec, encoded, heads=heads)
    except TargetNotAvailable as error:
        raise InvalidInput(f"Gold label {gold!r} is not a label of the target: {error.message}") from None
    evaluation.labels = evaluation.labels or list(target.labels)
    for name, method in methods.items():
        if method is None:
            scores = rng.random(encoded.length)
        else:
            params = method.Params.model_validate(method_params.get(name, {}))
            scores = method.run(loaded, encoded, params, target).scores
        _degrade(
            loaded, encoded, target, ranking(scores, removable, evaluation.order), removable, evaluation, name
        )


@torch.no_grad()
def _degrade(
    loaded: LoadedModel,
    encoded: Encoded,
    target: BoundTarget,
    ranked: list[int],
    removable: list[int],
    evaluation: DegradationEvaluation,
    name: str,
) -> None:
    total = len(removable)
    curve = [set(ranked[: count(step, total)]) for step in STEPS]
    comprehensive = [set(ranked[: count(fraction, total)]) for fraction in ERASER_BINS]
    sufficient = [set(removable) - set(ranked[: count(fraction, total)]) for fraction in ERASER_BINS]
    removed = curve + comprehensive + sufficient
    batch = variant_inputs(
        encoded,
        removed,
        evaluation.mode,
        loaded.tokenizer.mask_token_id or loaded.tokenizer.unk_token_id,
        loaded.tokenizer.pad_token_id or 0,
    )
    probabilities = torch.softmax(target.logits(**batch).double(), dim=-1)
    explained = probabilities[:, target.index].cpu().numpy()
    predicted = probabilities.argmax(dim=-1).cpu().numpy()
    steps, bins = len(STEPS), len(ERASER_BINS)
    full = explained[0]
    evaluation.probabilities[name].append(explained[:steps].tolist())
    evaluation.correct[name].append((predicted[:steps] == target.index).tolist())
    evaluation.comprehensiveness[name].append(float(np.mean(full - explained[steps : steps + bins])))
    evaluation.sufficiency[name].append(float(np.mean(full - explained[steps + bins :])))
