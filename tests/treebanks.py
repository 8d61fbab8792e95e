"""Tiny made-up CoNLL-U treebanks over the tiny tokenizer's vocabulary (tests only)."""

from __future__ import annotations

from pathlib import Path

# (words, 1-based heads, upos); every word is in tests/tiny.py's vocabulary
SENTENCES = [
    ("the cat sat on the mat .", [2, 3, 0, 6, 6, 3, 3], "DET NOUN VERB ADP DET NOUN PUNCT"),
    ("the dog was good .", [2, 4, 4, 0, 4], "DET NOUN AUX ADJ PUNCT"),
    ("this movie is very bad .", [2, 5, 5, 5, 0, 5], "DET NOUN AUX ADV ADJ PUNCT"),
    ("my cat sat with the dog", [2, 3, 0, 6, 6, 3], "PRON NOUN VERB ADP DET NOUN"),
    ("the keys to the cabinet are on the table .", [2, 6, 5, 5, 2, 0, 9, 9, 6, 6], None),
    ("i have a big dog .", [2, 0, 5, 5, 2, 2], "PRON VERB DET ADJ NOUN PUNCT"),
    ("you can see the old mat", [3, 3, 0, 6, 6, 3], None),
    ("we had a long review", [2, 0, 5, 5, 2], "PRON VERB DET ADJ NOUN"),
]


def write_treebank(path: Path, count: int | None = None, *, extras: bool = True) -> Path:
    """Write the sentences (``count`` of them, cycling) as CoNLL-U, with a multiword range and an empty node
    in the first sentence when ``extras``."""
    blocks = []
    chosen = [SENTENCES[i % len(SENTENCES)] for i in range(count or len(SENTENCES))]
    for number, (text, heads, upos) in enumerate(chosen):
        words = text.split()
        tags = (upos or " ".join("PUNCT" if w in ".,!?" else "X" for w in words)).split()
        lines = [f"# sent_id = s{number + 1}", f"# text = {text}"]
        for i, (word, head, tag) in enumerate(zip(words, heads, tags, strict=True), start=1):
            if extras and number == 0 and i == 1:
                lines.append("1-2\tthecat\t_\t_\t_\t_\t_\t_\t_\t_")
            lines.append(f"{i}\t{word}\t{word}\t{tag}\t_\t_\t{head}\t{'root' if head == 0 else 'dep'}\t_\t_")
            if extras and number == 0 and i == 3:
                lines.append("3.1\tsat\tsit\tVERB\t_\t_\t_\t_\t3:conj\t_")
        blocks.append("\n".join(lines))
    path.write_text("\n\n".join(blocks) + "\n\n", encoding="utf-8")
    return path
