"""CoNLL-U treebanks: words, gold heads, and the tree distances and depths a structural probe learns.

Hewitt & Manning, "A Structural Probe for Finding Syntax in Word Representations", NAACL 2019
(https://aclanthology.org/N19-1419): the gold distance of two words is the number of edges between them in
the dependency tree; the gold depth of a word is its number of edges from the root.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from app.errors import InvalidInput

PUNCTUATION_TAGS = frozenset({"PUNCT"})


@dataclass(frozen=True)
class TreeSentence:
    """One sentence of a treebank; ``heads[i]`` is the 1-based head of word ``i`` (0 = root)."""

    words: list[str]
    heads: list[int]
    upos: list[str] = field(default_factory=list)
    relations: list[str] = field(default_factory=list)
    sent_id: str = ""
    text: str = ""

    @property
    def length(self) -> int:
        return len(self.words)

    @property
    def punctuation(self) -> np.ndarray:
        """[word] True where the word is punctuation (excluded from UUAS and root accuracy)."""
        return np.array([tag in PUNCTUATION_TAGS for tag in self.upos] or [False] * self.length, dtype=bool)

    @property
    def root(self) -> int:
        """0-based index of the root word."""
        return self.heads.index(0)


def read_conllu(path: str | Path, limit: int | None = None) -> list[TreeSentence]:
    """Sentences of a CoNLL-U file; multiword ranges (``1-2``) and empty nodes (``1.1``) are skipped."""
    file = Path(path)
    if not file.is_file():
        raise InvalidInput(f"Treebank {str(path)!r} does not exist (expected a CoNLL-U file).")
    sentences: list[TreeSentence] = []
    block: list[str] = []
    for line in [*file.read_text(encoding="utf-8-sig").splitlines(), ""]:
        if line.strip():
            block.append(line)
            continue
        if block:
            sentences.append(_parse_block(block, file, len(sentences)))
            block = []
        if limit and len(sentences) >= limit:
            break
    if not sentences:
        raise InvalidInput(f"Treebank {str(path)!r} holds no CoNLL-U sentences.")
    return sentences


def _parse_block(lines: list[str], file: Path, number: int) -> TreeSentence:
    words, heads, upos, relations = [], [], [], []
    sent_id = text = ""
    for line in lines:
        if line.startswith("#"):
            key, _, value = line[1:].partition("=")
            if key.strip() == "sent_id":
                sent_id = value.strip()
            elif key.strip() == "text":
                text = value.strip()
            continue
        columns = line.split("\t")
        if len(columns) != 10:
            raise InvalidInput(
                f"{file.name}: sentence {number + 1} has a line without 10 tab-separated columns."
            )
        if not columns[0].isdigit():
            continue  # multiword range or empty node
        if not columns[6].isdigit():
            raise InvalidInput(f"{file.name}: sentence {number + 1} has a word without a numeric head.")
        words.append(columns[1])
        upos.append(columns[3])
        heads.append(int(columns[6]))
        relations.append(columns[7])
    _check_tree(heads, file, number)
    return TreeSentence(words, heads, upos, relations, sent_id or f"{file.stem}-{number + 1}", text)


def _check_tree(heads: list[int], file: Path, number: int) -> None:
    if heads.count(0) != 1 or any(head > len(heads) for head in heads):
        raise InvalidInput(f"{file.name}: sentence {number + 1} is not a tree with one root.")


def tree_distances(heads: list[int]) -> np.ndarray:
    """[word, word] number of edges between two words in the tree given by 1-based ``heads``.

    d(i, j) = depth(i) + depth(j) - 2 depth(lowest common ancestor); the common ancestors of two words
    (each counted with itself) are the path from the root to their lowest common ancestor.
    """
    count = len(heads)
    ancestors = np.zeros((count, count), dtype=np.int32)  # [word, ancestor-or-self]
    for word in range(count):
        node, steps = word, 0
        while True:
            ancestors[word, node] = 1
            if heads[node] == 0:
                break
            node, steps = heads[node] - 1, steps + 1
            if steps > count:
                raise InvalidInput("The heads contain a cycle; they do not form a tree.")
    depth = ancestors.sum(1) - 1
    common = ancestors @ ancestors.T
    return (depth[:, None] + depth[None, :] - 2 * (common - 1)).astype(np.int32)


def gold_edges(heads: list[int], keep: np.ndarray | None = None) -> set[tuple[int, int]]:
    """Undirected edges (low, high) of the tree, 0-based, between words both kept by ``keep``."""
    edges = set()
    for child, head in enumerate(heads):
        if head == 0:
            continue
        parent = head - 1
        if keep is None or (keep[child] and keep[parent]):
            edges.add((min(child, parent), max(child, parent)))
    return edges
