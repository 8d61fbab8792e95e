"""Faithfulness of context-mixing methods: rank correlation with blank-out, per layer.

Following the evaluation of Mohebbi, Zuidema, Chrupała & Alishahi (EACL 2023, Section 5): for each sentence,
each method's rolled-out mixing row of the position the prediction is read from ([CLS] for classification
and zero-shot targets, the [MASK] position for masked-token targets; or the mean of all word rows) is
compared by Spearman's rho with blank-out importance: the drop of the target score when one token is removed
from the input (leave-one-token-out; special tokens are never removed). Reported per method and per layer
(rollout up to that layer) as mean and standard deviation over sentences.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from scipy.stats import spearmanr

from app.errors import InputTooLong, InvalidInput
from app.methods.base import Method
from app.methods.callbacks import Exclusive, no_exclusion
from app.methods.mixing.common import rollout
from app.modeling.encoding import Encoded, encode_for
from app.modeling.loading import LoadedModel
from app.modeling.targets import BoundTarget, TargetSpec, bind_target

Row = Literal["auto", "cls", "mask", "mean"]
RANDOM = "random"  # control: uniformly random mixing rows (expected rho around 0)
Progress = Callable[[int, int], None]


@dataclass
class MixingEvaluation:
    """Per method: Spearman rho per layer, one list of sentence values per layer."""

    methods: list[str]
    row: str
    target: dict | None
    layers: int
    correlations: dict[str, list[list[float]]] = field(default_factory=dict)  # method -> [layer][sentence]
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> count

    def extend(self, later: MixingEvaluation) -> None:
        """Append the sentences of ``later``, an evaluation of the texts that follow (a shard), in place."""
        for name, per_layer in later.correlations.items():
            for mine, theirs in zip(self.correlations[name], per_layer, strict=True):
                mine += theirs
        for reason, count in later.skipped.items():
            self.skipped[reason] = self.skipped.get(reason, 0) + count
        self.target = self.target or later.target

    def summary(self) -> dict:
        """Mean, standard deviation and count per method and layer (the table the README shows)."""
        table = {}
        for method, per_layer in self.correlations.items():
            table[method] = {
                "mean": [float(np.mean(values)) if values else None for values in per_layer],
                "std": [float(np.std(values)) if values else None for values in per_layer],
                "n": [len(values) for values in per_layer],
            }
        return {
            "methods": self.methods,
            "row": self.row,
            "target": self.target,
            "layers": self.layers,
            "summary": table,
            "skipped": self.skipped,
            "sentences": max((n for entry in table.values() for n in entry["n"]), default=0),
        }


def blank_out(loaded: LoadedModel, encoded: Encoded, target: BoundTarget) -> np.ndarray:
    """Score drop when each token is removed, [token]; special tokens get NaN. One padded batch."""
    ids = encoded.input_ids[0]
    removable = [i for i, special in enumerate(encoded.special_mask) if not special]
    keep = [torch.tensor([j for j in range(encoded.length) if j != i], device=ids.device) for i in removable]
    inputs = {
        name: torch.stack([tensor[0][k] for k in keep]) for name, tensor in encoded.model_inputs().items()
    }
    with torch.no_grad():
        full = target.scores(**encoded.model_inputs())[0, target.index]
        if target.position is None:
            reduced = target.scores(**inputs)[:, target.index]
        else:  # the [MASK] moves one place left when a token before it is removed
            logits = loaded.model(**inputs).logits
            positions = torch.tensor([target.position - (i < target.position) for i in removable])
            reduced = logits[torch.arange(len(removable)), positions, target.index]
    importance = np.full(encoded.length, np.nan)
    importance[removable] = (full - reduced).double().cpu().numpy()
    return importance


def rollout_layers(result: object) -> np.ndarray:
    """[layer, query, key] rollout of a mixing result; raw attention is chained from its head means."""
    chained = getattr(result, "rollout_layers", None)
    if chained is None:
        chained = rollout(torch.from_numpy(np.asarray(result.mean, dtype=np.float64))).numpy()
    return np.asarray(chained, dtype=np.float64)


def row_of(rollout: np.ndarray, encoded: Encoded, row: Row, target: BoundTarget) -> np.ndarray:
    """The mixing row compared with blank-out: [layer, key]."""
    if row == "mean":
        words = [i for i, special in enumerate(encoded.special_mask) if not special]
        return rollout[:, words, :].mean(axis=1)
    if row == "mask" or (row == "auto" and target.position is not None):
        if target.position is None:
            raise InvalidInput("row 'mask' needs a masked_token target.")
        return rollout[:, target.position, :]
    return rollout[:, 0, :]


def evaluate_mixing(
    loaded: LoadedModel,
    texts: Iterable[str],
    methods: dict[str, Method | None],
    target_spec: TargetSpec | None,
    *,
    row: Row = "auto",
    max_tokens: int = 512,
    exclusive: Exclusive = no_exclusion,
    progress: Progress | None = None,
    first_text: int = 0,
) -> MixingEvaluation:
    """Run every method and blank-out on every text; collect Spearman's rho per method and layer.

    ``methods`` maps names to registered mixing methods; the name ``random`` (value None) is a control whose
    scores for text i come from a stream seeded by ``first_text`` + i, so texts evaluated in shards and
    joined with :meth:`MixingEvaluation.extend` give the evaluation of all texts at once.
    """
    texts = list(texts)
    evaluation = MixingEvaluation(list(methods), row, None, loaded.num_layers)
    evaluation.correlations = {name: [[] for _ in range(loaded.num_layers)] for name in methods}
    for done, text in enumerate(texts, start=1):
        rng = np.random.default_rng(first_text + done - 1)
        with exclusive():
            _evaluate_sentence(loaded, text, methods, target_spec, row, max_tokens, evaluation, rng)
        if progress is not None:
            progress(done, len(texts))
    return evaluation


def _evaluate_sentence(
    loaded: LoadedModel,
    text: str,
    methods: dict[str, Method | None],
    target_spec: TargetSpec | None,
    row: Row,
    max_tokens: int,
    evaluation: MixingEvaluation,
    rng: np.random.Generator,
) -> None:
    try:
        encoded = encode_for(loaded, text, max_tokens=max_tokens)
    except InputTooLong:
        evaluation.skipped["too_long"] = evaluation.skipped.get("too_long", 0) + 1
        return
    if sum(not special for special in encoded.special_mask) < 3:
        evaluation.skipped["fewer_than_3_tokens"] = evaluation.skipped.get("fewer_than_3_tokens", 0) + 1
        return
    target = bind_target(loaded, target_spec, encoded)
    evaluation.target = evaluation.target or {"kind": target.spec.kind, **target.spec.model_dump()}
    importance = blank_out(loaded, encoded, target)
    words = ~np.isnan(importance)
    for name, method in methods.items():
        if name == RANDOM:
            chained = rng.random((loaded.num_layers, encoded.length, encoded.length))
        else:
            chained = rollout_layers(method.run(loaded, encoded, method.Params(), None))
        rows = row_of(chained, encoded, row, target)
        for layer in range(loaded.num_layers):
            rho = spearmanr(rows[layer, words], importance[words]).statistic
            if np.isfinite(rho):
                evaluation.correlations[name][layer].append(float(rho))
