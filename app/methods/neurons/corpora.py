"""Corpora for the neuron activation index: read sentences from a file, name them, hash them, batch them.

An index is built over a named corpus (``wiki=corpora/wiki.txt``); the name is what the dashboard shows and
what identifies the index for one model revision, the content hash tells whether the file changed since.
Plain text is one sentence per line; CSV/TSV/JSONL read a named column (see
:func:`app.methods.evaluation.texts.read_texts`); CoNLL-U reads each sentence's ``# text =`` comment, or
joins the word forms when a sentence has none. :func:`plan_batches` tokenises a corpus once (truncating
to ``max_tokens``) and fixes the batch order every index build and resume uses: longest first.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from app.errors import InvalidInput
from app.methods.evaluation.texts import read_texts
from app.methods.neurons.topk import MAX_POSITIONS
from app.modeling.loading import LoadedModel

MAX_CORPUS_NAME_CHARS = 64
CORPUS_NAME = re.compile(rf"[A-Za-z0-9_-]{{1,{MAX_CORPUS_NAME_CHARS}}}")
CONLLU_SUFFIX = ".conllu"
CORPUS_HASH_BYTES = 16
DEFAULT_BATCH_SIZE = 32
DEFAULT_MAX_TOKENS = 128
MAX_BATCH_SIZE = 4096
MIN_TOKENS = 3  # [CLS] word [SEP]

_TEXT_COMMENT = re.compile(r"#\s*text\s*=\s?(.*)")
_CONLLU_COLUMNS = 10
_FORM_COLUMN = 1


def validate_corpus_name(name: str) -> str:
    """``name`` itself when it is 1-64 letters, digits, ``-`` or ``_`` (it appears in URLs and file names)."""
    if not CORPUS_NAME.fullmatch(name):
        raise InvalidInput(
            f"Corpus name {name!r} is not allowed: use 1-{MAX_CORPUS_NAME_CHARS} letters, digits, '-' or '_' "
            "(for example 'wiki' or 'news-1987')."
        )
    return name


def parse_corpus_spec(spec: str) -> tuple[str, Path]:
    """Split ``NAME=FILE`` (as typed on the command line) into a checked name and a path."""
    name, separator, file = spec.partition("=")
    if not separator or not file.strip():
        raise InvalidInput(
            f"Corpus {spec!r} is not of the form NAME=FILE, for example 'wiki=corpora/wikipedia.txt'."
        )
    return validate_corpus_name(name.strip()), Path(file.strip())


TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl")


def assign_columns(specs: list[dict[str, Any]], columns: tuple[str, ...] | list[str]) -> None:
    """Set each corpus spec's ``column`` from ``COLUMN`` (every table corpus) or ``NAME=COLUMN`` (one).

    Only CSV, TSV and JSONL corpora have columns; plain text and CoNLL-U corpora keep none.
    """
    tables = {spec["name"]: spec for spec in specs if Path(spec["path"]).suffix.lower() in TABLE_SUFFIXES}
    names = {spec["name"] for spec in specs}
    parsed = [(*value.rpartition("="), value) for value in columns]
    for name, separator, column, value in sorted(parsed, key=lambda item: bool(item[1])):  # NAME= last
        if not column.strip():
            raise InvalidInput(f"Column {value!r} is empty; give COLUMN or NAME=COLUMN.")
        if not separator:
            for spec in tables.values():
                spec["column"] = column.strip()
        elif name.strip() not in names:
            raise InvalidInput(
                f"--column {value!r} names no corpus; the corpora are {', '.join(sorted(names))}."
            )
        elif name.strip() not in tables:
            raise InvalidInput(
                f"Corpus {name.strip()!r} is not CSV, TSV or JSONL and has no columns: drop {value!r}."
            )
        else:
            tables[name.strip()]["column"] = column.strip()


def read_corpus(path: str | Path, column: str | None = None, limit: int | None = None) -> list[str]:
    """The first ``limit`` non-empty sentences of ``path`` (plain text, CSV, TSV, JSONL or CoNLL-U)."""
    if limit is not None and limit < 1:
        raise InvalidInput(f"The sentence limit must be at least 1 (got {limit}).")
    file = Path(path)
    if file.suffix.lower() != CONLLU_SUFFIX:
        return read_texts(file, column=column, limit=limit)
    if not file.is_file():
        raise InvalidInput(f"Corpus file {str(path)!r} does not exist.")
    if column is not None:
        raise InvalidInput(f"{file.name} is CoNLL-U: it has no named columns; leave the column unset.")
    sentences = _conllu_sentences(file.read_text(encoding="utf-8-sig"))
    if not sentences:
        raise InvalidInput(f"Corpus file {str(path)!r} holds no sentences.")
    return sentences[:limit] if limit else sentences


def _conllu_sentences(content: str) -> list[str]:
    """One text per sentence block: the ``# text =`` comment, else the FORMs of the word lines joined."""
    sentences = []
    for block in re.split(r"\n\s*\n", content.replace("\r\n", "\n")):
        text, forms = None, []
        for line in block.splitlines():
            if line.startswith("#"):
                match = _TEXT_COMMENT.fullmatch(line.strip())
                text = match.group(1).strip() if match and text is None else text
                continue
            columns = line.split("\t")
            # multiword ranges ("1-2") and empty nodes ("1.1") have non-integer ids: not surface words
            if len(columns) == _CONLLU_COLUMNS and columns[0].isdigit():
                forms.append(columns[_FORM_COLUMN])
        sentence = text if text else " ".join(forms)
        if sentence.strip():
            sentences.append(sentence.strip())
    return sentences


def corpus_hash(sentences: list[str]) -> str:
    """A content hash of the sentence list (order matters: sentence ids index into it)."""
    digest = hashlib.blake2b(digest_size=CORPUS_HASH_BYTES)
    digest.update(str(len(sentences)).encode())
    for sentence in sentences:
        encoded = sentence.encode("utf-8")
        digest.update(len(encoded).to_bytes(8, "little"))
        digest.update(encoded)
    return digest.hexdigest()


@dataclass
class Batch:
    """Padded inputs of some corpus sentences (on the CPU) and which tokens count."""

    sentence_ids: torch.Tensor  # [batch] int64 corpus indices
    input_ids: torch.Tensor  # [batch, token]
    attention_mask: torch.Tensor  # [batch, token]
    valid: torch.Tensor  # [batch, token] bool: real tokens that are not special

    def __len__(self) -> int:
        return int(self.sentence_ids.shape[0])


@dataclass
class BatchPlan:
    """A tokenised corpus in the index's batch order: longest first, equal lengths by corpus order."""

    token_ids: list[list[int]]
    order: np.ndarray  # [sentence] corpus indices in batch order
    batch_size: int
    pad_id: int
    special_ids: torch.Tensor  # [n] int64 ids never counted ([UNK] excepted: it stands for a word)
    corpus_ids: np.ndarray | None = None  # [row] corpus index of each token_ids row (None: the row itself)

    def batches(self, start: int = 0) -> Iterator[Batch]:
        """Batches over ``order[start:]`` (``start`` = sentences already done, for a resumed build)."""
        for offset in range(start, len(self.order), self.batch_size):
            yield self.batch(self.order[offset : offset + self.batch_size])

    def shard(self, start: int, stop: int) -> BatchPlan:
        """Sentences ``start:stop`` of the batch order as a plan of their own: the same batches (``start`` a
        multiple of the batch size), the same corpus ids, only these sentences' tokens (to send a worker)."""
        if start % self.batch_size:
            raise InvalidInput(
                f"A shard starts on a batch boundary (multiple of {self.batch_size}; got {start})."
            )
        rows = self.order[start:stop]
        return replace(
            self,
            token_ids=[self.token_ids[row] for row in rows],
            order=np.arange(len(rows)),
            corpus_ids=rows if self.corpus_ids is None else self.corpus_ids[rows],
        )

    def batch(self, sentence_ids: np.ndarray) -> Batch:
        """The padded batch of these rows of ``token_ids`` (rows are corpus ids in a whole-corpus plan)."""
        rows = [self.token_ids[i] for i in sentence_ids]
        ids = np.full((len(rows), max(len(row) for row in rows)), self.pad_id, dtype=np.int64)
        mask = np.zeros(ids.shape, dtype=np.int64)
        for index, row in enumerate(rows):
            ids[index, : len(row)] = row
            mask[index, : len(row)] = 1
        input_ids, attention_mask = torch.from_numpy(ids), torch.from_numpy(mask)
        valid = attention_mask.bool() & ~torch.isin(input_ids, self.special_ids)
        ids = sentence_ids if self.corpus_ids is None else self.corpus_ids[np.asarray(sentence_ids)]
        return Batch(torch.as_tensor(ids, dtype=torch.int64), input_ids, attention_mask, valid)


def resolve_max_tokens(loaded: LoadedModel, max_tokens: int | None) -> int:
    """The truncation length: ``max_tokens`` if the model allows it, else an error; None = the default."""
    limit = min(loaded.max_positions, MAX_POSITIONS)
    if max_tokens is None:
        return min(DEFAULT_MAX_TOKENS, limit)
    if not MIN_TOKENS <= max_tokens <= limit:
        raise InvalidInput(
            f"max_tokens must be between {MIN_TOKENS} and {limit} for {loaded.name} (got {max_tokens})."
        )
    return max_tokens


def plan_batches(
    loaded: LoadedModel, sentences: list[str], batch_size: int, max_tokens: int | None = None
) -> BatchPlan:
    """Tokenise ``sentences`` (truncated to ``max_tokens``) and fix the batch order."""
    if not sentences:
        raise InvalidInput("The corpus holds no sentences.")
    if not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise InvalidInput(f"Batch size must be between 1 and {MAX_BATCH_SIZE} (got {batch_size}).")
    max_tokens = resolve_max_tokens(loaded, max_tokens)
    tokenizer = loaded.tokenizer
    token_ids = tokenizer(
        sentences,
        truncation=True,
        max_length=max_tokens,
        return_attention_mask=False,
        return_token_type_ids=False,
    )["input_ids"]
    lengths = np.array([len(row) for row in token_ids])
    special = sorted(set(tokenizer.all_special_ids) - {tokenizer.unk_token_id})
    return BatchPlan(
        token_ids=token_ids,
        order=np.lexsort((np.arange(len(lengths)), -lengths)),
        batch_size=batch_size,
        pad_id=int(tokenizer.pad_token_id or 0),
        special_ids=torch.tensor(special, dtype=torch.int64),
    )
