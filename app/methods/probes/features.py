"""Word vectors of every layer, computed once per sentence and cached for probe training and evaluation.

Layer 0 is the embedding output; layer l >= 1 the output of block l. A word's vector is the mean of its
subwords' (Hewitt & Manning, NAACL 2019). Sentences the tokenizer cannot align (a word with no subword,
or more subwords than the model's limit) are counted and reported, never silently dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from app.methods.probes.alignment import sentence_text, subword_groups
from app.methods.probes.treebank import TreeSentence
from app.modeling.loading import LoadedModel

Progress = Callable[[int, int], None]
FEATURE_BATCH = 32
FEATURE_DTYPE = np.float16  # halves the cache; probes train in float32


@dataclass
class WordFeatures:
    """Cached word vectors: ``vectors[i]`` is [layer, word, hidden] for ``sentences[i]``."""

    sentences: list[TreeSentence]
    vectors: list[np.ndarray]
    skipped: list[dict] = field(default_factory=list)

    @property
    def num_layers(self) -> int:
        return int(self.vectors[0].shape[0]) if self.vectors else 0

    def extend(self, later: WordFeatures) -> None:
        """Append ``later``'s sentences (a shard that follows in batch order), in place."""
        self.sentences += later.sentences
        self.vectors += later.vectors
        self.skipped += later.skipped

    def report(self) -> dict:
        """How many sentences were used and why the others were not."""
        reasons: dict[str, int] = {}
        for item in self.skipped:
            reasons[item["reason"]] = reasons.get(item["reason"], 0) + 1
        return {"used": len(self.sentences), "skipped": len(self.skipped), "skipped_reasons": reasons}


def compute_word_features(
    loaded: LoadedModel,
    sentences: Sequence[TreeSentence],
    *,
    max_tokens: int,
    batch_size: int = FEATURE_BATCH,
    progress: Progress | None = None,
) -> WordFeatures:
    """Hidden states of all layers for each sentence, averaged over each word's subwords.

    Sentences run shortest first in batches of ``batch_size``; :func:`feature_order` is that order, so a
    slice of it on whole batches (a shard) computes the same vectors as the whole run.
    """
    features = WordFeatures([], [])
    order = feature_order(sentences)
    for start in range(0, len(order), batch_size):
        batch = [sentences[i] for i in order[start : start + batch_size]]
        for sentence, vectors, reason in _batch_features(loaded, batch, max_tokens):
            if vectors is None:
                features.skipped.append({"sent_id": sentence.sent_id, "reason": reason})
            else:
                features.sentences.append(sentence)
                features.vectors.append(vectors)
        if progress:
            progress(min(start + batch_size, len(order)), len(order))
    return features


def feature_order(sentences: Sequence[TreeSentence]) -> list[int]:
    """The order :func:`compute_word_features` runs sentences in: by word count, ties in corpus order."""
    return sorted(range(len(sentences)), key=lambda i: len(sentences[i].words))


def encode_sentences(loaded: LoadedModel, batch: list[TreeSentence]) -> tuple[Any, list, list[int]]:
    """Model inputs of treebank sentences (padded, not truncated), each word's subword positions
    (``subword_groups``; an empty group is a word no subword covers) and each sentence's subword count."""
    texts, spans = zip(*(sentence_text(s.words, s.text) for s in batch), strict=True)
    encoded = loaded.tokenizer(
        list(texts),
        return_offsets_mapping=True,
        return_special_tokens_mask=True,
        padding=True,
        truncation=False,
        return_tensors="pt",
    )
    offsets = encoded.pop("offset_mapping").tolist()
    special = encoded.pop("special_tokens_mask").bool() | ~encoded["attention_mask"].bool()
    lengths = encoded["attention_mask"].sum(1).tolist()
    groups = [subword_groups(o, s, sp) for o, s, sp in zip(offsets, special.tolist(), spans, strict=True)]
    if not loaded.uses_token_types:
        encoded.pop("token_type_ids", None)
    return encoded, groups, lengths


@torch.no_grad()
def _batch_features(
    loaded: LoadedModel, batch: list[TreeSentence], max_tokens: int
) -> list[tuple[TreeSentence, np.ndarray | None, str]]:
    encoded, groups, lengths = encode_sentences(loaded, batch)
    keep = [length <= max_tokens and all(groups[i]) for i, length in enumerate(lengths)]
    hidden = None
    if any(keep):
        rows = torch.tensor([i for i, k in enumerate(keep) if k])
        # a skipped (too long) row must not widen the others past the model's positions: drop its padding
        width = max(lengths[i] for i in rows.tolist()) if loaded.tokenizer.padding_side == "right" else None
        inputs = {key: value[rows, :width].to(loaded.device) for key, value in encoded.items()}
        outputs = loaded.model.base_model(**inputs, output_hidden_states=True)
        hidden = torch.stack(outputs.hidden_states, dim=1).float()  # [sentence, layer, token, hidden]
    results, row = [], 0
    for i, sentence in enumerate(batch):
        if not keep[i]:
            reason = "too many subwords" if lengths[i] > max_tokens else "word without subword"
            results.append((sentence, None, reason))
            continue
        results.append((sentence, mean_over_words(hidden[row], groups[i]), ""))
        row += 1
    return results


def mean_over_words(hidden: torch.Tensor, groups: list[list[int]]) -> np.ndarray:
    """[layer, token, hidden] -> [layer, word, hidden] mean of each word's subwords."""
    assignment = torch.zeros(len(groups), hidden.shape[1], device=hidden.device)
    for word, positions in enumerate(groups):
        assignment[word, positions] = 1.0 / len(positions)
    return torch.einsum("wt,lth->lwh", assignment, hidden).cpu().numpy().astype(FEATURE_DTYPE)


def random_copy(loaded: LoadedModel, seed: int = 0) -> LoadedModel:
    """A randomly initialised model of the same architecture and tokenizer: the probe control."""
    from app.modeling.loading import wrap_model

    torch.manual_seed(seed)
    model = type(loaded.model)(loaded.model.config)
    return wrap_model(
        model,
        loaded.tokenizer,
        name=f"{loaded.name} (random init)",
        source=loaded.source,
        device=loaded.device,
    )
