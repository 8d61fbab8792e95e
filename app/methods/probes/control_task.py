"""A control task for the structural probes: trees assigned by word type, learnable only by memorising types.

Hewitt & Liang, "Designing and Interpreting Probes with Control Tasks", EMNLP 2019
(https://aclanthology.org/D19-1275). A control task has the same inputs and output space as the linguistic
task, but its outputs are a fixed random function of the word type, so a probe reaches them only by
memorising types. *Selectivity* = metric on the real task - metric on the control task; a probe (and a layer)
is trustworthy where it is high. Their dependency control gives each type one behaviour out of {attach to
itself, to the sentence's first word, to its last word}.

The distance and depth probes (Hewitt & Manning, NAACL 2019) need a tree, and a self-attachment is not an
edge, so we keep the two attachments and close the tree:

- the sentence's first non-punctuation word is the root (depth 0);
- its last non-punctuation word attaches to the root (depth 1);
- every other word attaches, by its type's behaviour, to the first word (``FIRST``: depth 1) or to the
  last word (``LAST``: depth 2).

Why this design: any tree needs one root, and no rule over types alone can pick it (a sentence may repeat a
type), so at least one anchor is positional; with the root as the only anchor, every word hangs from it and
the task says nothing about types. A second anchor is the least position a type-dependent tree needs, and
H&L's first and last words are the natural pair. In exchange, everything else is set by type: a non-anchor
word's depth is 1 or 2 by its type alone, and the distance of two non-anchor words is 2 (same behaviour) or
3 (different), by their two types alone; distances to the anchors follow from the type too. Attaching to
the previous or next word instead would make depths depend on the sentence (chains) and can form cycles.

Behaviour probabilities come from the real treebank, as H&L drew their part-of-speech control tags from the
empirical tag distribution: P(FIRST) is the share of the training treebank's non-root, non-punctuation
words that hang directly from the root (gold depth 1), so the control's depth-1 share matches the real one
and all deeper words become depth 2 (the deepest a two-anchor tree allows).

A type is the lower-cased word form; its behaviour is a seeded hash of it (BLAKE2b, not Python's
per-process ``hash``), so training and dev sentences share it, types unseen in training get one by the same
rule, and the task is the same in every process. Anchors are chosen among non-punctuation words so that
the metrics, which exclude punctuation (its ``upos`` is kept), still score every control edge; punctuation
words themselves attach by their type like any other word (``anchors`` covers sentences with fewer than
two non-punctuation words).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

import numpy as np

from app.errors import InvalidInput
from app.methods.probes.features import WordFeatures
from app.methods.probes.treebank import TreeSentence, tree_distances

FIRST = "first"  # attach to the first (root) anchor: depth 1
LAST = "last"  # attach to the last anchor: depth 2
ROOT = "root"
ANCHOR = "anchor"  # the last anchor, attached to the root
METRICS = ("uuas", "distance_spearman", "root_accuracy", "depth_spearman")


@dataclass(frozen=True)
class ControlTask:
    """Type-assigned trees: each lower-cased word form attaches to the first or last anchor, by a seeded hash.

    ``first_share`` is P(FIRST); ``seed`` selects the hash, hence which types attach where.
    """

    first_share: float
    seed: int

    def __post_init__(self) -> None:
        if not 0.0 <= self.first_share <= 1.0:
            raise InvalidInput(f"The control task's first_share must lie in [0, 1], not {self.first_share}.")

    @classmethod
    def from_sentences(cls, train: list[TreeSentence], seed: int) -> ControlTask:
        """The task whose P(FIRST) is the training treebank's share of depth-1 words (see the module)."""
        return cls(first_share=depth_one_share(train), seed=seed)

    def behaviour(self, word: str) -> str:
        """FIRST or LAST for this word's type (its lower-cased form), the same in every sentence."""
        digest = hashlib.blake2b(f"{self.seed}\x00{word.lower()}".encode(), digest_size=8).digest()
        draw = int.from_bytes(digest, "big") / 2.0**64  # uniform in [0, 1)
        return FIRST if draw < self.first_share else LAST

    def relations(self, sentence: TreeSentence) -> list[str]:
        """Each word's role in its control tree: ROOT, ANCHOR, FIRST or LAST."""
        return self._roles(sentence, anchors(sentence))

    def _roles(self, sentence: TreeSentence, anchor_pair: tuple[int, int]) -> list[str]:
        root, anchor = anchor_pair
        roles = [self.behaviour(word) for word in sentence.words]
        roles[root] = ROOT
        if anchor != root:
            roles[anchor] = ANCHOR
        return roles

    def apply(self, sentences: list[TreeSentence]) -> list[TreeSentence]:
        """Copies of ``sentences`` with control heads (and roles as relations); words and upos unchanged."""
        return [self.control_sentence(sentence) for sentence in sentences]

    def control_sentence(self, sentence: TreeSentence) -> TreeSentence:
        anchor_pair = anchors(sentence)
        roles = self._roles(sentence, anchor_pair)
        return replace(sentence, heads=control_heads(roles, anchor_pair), relations=roles)

    def to_dict(self) -> dict:
        return {"first_share": self.first_share, "seed": self.seed}


def anchors(sentence: TreeSentence) -> tuple[int, int]:
    """0-based (root, last anchor): the first and last non-punctuation words.

    With no non-punctuation word the root is the first word; with one, the last anchor is the sentence's
    last (else first) word; a one-word sentence has the root alone (both anchors the same word).
    """
    words = [int(word) for word in np.flatnonzero(~sentence.punctuation)]
    root = words[0] if words else 0
    options = [*words[-1:], sentence.length - 1, 0]
    return root, next((word for word in options if word != root), root)


def control_heads(roles: list[str], anchor_pair: tuple[int, int]) -> list[int]:
    """1-based heads of the control tree: ROOT -> 0, ANCHOR and FIRST -> root, LAST -> last anchor."""
    root, anchor = anchor_pair
    targets = {ROOT: 0, ANCHOR: root + 1, FIRST: root + 1, LAST: anchor + 1}
    return [targets[role] for role in roles]


def depth_one_share(sentences: list[TreeSentence]) -> float:
    """Share of non-root, non-punctuation words whose gold depth is 1 (dependents of the root)."""
    depth_one = total = 0
    for sentence in sentences:
        depths = tree_distances(sentence.heads)[sentence.root]
        counted = ~sentence.punctuation & (depths > 0)
        depth_one += int((counted & (depths == 1)).sum())
        total += int(counted.sum())
    if not total:
        raise InvalidInput("The control task needs training sentences with at least one non-root word.")
    return depth_one / total


def control_features(features: WordFeatures, task: ControlTask) -> WordFeatures:
    """The same word vectors (shared, not copied) paired with the control trees of their sentences."""
    return WordFeatures(task.apply(features.sentences), features.vectors, list(features.skipped))


def selectivity(real: dict, control: dict) -> dict[str, dict[str, float | None]]:
    """Per layer, real minus control for UUAS, distance Spearman, root accuracy and depth Spearman.

    ``real`` and ``control`` are ``evaluate_probes`` reports (or pipeline summaries) with a ``layers`` entry,
    or that per-layer dict itself; only layers in both are kept; a metric missing on either side gives None.
    """
    real_layers, control_layers = _layers(real), _layers(control)
    result = {}
    for layer, values in real_layers.items():
        if layer not in control_layers:
            continue
        other = control_layers[layer]
        result[layer] = {
            name: None
            if values.get(name) is None or other.get(name) is None
            else float(values[name] - other[name])
            for name in METRICS
        }
    return result


def _layers(report: dict) -> dict[str, dict]:
    return report["layers"] if "layers" in report else report
