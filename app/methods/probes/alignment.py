"""Word <-> subword alignment by character offsets, for any fast tokenizer.

A probe works on words (treebank tokens), the model on subwords. Each word is located in the sentence
text, and a subword belongs to the word whose character span contains the subword's first character.
A word's vector is the mean of its subwords' vectors (Hewitt & Manning, NAACL 2019, average subwords).
"""

from __future__ import annotations

from collections.abc import Sequence

Span = tuple[int, int]


def word_spans(text: str, words: Sequence[str]) -> list[Span] | None:
    """Character span of each word found left to right in ``text``; None when a word is missing."""
    spans: list[Span] = []
    cursor = 0
    for word in words:
        start = text.find(word, cursor)
        if start < 0 or text[cursor:start].strip():
            return None
        spans.append((start, start + len(word)))
        cursor = start + len(word)
    return spans


def sentence_text(words: Sequence[str], text: str = "") -> tuple[str, list[Span]]:
    """The text the model reads and each word's span in it: the treebank's own text when every word can be
    found in it in order (natural spacing), else the words joined by single spaces."""
    if text:
        spans = word_spans(text, words)
        if spans is not None:
            return text, spans
    joined = " ".join(words)
    return joined, word_spans(joined, words) or []


def subword_groups(
    offsets: Sequence[Span], special: Sequence[bool], spans: Sequence[Span]
) -> list[list[int]]:
    """For each word span, the positions of the (non-special) subwords overlapping it.

    A subword spanning two treebank words (``cannot`` read as one piece for ``can`` + ``not``) is shared
    by both; a word with no overlapping subword gets an empty group (the sentence cannot be aligned).
    """
    groups: list[list[int]] = [[] for _ in spans]
    first = 0
    for position, ((start, end), is_special) in enumerate(zip(offsets, special, strict=True)):
        if is_special or end <= start:
            continue
        while first < len(spans) and spans[first][1] <= start:
            first += 1
        word = first
        while word < len(spans) and spans[word][0] < end:
            groups[word].append(position)
            word += 1
    return groups


def words_from_encoding(text: str, word_ids: Sequence[int | None], offsets: Sequence[Span]) -> list[Span]:
    """Word spans the tokenizer's own pre-tokenizer found (for free text without a treebank)."""
    spans: dict[int, list[int]] = {}
    for word, (start, end) in zip(word_ids, offsets, strict=True):
        if word is None or end <= start:
            continue
        span = spans.setdefault(word, [start, end])
        span[0], span[1] = min(span[0], start), max(span[1], end)
    return [(start, end) for start, end in (spans[key] for key in sorted(spans))]
