"""The ``structural_probe`` method: the syntax tree a layer encodes for one sentence.

Hewitt & Manning, "A Structural Probe for Finding Syntax in Word Representations", NAACL 2019
(https://aclanthology.org/N19-1419). A trained distance probe gives predicted tree distances between
the words; their minimum spanning tree is the predicted (undirected) tree, oriented away from the word the
depth probe puts shallowest (the predicted root). Output: ``words``, ``heads`` [word] (1-based,
0 = root), ``distances`` [word, word] and ``depths`` [word] of the chosen layer; the same for every probed
layer in ``layers``, ``layer_heads``, ``layer_distances``, ``layer_depths``, ``layer_uuas``; and ``uuas``
(punctuation excluded) when the sentence is in the probe set's treebank.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from app.errors import InvalidInput
from app.methods.base import AnalysisMethod, Kind, Requirement, Result
from app.methods.probes.alignment import subword_groups, word_spans, words_from_encoding
from app.methods.probes.features import mean_over_words
from app.methods.probes.lookup import best_layer
from app.methods.probes.metrics import spanning_tree_edges_stacked
from app.methods.probes.probe_maps import predicted_depths, predicted_distances
from app.methods.probes.probe_set import ProbeSet
from app.methods.probes.treebank import TreeSentence, gold_edges
from app.modeling.encoding import Encoded
from app.modeling.loading import LoadedModel


class StructuralProbeParams(BaseModel):
    """Which layer's tree to draw, and which stored probe set (default: the newest for the model)."""

    model_config = ConfigDict(extra="forbid")
    layer: int | None = Field(None, ge=0, le=128, description="Layer (0 = embeddings; default: best UUAS).")
    probe_id: str | None = Field(None, max_length=200, description="Probe set id or name (default: newest).")


@dataclass
class ProbeContext:
    """What a probe method needs besides the sentence: the probes, and the gold tree when known."""

    probes: ProbeSet
    gold: TreeSentence | None = None


@dataclass
class StructuralProbeResult(Result):
    words: list[str]
    heads: list[int]  # [word] 1-based predicted head, 0 = root
    distances: np.ndarray  # [word, word]
    depths: np.ndarray  # [word]
    layer: int
    probe_id: str
    layers: list[int] = field(default_factory=list)
    layer_heads: list[list[int]] = field(default_factory=list)  # [layer][word]
    layer_distances: np.ndarray | None = None  # [layer, word, word]
    layer_depths: np.ndarray | None = None  # [layer, word]
    layer_uuas: list[float | None] | None = None
    gold_heads: list[int] | None = None
    punctuation: list[bool] | None = None
    uuas: float | None = None
    sent_id: str | None = None


class StructuralProbe(AnalysisMethod):
    """Predicted parse tree of each probed layer for the typed sentence (gold tree when in the treebank)."""

    name: ClassVar[str] = "structural_probe"
    kind: ClassVar[Kind] = "probe"
    version: ClassVar[int] = 1
    title: ClassVar[str] = "Structural probe"
    citation: ClassVar[str] = "Hewitt & Manning, NAACL 2019"
    summary: ClassVar[str] = (
        "The parse tree a linear probe reads from each layer's word vectors (probe distances predict "
        "tree distances)."
    )
    requires: ClassVar[Requirement] = "probe_set"
    Params: ClassVar[type[BaseModel]] = StructuralProbeParams
    result_type: ClassVar[type[Result]] = StructuralProbeResult

    def bind_params(self, params: StructuralProbeParams, given: ProbeContext) -> StructuralProbeParams:
        """The params with the probe set's id and the drawn layer (default: best dev UUAS) written in."""
        probes = given.probes
        layer = params.layer if params.layer is not None else best_layer(probes)
        if layer not in probes.layers:
            raise InvalidInput(
                f"params.layer: probe set {probes.id} has layers {probes.layers}, not {layer}."
            )
        return params.model_copy(update={"probe_id": probes.id, "layer": layer})

    @torch.no_grad()
    def run(
        self, loaded: LoadedModel, encoded: Encoded, params: StructuralProbeParams, given: ProbeContext
    ) -> StructuralProbeResult:
        params = self.bind_params(params, given)
        probes, gold = given.probes, given.gold
        spans = word_spans(encoded.text, gold.words) if gold else None
        if spans is None:
            gold = None
            spans = words_from_encoding(encoded.text, encoded.word_ids, encoded.offsets)
        groups = subword_groups(encoded.offsets, encoded.special, spans)
        if gold is not None and not all(groups):
            gold, spans = None, words_from_encoding(encoded.text, encoded.word_ids, encoded.offsets)
            groups = subword_groups(encoded.offsets, encoded.special, spans)
        outputs = loaded.model.base_model(**encoded.model_inputs(), output_hidden_states=True)
        hidden = torch.stack(outputs.hidden_states)[:, 0].float()  # [layer, token, hidden]
        vectors = torch.from_numpy(mean_over_words(hidden, groups)[probes.layers].astype(np.float32))
        distance_maps = torch.from_numpy(np.asarray(probes.distance, dtype=np.float32))
        depth_maps = torch.from_numpy(np.asarray(probes.depth, dtype=np.float32))
        distances = predicted_distances(vectors[:, None], distance_maps)[:, 0].numpy()
        depths = predicted_depths(vectors[:, None], depth_maps)[:, 0].numpy()
        words = gold.words if gold else [encoded.text[start:end] for start, end in spans]
        return _result(words, distances, depths, probes, params.layer, gold)


def _result(
    words: list[str],
    distances: np.ndarray,
    depths: np.ndarray,
    probes: ProbeSet,
    layer: int | None,
    gold: TreeSentence | None,
) -> StructuralProbeResult:
    """Trees of every probed layer from distances [layer, word, word] and depths [layer, word]."""
    trees = spanning_tree_edges_stacked(distances)
    heads = [
        orient(tree, int(np.argmin(depth)), len(words)) for tree, depth in zip(trees, depths, strict=True)
    ]
    punctuation = gold.punctuation if gold else None
    scores = None
    if gold is not None:
        keep = ~punctuation
        truth = gold_edges(gold.heads, keep)
        trees_kept = spanning_tree_edges_stacked(distances, keep)
        scores = [len(truth & tree) / len(truth) if truth else None for tree in trees_kept]
    chosen = probes.layers.index(layer)
    return StructuralProbeResult(
        words=list(words),
        heads=heads[chosen],
        distances=distances[chosen],
        depths=depths[chosen],
        layer=layer,
        probe_id=probes.id,
        layers=list(probes.layers),
        layer_heads=heads,
        layer_distances=distances,
        layer_depths=depths,
        layer_uuas=scores,
        gold_heads=list(gold.heads) if gold else None,
        punctuation=punctuation.tolist() if punctuation is not None else None,
        uuas=scores[chosen] if scores else None,
        sent_id=gold.sent_id if gold else None,
    )


def orient(edges: set[tuple[int, int]], root: int, count: int) -> list[int]:
    """1-based heads (0 for ``root``) of an undirected tree over ``count`` words, directed away from root."""
    neighbours: dict[int, list[int]] = {word: [] for word in range(count)}
    for a, b in edges:
        neighbours[a].append(b)
        neighbours[b].append(a)
    heads = [0] * count
    seen = {root}
    queue = deque([root])
    while queue:
        node = queue.popleft()
        for other in sorted(neighbours[node]):
            if other not in seen:
                seen.add(other)
                heads[other] = node + 1
                queue.append(other)
    return heads
