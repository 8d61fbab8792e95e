"""CoNLL-U treebanks checked sentence by sentence: ids, heads in range, one root, no cycles.

The format (https://universaldependencies.org/format.html): sentences are separated by blank lines; lines
starting with ``#`` are comments; a word line has 10 tab-separated fields ID FORM LEMMA UPOS XPOS FEATS HEAD
DEPREL DEPS MISC. Multiword ranges (``1-2``) and empty nodes (``1.1``) are skipped, as
:func:`app.methods.probes.treebank.read_conllu` skips them; the words of a sentence are numbered 1..n and
each HEAD is 0 (the root) or one of them, so that the heads form a tree (a structural probe's gold distances,
Hewitt & Manning, NAACL 2019, are path lengths in it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from app.datasets.lines import EXTRA_LINE_BREAKS, decoded_lines, strip_ending
from app.datasets.plain import CONLLU_FIELDS, CONLLU_ID
from app.datasets.summary import DatasetKind, DatasetSummary, RowCount
from app.errors import DatasetInvalid

FIELD_NAMES = ("ID", "FORM", "LEMMA", "UPOS", "XPOS", "FEATS", "HEAD", "DEPREL", "DEPS", "MISC")
_WORD_ID = re.compile(r"[0-9]+")
_EXTRA_BREAK = re.compile(f"[{EXTRA_LINE_BREAKS}]")


@dataclass
class _Sentence:
    first_line: int
    lines: list[int] = field(default_factory=list)  # line of each word
    heads: list[int] = field(default_factory=list)  # 1-based heads, 0 = root


def validate_treebank(path: Path, filename: str, kind: DatasetKind, count: RowCount) -> DatasetSummary:
    """Check a CoNLL-U file sentence by sentence (holding one sentence at a time) and summarise it."""
    sentence: _Sentence | None = None
    words = 0
    for number, text in decoded_lines(path, filename):
        line = strip_ending(text)
        breaks = _EXTRA_BREAK.search(line)
        if breaks is not None:
            raise DatasetInvalid(
                filename,
                f"the character U+{ord(breaks.group()):04X} is a line break to the treebank reader: remove "
                "it.",
                line=number,
            )
        if not line.strip():
            if sentence is not None:
                words += _check_tree(sentence, filename, count)
            sentence = None
            continue
        sentence = sentence or _Sentence(number)
        if not line.startswith("#"):
            _add_word(sentence, line, number, filename)
    if sentence is not None:
        words += _check_tree(sentence, filename, count)
    if count.rows == 0:
        raise DatasetInvalid(
            filename, "the file is empty or has only blank lines; it holds no CoNLL-U sentences."
        )
    return DatasetSummary(
        kind=kind, format=".conllu", rows=count.rows, words=words if kind == "treebank" else None
    )


def _add_word(sentence: _Sentence, line: str, number: int, filename: str) -> None:
    fields = line.split("\t")
    if len(fields) != CONLLU_FIELDS:
        spaces = " (are they separated by spaces instead of tabs?)" if len(fields) < CONLLU_FIELDS else ""
        raise DatasetInvalid(
            filename,
            f"a word line has {CONLLU_FIELDS} tab-separated fields ({' '.join(FIELD_NAMES)}); this one has "
            f"{len(fields)}{spaces}.",
            line=number,
        )
    word_id, form, head = fields[0], fields[1], fields[6]
    if not CONLLU_ID.fullmatch(word_id):
        raise DatasetInvalid(
            filename,
            f"ID {word_id!r} is not a word number (1, 2, ...), a multiword range (1-2) or an empty node "
            "(1.1).",
            line=number,
            column="ID",
        )
    if not _WORD_ID.fullmatch(word_id):
        return  # multiword range or empty node: not a word of the tree
    expected = len(sentence.heads) + 1
    if int(word_id) != expected:
        raise DatasetInvalid(
            filename,
            f"word ID {word_id} where {expected} should come; the words of a sentence are numbered 1, 2, "
            f"3, ... (sentence at line {sentence.first_line}).",
            line=number,
            column="ID",
        )
    if not form.strip():
        raise DatasetInvalid(filename, "the word form is empty.", line=number, column="FORM")
    if not _WORD_ID.fullmatch(head):
        raise DatasetInvalid(
            filename,
            f"HEAD {head!r} is not a number: every word needs the ID of its head word, or 0 for the root.",
            line=number,
            column="HEAD",
        )
    sentence.lines.append(number)
    sentence.heads.append(int(head))


def _check_tree(sentence: _Sentence, filename: str, count: RowCount) -> int:
    """Check the heads of a finished sentence; count it and return its number of words."""
    size, where = len(sentence.heads), f"sentence at line {sentence.first_line}"
    if size == 0:
        raise DatasetInvalid(
            filename,
            f"the {where} has no words (only comments or multiword ranges).",
            line=sentence.first_line,
        )
    roots: list[int] = []
    for index, head in enumerate(sentence.heads):
        if head > size:
            raise DatasetInvalid(
                filename,
                f"HEAD {head} is out of range: the {where} has {size} words, so HEAD must be 0 to {size}.",
                line=sentence.lines[index],
                column="HEAD",
            )
        if head == 0:
            roots.append(index)
        if len(roots) == 2:
            raise DatasetInvalid(
                filename,
                f"a second root (HEAD 0): the {where} already has its root at line "
                f"{sentence.lines[roots[0]]} (word {roots[0] + 1}); a sentence has exactly one.",
                line=sentence.lines[index],
                column="HEAD",
            )
    if not roots:
        raise DatasetInvalid(
            filename, f"the {where} has no root: one word needs HEAD 0.", line=sentence.first_line
        )
    cycle = find_cycle(sentence.heads)
    if cycle:
        path = " -> ".join(str(word) for word in [*cycle, cycle[0]])
        raise DatasetInvalid(
            filename,
            f"the heads of the {where} form a cycle (word {path}), so it is not a tree: every word must lead "
            "up to the root.",
            line=sentence.lines[cycle[0] - 1],
            column="HEAD",
        )
    count.add()
    return size


def find_cycle(heads: list[int]) -> list[int]:
    """The 1-based words of a cycle among ``heads`` (1-based, 0 = root, all in range), or [] when none.

    Each word is walked towards the root once: a walk that meets a word of its own path has found a cycle,
    one that meets a word already known to reach the root (or the root) stops. O(n).
    """
    state = [0] * (len(heads) + 1)  # 0 unseen, 1 on the current path, 2 reaches the root
    state[0] = 2
    for start in range(1, len(heads) + 1):
        path, word = [], start
        while state[word] == 0:
            state[word] = 1
            path.append(word)
            word = heads[word - 1]
        if state[word] == 1:
            return path[path.index(word) :]
        for seen in path:
            state[seen] = 2
    return []
