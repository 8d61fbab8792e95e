"""Tables of the neuron activation index (portable types: SQLite by default, PostgreSQL for teams).

- ``neuron_indexes``: one row per (model revision, corpus name): identity, corpus fingerprint, build
  parameters, status and how far a build got (``sentences_done``, for resuming).
- ``neuron_index_sentences``: the corpus sentences, one row each, so exemplars fetch only their own text.
- ``neuron_index_layers``: the index state of one layer, packed (:func:`app.store.codec.pack`): top-k
  exemplars, statistics and histograms of its units. A checkpoint rewrites these rows and the index row's
  ``sentences_done`` in one transaction; one neuron's detail page reads one layer row.
- ``neuron_summaries``: one small row per neuron for browsing 40k neurons (filter by layer, sort by max,
  mean or std); its primary key (index_id, layer, unit) is the (index_id, layer) index.

The dataclasses at the end are what :class:`app.store.neurons.NeuronStore` returns: plain records, no
database session attached.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.store.db import Base, UTCDateTime

_INDEX_ID = "neuron_indexes.id"


def _now() -> datetime:
    return datetime.now(UTC)


class NeuronIndexRow(Base):
    """One neuron activation index of one model revision over one named corpus."""

    __tablename__ = "neuron_indexes"
    __table_args__ = (UniqueConstraint("model_revision", "corpus", name="uq_neuron_indexes_revision_corpus"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    model_name: Mapped[str] = mapped_column(String(500))
    model_revision: Mapped[str] = mapped_column(String(64), index=True)
    corpus: Mapped[str] = mapped_column(String(64))
    corpus_source: Mapped[str] = mapped_column(Text)
    corpus_hash: Mapped[str] = mapped_column(String(64))
    sentence_count: Mapped[int] = mapped_column(Integer)
    k: Mapped[int] = mapped_column(Integer)
    max_tokens: Mapped[int] = mapped_column(Integer)
    num_layers: Mapped[int] = mapped_column(Integer)
    num_units: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))  # building done
    sentences_done: Mapped[int] = mapped_column(Integer, default=0)
    tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    params: Mapped[dict] = mapped_column(JSON)  # histogram layout and anything else a reader needs
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now)


class NeuronSentenceRow(Base):
    """One corpus sentence of an index; ``sentence_id`` is its position in the corpus."""

    __tablename__ = "neuron_index_sentences"

    index_id: Mapped[str] = mapped_column(
        String(32), ForeignKey(_INDEX_ID, ondelete="CASCADE"), primary_key=True
    )
    sentence_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    text: Mapped[str] = mapped_column(Text)


class NeuronLayerRow(Base):
    """The packed index state of one layer (arrays over its units)."""

    __tablename__ = "neuron_index_layers"

    index_id: Mapped[str] = mapped_column(
        String(32), ForeignKey(_INDEX_ID, ondelete="CASCADE"), primary_key=True
    )
    layer: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class NeuronSummaryRow(Base):
    """Browse columns of one finished neuron; NULL where undefined (a corpus without any token)."""

    __tablename__ = "neuron_summaries"

    index_id: Mapped[str] = mapped_column(
        String(32), ForeignKey(_INDEX_ID, ondelete="CASCADE"), primary_key=True
    )
    layer: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    unit: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    mean: Mapped[float | None] = mapped_column(Float, nullable=True)
    std: Mapped[float | None] = mapped_column(Float, nullable=True)
    minimum: Mapped[float | None] = mapped_column(Float, nullable=True)
    maximum: Mapped[float | None] = mapped_column(Float, nullable=True)  # = the top exemplar's activation
    top_mean: Mapped[float | None] = mapped_column(Float, nullable=True)  # mean of the top-k activations


@dataclass
class NeuronIndexInfo:
    """One stored index without its arrays."""

    id: str
    model_name: str
    model_revision: str
    corpus: str
    corpus_source: str
    corpus_hash: str
    sentence_count: int
    k: int
    max_tokens: int
    num_layers: int
    num_units: int
    status: str
    sentences_done: int
    tokens: int
    params: dict
    created_at: datetime
    updated_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            **self.__dict__,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass
class NeuronSummary:
    layer: int
    unit: int
    mean: float | None
    std: float | None
    minimum: float | None
    maximum: float | None
    top_mean: float | None


@dataclass
class NeuronPage:
    total: int  # neurons matching the filter
    items: list[NeuronSummary]


@dataclass
class Exemplar:
    sentence: str
    sentence_id: int
    position: int  # token position in the truncated tokenisation, [CLS] = 0
    activation: float


@dataclass
class NeuronDetail:
    """What the neuron page shows: exemplars best first, statistics and the histogram."""

    index_id: str
    layer: int
    unit: int
    exemplars: list[Exemplar]
    count: int
    mean: float | None
    std: float | None
    minimum: float | None
    maximum: float | None
    histogram_edges: list[float]  # HISTOGRAM_BINS + 1 inner edges
    histogram: list[int]  # [underflow, bins..., overflow]
