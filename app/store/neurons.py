"""Neuron activation indexes in the store: build bookkeeping, checkpoints, browsing and neuron details.

The index state itself (:class:`app.methods.neurons.stats.IndexState`) is kept one packed row per layer;
finishing adds one summary row per neuron for fast browsing. Every database failure becomes
``StoreUnavailable``.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.errors import InvalidInput, NotFound
from app.ids import new_id
from app.methods.neurons.corpora import corpus_hash, validate_corpus_name
from app.methods.neurons.stats import (
    HISTOGRAM_BINS,
    HISTOGRAM_LOW,
    HISTOGRAM_WIDTH,
    IndexState,
    histogram_edges,
)
from app.methods.neurons.units import NEURONS_KEY
from app.store.codec import FAST_LEVEL, pack, unpack
from app.store.neuron_records import Exemplar, NeuronDetail, NeuronIndexInfo, NeuronPage, NeuronSummary
from app.store.revisioned import RevisionedStore
from app.store.tables import NeuronIndexRow, NeuronLayerRow, NeuronSentenceRow, NeuronSummaryRow

BUILDING = "building"
DONE = "done"
SORT_COLUMNS = {
    "max": NeuronSummaryRow.maximum,
    "mean": NeuronSummaryRow.mean,
    "std": NeuronSummaryRow.std,
    "min": NeuronSummaryRow.minimum,
    "top_mean": NeuronSummaryRow.top_mean,
}
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
PACKING_THREADS = 2  # layer blobs compressed at once when a checkpoint or a finished index is written


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _summary(row: NeuronSummaryRow) -> NeuronSummary:
    fields = NeuronSummary.__dataclass_fields__
    return NeuronSummary(**{name: getattr(row, name) for name in fields})


class NeuronStore(RevisionedStore[NeuronIndexInfo]):
    """Save, resume, browse and delete activation indexes (one per revision, corpus name and basis: the
    neurons, or a dictionary's features)."""

    table = NeuronIndexRow
    what = "neuron index"
    name_column = "corpus"

    def _record(self, row: NeuronIndexRow) -> NeuronIndexInfo:
        fields = NeuronIndexInfo.__dataclass_fields__
        return NeuronIndexInfo(**{name: getattr(row, name) for name in fields})

    def _listing_order(self) -> list[Any]:
        return [NeuronIndexRow.corpus]

    def _missing(self, record_id: str) -> str:
        return f"No neuron index {record_id!r}; list them for the loaded model to find one."

    def start_or_resume(
        self,
        model_name: str,
        model_revision: str,
        corpus: str,
        source: str,
        sentences: list[str],
        *,
        k: int,
        max_tokens: int,
        basis: str = NEURONS_KEY,
    ) -> tuple[NeuronIndexInfo, IndexState | None]:
        """The index of (revision, corpus) to build: a new one, or an unfinished one with its checkpoint.

        A finished index is returned as is (no state) when it was built from the same sentences, k and
        max_tokens, and refused otherwise; an unfinished one built differently is started afresh.
        """
        validate_corpus_name(corpus)
        fingerprint = corpus_hash(sentences)
        settings = (fingerprint, k, max_tokens)
        existing = self.find(model_revision, corpus, basis)
        if existing is not None and (existing.corpus_hash, existing.k, existing.max_tokens) == settings:
            state = None if existing.status == DONE else self._checkpoint(existing)
            return existing, state
        if existing is not None and existing.status == DONE:
            raise InvalidInput(
                f"An index of corpus {corpus!r} ({basis}) for this model already exists (id {existing.id}) "
                "with other sentences or settings; delete it first or choose another corpus name."
            )
        if existing is not None:
            self.delete(existing.id)
        index_id = new_id()
        row = NeuronIndexRow(
            id=index_id,
            model_name=model_name,
            model_revision=model_revision,
            corpus=corpus,
            corpus_source=source,
            corpus_hash=fingerprint,
            sentence_count=len(sentences),
            k=k,
            max_tokens=max_tokens,
            num_layers=0,
            num_units=0,
            status=BUILDING,
            basis=basis,
            sentences_done=0,
            tokens=0,
            params={"histogram": {"low": HISTOGRAM_LOW, "width": HISTOGRAM_WIDTH, "bins": HISTOGRAM_BINS}},
        )
        try:
            with self._session(write=True) as session:
                session.add(row)
                session.flush()
                rows = [
                    {"index_id": index_id, "sentence_id": i, "text": text} for i, text in enumerate(sentences)
                ]
                session.execute(insert(NeuronSentenceRow), rows)
        except IntegrityError:  # another process started the same index meanwhile: use it
            found = self.find(model_revision, corpus, basis)
            if found is None:
                raise
            return found, self._checkpoint(found)
        return self.get(index_id), None

    def save_checkpoint(self, index_id: str, state: IndexState) -> NeuronIndexInfo:
        """Replace the saved state and ``sentences_done`` in one transaction (a crash keeps the last one)."""
        with self._session(write=True) as session:
            self._write_state(session, index_id, state, BUILDING)
        return self.get(index_id)

    def finish(self, index_id: str, state: IndexState) -> NeuronIndexInfo:
        """Save the complete state, write the per-neuron summaries and mark the index done."""
        if not state.complete:
            raise InvalidInput(
                f"The index state covers {state.sentences_done} of {state.num_sentences} sentences."
            )
        with self._session(write=True) as session:
            self._write_state(session, index_id, state, DONE)
            session.execute(delete(NeuronSummaryRow).where(NeuronSummaryRow.index_id == index_id))
            session.execute(insert(NeuronSummaryRow), _summary_rows(index_id, state))
        return self.get(index_id)

    def _write_state(self, session: Session, index_id: str, state: IndexState, status: str) -> None:
        session.execute(delete(NeuronLayerRow).where(NeuronLayerRow.index_id == index_id))
        # zlib releases the GIL while it compresses: the layers pack side by side
        with ThreadPoolExecutor(max_workers=PACKING_THREADS) as pool:
            blobs = list(
                pool.map(_pack_layer, (state.layer_arrays(layer) for layer in range(state.num_layers)))
            )
        layers = [{"index_id": index_id, "layer": layer, "data": blob} for layer, blob in enumerate(blobs)]
        session.execute(insert(NeuronLayerRow), layers)
        changed = session.execute(
            update(NeuronIndexRow)
            .where(NeuronIndexRow.id == index_id)
            .values(
                status=status,
                sentences_done=state.sentences_done,
                tokens=state.tokens,
                num_layers=state.num_layers,
                num_units=state.num_units,
                updated_at=datetime.now(UTC),
            )
        )
        if changed.rowcount == 0:
            raise NotFound(f"No neuron index {index_id!r} (was it deleted while building?).")

    def find(self, model_revision: str, corpus: str, basis: str = NEURONS_KEY) -> NeuronIndexInfo | None:
        """The index of this corpus name and basis built for this revision, if any."""
        return self._newest(model_revision, NeuronIndexRow.corpus == corpus, NeuronIndexRow.basis == basis)

    def list_for_revision(self, revision: str, basis: str = NEURONS_KEY) -> list[NeuronIndexInfo]:
        """The indexes of this revision over ``basis`` (default: the neurons), by corpus name."""
        query = (
            select(NeuronIndexRow)
            .where(NeuronIndexRow.model_revision == revision, NeuronIndexRow.basis == basis)
            .order_by(NeuronIndexRow.corpus)
        )
        with self._session() as session:
            return [self._record(row) for row in session.scalars(query)]

    def delete(self, index_id: str) -> None:
        """Remove an index and everything stored with it (explicitly: foreign-key cascades may be off)."""
        with self._session(write=True) as session:
            for table in (NeuronSummaryRow, NeuronLayerRow, NeuronSentenceRow):
                session.execute(delete(table).where(table.index_id == index_id))
            removed = session.execute(delete(NeuronIndexRow).where(NeuronIndexRow.id == index_id))
            if removed.rowcount == 0:
                raise NotFound(f"No neuron index {index_id!r} to delete.")

    def load_state(self, index_id: str) -> IndexState:
        """The saved state (complete or the last checkpoint), e.g. to merge it with another shard."""
        state = self._checkpoint(self.get(index_id))
        if state is None:
            raise NotFound(f"Neuron index {index_id!r} has no saved state yet.")
        return state

    def _checkpoint(self, info: NeuronIndexInfo) -> IndexState | None:
        query = (
            select(NeuronLayerRow).where(NeuronLayerRow.index_id == info.id).order_by(NeuronLayerRow.layer)
        )
        with self._session() as session:
            layers = [_unpack_layer(row.data) for row in session.scalars(query)]
        if not layers:
            return None
        scalars = {
            "k": info.k,
            "num_sentences": info.sentence_count,
            "sentences_done": info.sentences_done,
            "tokens": info.tokens,
        }
        return IndexState.from_layers(scalars, layers)

    def sentences(self, index_id: str, ids: list[int]) -> dict[int, str]:
        """Texts of the given sentence ids of an index."""
        query = select(NeuronSentenceRow.sentence_id, NeuronSentenceRow.text).where(
            NeuronSentenceRow.index_id == index_id, NeuronSentenceRow.sentence_id.in_(ids)
        )
        with self._session() as session:
            return {int(sentence_id): text for sentence_id, text in session.execute(query)}

    def neuron(self, index_id: str, layer: int, unit: int) -> NeuronDetail:
        """Exemplars (with their sentences), statistics and histogram of neuron (layer, unit)."""
        info = self.get(index_id)
        if not (0 <= layer < info.num_layers and 0 <= unit < info.num_units):
            raise NotFound(
                f"No neuron ({layer}, {unit}) in the index of corpus {info.corpus!r}: it has layers "
                f"0-{info.num_layers - 1} and units 0-{info.num_units - 1}."
            )
        query = select(NeuronLayerRow.data).where(
            NeuronLayerRow.index_id == index_id, NeuronLayerRow.layer == layer
        )
        with self._session() as session:
            arrays = _unpack_layer(session.scalars(query).one())
        sentence_ids = arrays["top_sentences"][unit]
        filled = sentence_ids >= 0
        texts = self.sentences(index_id, [int(i) for i in sentence_ids[filled]])
        exemplars = [
            Exemplar(texts.get(int(sentence), ""), int(sentence), int(position), float(value))
            for value, sentence, position in zip(
                arrays["top_values"][unit][filled],
                sentence_ids[filled],
                arrays["top_positions"][unit][filled],
                strict=True,
            )
        ]
        count = info.tokens
        mean = arrays["total"][unit] / count if count else math.nan
        variance = arrays["total_squares"][unit] / count - mean**2 if count else math.nan
        return NeuronDetail(
            index_id=index_id,
            layer=layer,
            unit=unit,
            exemplars=exemplars,
            count=count,
            mean=_finite(mean),
            std=_finite(math.sqrt(max(variance, 0.0))) if count else None,
            minimum=_finite(arrays["minimum"][unit]),
            maximum=_finite(arrays["maximum"][unit]),
            histogram_edges=histogram_edges().tolist(),
            histogram=[int(c) for c in arrays["histogram"][unit]],
        )

    def neurons_page(
        self,
        index_id: str,
        layer: int | None = None,
        sort: str = "max",
        descending: bool = True,
        limit: int = DEFAULT_PAGE_SIZE,
        offset: int = 0,
    ) -> NeuronPage:
        """One page of neuron summaries of a finished index, optionally of one layer, sorted by ``sort``."""
        if sort not in SORT_COLUMNS:
            raise InvalidInput(f"Unknown sort {sort!r}; sort by one of {', '.join(SORT_COLUMNS)}.")
        if not 1 <= limit <= MAX_PAGE_SIZE or offset < 0:
            raise InvalidInput(f"limit must be 1-{MAX_PAGE_SIZE} and offset at least 0.")
        self.get(index_id)
        where = [NeuronSummaryRow.index_id == index_id]
        if layer is not None:
            where.append(NeuronSummaryRow.layer == layer)
        column = SORT_COLUMNS[sort]
        order = (column.desc() if descending else column.asc()).nulls_last()
        query = (
            select(NeuronSummaryRow)
            .where(*where)
            .order_by(order, NeuronSummaryRow.layer, NeuronSummaryRow.unit)
            .limit(limit)
            .offset(offset)
        )
        with self._session() as session:
            total = session.scalar(select(func.count()).select_from(NeuronSummaryRow).where(*where))
            return NeuronPage(int(total or 0), [_summary(row) for row in session.scalars(query)])


def _pack_layer(arrays: dict[str, np.ndarray]) -> bytes:
    """One layer's arrays, narrowed where lossless (positions < 1024, counts < 2**31), packed."""
    narrow = dict(arrays)
    narrow["top_positions"] = arrays["top_positions"].astype(np.int16)
    if arrays["histogram"].max(initial=0) < np.iinfo(np.int32).max:
        narrow["histogram"] = arrays["histogram"].astype(np.int32)
    return pack(narrow, level=FAST_LEVEL)


def _unpack_layer(data: bytes) -> dict[str, np.ndarray]:
    arrays = unpack(data)
    arrays["top_positions"] = arrays["top_positions"].astype(np.int32)
    arrays["histogram"] = arrays["histogram"].astype(np.int64)
    return arrays


def _summary_rows(index_id: str, state: IndexState) -> list[dict[str, Any]]:
    """One dict per neuron; non-finite numbers (no tokens at all) become NULL."""
    filled = state.top_sentences >= 0
    with np.errstate(invalid="ignore"):
        top_mean = np.where(filled, state.top_values, 0.0).sum(-1) / filled.sum(-1)
    columns = {
        "mean": state.mean,
        "std": state.std,
        "minimum": state.minimum,
        "maximum": state.maximum,
        "top_mean": top_mean,
    }
    lists = {
        name: np.where(np.isfinite(values), values, np.nan).astype(np.float64).tolist()
        for name, values in columns.items()
    }
    rows = []
    for layer in range(state.num_layers):
        for unit in range(state.num_units):
            row = {name: values[layer][unit] for name, values in lists.items()}
            rows.append({"index_id": index_id, "layer": layer, "unit": unit, **_nulls(row)})
    return rows


def _nulls(row: dict[str, float]) -> dict[str, float | None]:
    return {name: None if math.isnan(value) else value for name, value in row.items()}
