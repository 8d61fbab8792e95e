"""Write the UD English EWT slices the package ships for its default probe set (``app/data/ud_ewt_*.conllu``).

    .venv/bin/python scripts/make_ud_slice.py [--every 1] [--dev-every 5]

Train: every ``--every``-th sentence (1st, 1+every-th, ...) of ``../shared/data/ud-english-ewt/
en_ewt-ud-train-subset.conllu`` (itself every 3rd document of the released EWT train split), so all five
genres stay in. Dev: every ``--dev-every``-th sentence of the released dev split ``en_ewt-ud-dev.conllu``
(never seen in training). Both are kept as valid 10-column CoNLL-U with only what ``read_conllu`` reads: ID,
FORM, UPOS, HEAD and DEPREL; LEMMA, XPOS, FEATS, DEPS and MISC become ``_``, empty nodes (``8.1``, enhanced
graph only) and comments other than ``sent_id`` and ``text`` are dropped, multiword token lines are kept.
``bench/default_probes.py`` measures the slice against the full subset (target: within 0.02 UUAS at the best
layer). The default keeps every sentence: smaller slices stayed 0.04 (every 2nd) and 0.08 (every 4th) UUAS
below, while the whole subset trains in about 70 s on 2 idle cores.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "ud-english-ewt"
TRAIN_SOURCE = SHARED / "en_ewt-ud-train-subset.conllu"
DEV_SOURCE = SHARED / "en_ewt-ud-dev.conllu"
DATA = ROOT / "app" / "data"
KEPT_COMMENTS = ("# sent_id", "# text")
KEPT_COLUMNS = (0, 1, 3, 6, 7)  # ID, FORM, UPOS, HEAD, DEPREL


def sentence_blocks(path: Path) -> list[list[str]]:
    """The sentences of a CoNLL-U file, each as its lines."""
    blocks, block = [], []
    for line in [*path.read_text(encoding="utf-8").splitlines(), ""]:
        if line.strip():
            block.append(line)
        elif block:
            blocks.append(block)
            block = []
    return blocks


def stripped(block: list[str]) -> list[str]:
    """One sentence with only the comments and columns the probe reader uses (still valid CoNLL-U)."""
    lines = []
    for line in block:
        if line.startswith("#"):
            if line.startswith(KEPT_COMMENTS):
                lines.append(line)
            continue
        columns = line.split("\t")
        if "." in columns[0]:
            continue  # an empty node: only in the enhanced graph, which this file does not keep
        lines.append("\t".join(value if i in KEPT_COLUMNS else "_" for i, value in enumerate(columns)))
    return lines


def write_slice(blocks: list[list[str]], every: int, path: Path) -> int:
    chosen = blocks[::every]
    path.write_text("".join("\n".join(stripped(block)) + "\n\n" for block in chosen), encoding="utf-8")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    print(f"{path}: {len(chosen)} sentences, {path.stat().st_size:,} bytes, sha256 {digest}")
    return len(chosen)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", type=int, default=1, help="Keep every N-th train subset sentence.")
    parser.add_argument("--dev-every", type=int, default=5, help="Keep every N-th dev sentence.")
    parser.add_argument("--out", type=Path, default=DATA, help="Folder to write the slices into.")
    args = parser.parse_args()
    if not TRAIN_SOURCE.is_file():
        raise SystemExit(f"{TRAIN_SOURCE} is missing: this script needs ../shared/data/ud-english-ewt")
    write_slice(sentence_blocks(TRAIN_SOURCE), args.every, args.out / "ud_ewt_train_slice.conllu")
    write_slice(sentence_blocks(DEV_SOURCE), args.dev_every, args.out / "ud_ewt_dev_slice.conllu")


if __name__ == "__main__":
    main()
