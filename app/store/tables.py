"""Every bertscope table, in one place (portable types: SQLite by default, PostgreSQL for teams).

A database's schema follows these classes through the Alembic migrations of :mod:`app.store.migrations`:
change a class, then add a revision (``python -m app.store.migrations revision "what changed"``).

- ``analyses``: one stored analysis (a permalink target, and the runner's cache by ``cache_key``).
- ``jobs``, ``evaluations``: long work run in the background, and the summaries evaluations produce.
- ``heads``, ``probes``: fitted heads and structural probe sets, each tied to one weights revision.
- ``neuron_indexes``: one row per (model revision, corpus name): identity, corpus fingerprint, build
  parameters, status and how far a build got (``sentences_done``, for resuming);
  ``neuron_index_sentences``: its corpus sentences, one row each, so exemplars fetch only their own text;
  ``neuron_index_layers``: the packed index state of one layer (:func:`app.store.codec.pack`), rewritten
  with ``sentences_done`` in one transaction at each checkpoint; ``neuron_summaries``: one small row per
  neuron for browsing 40k neurons (filter by layer, sort by max, mean or std).
- ``neuron_description_sets``: one description run (corpora and their index ids, the clustered descriptor
  set, the summary); ``neuron_descriptions``: per neuron its label, consistency, best descriptor and the
  per-corpus detail; ``neuron_descriptor_scores``: per neuron and descriptor its best score over the corpora
  (lower-case label), so that a search finds and ranks 40k neurons in SQL.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

_INDEX_ID = "neuron_indexes.id"
_SET_ID = "neuron_description_sets.id"


def _now() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Timestamps stored with their zone and read back as UTC-aware datetimes on every backend (SQLite
    returns naive ones), so the API always writes ``+00:00``."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    """Declarative base of every bertscope table."""


class AnalysisRow(Base):
    """One stored analysis: what was asked, of which weights, and the result (a permalink target)."""

    __tablename__ = "analyses"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    cache_key: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    model_name: Mapped[str] = mapped_column(String(500))
    model_revision: Mapped[str] = mapped_column(String(64), index=True)
    model_info: Mapped[dict] = mapped_column(JSON)
    method: Mapped[str] = mapped_column(String(100))
    method_version: Mapped[int] = mapped_column(Integer)
    params: Mapped[dict] = mapped_column(JSON)
    target: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    text: Mapped[str] = mapped_column(Text)
    text_pair: Mapped[str | None] = mapped_column(Text, nullable=True)
    tokens: Mapped[list] = mapped_column(JSON)
    encoding: Mapped[dict] = mapped_column(JSON)
    result: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now)


class EvaluationRow(Base):
    """A finished evaluation (e.g. mixing faithfulness): its parameters and summary table."""

    __tablename__ = "evaluations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(50), index=True)
    model_name: Mapped[str] = mapped_column(String(500))
    model_revision: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict] = mapped_column(JSON)
    summary: Mapped[dict] = mapped_column(JSON)
    job_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now)


class JobRow(Base):
    """Long work run in the background: status, progress and what it produced."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(50))
    params: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), index=True)  # queued running done failed cancelled
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    message: Mapped[str] = mapped_column(Text, default="")
    result_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now)
    owner: Mapped[str | None] = mapped_column(String(200), nullable=True)  # the replica that runs it
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)  # when it began running


class HeadRow(Base):
    """A logistic-regression head fitted on frozen pooled embeddings of one model revision."""

    __tablename__ = "heads"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    model_name: Mapped[str] = mapped_column(String(500))
    model_revision: Mapped[str] = mapped_column(String(64), index=True)
    labels: Mapped[list] = mapped_column(JSON)
    weights: Mapped[bytes] = mapped_column(LargeBinary)
    metrics: Mapped[dict] = mapped_column(JSON)
    params: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now)


class ProbeRow(Base):
    """Structural probes of every layer trained on one treebank, with their metrics (one probe set)."""

    __tablename__ = "probes"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    model_name: Mapped[str] = mapped_column(String(500))
    model_revision: Mapped[str] = mapped_column(String(64), index=True)
    layers: Mapped[list] = mapped_column(JSON)
    rank: Mapped[int] = mapped_column(Integer)
    params: Mapped[dict] = mapped_column(JSON)
    metrics: Mapped[dict] = mapped_column(JSON)
    weights: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now)


class NeuronIndexRow(Base):
    """One neuron activation index of one model revision over one named corpus."""

    __tablename__ = "neuron_indexes"
    __table_args__ = (
        UniqueConstraint("model_revision", "corpus", "basis", name="uq_neuron_indexes_revision_corpus_basis"),
    )

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
    basis: Mapped[str] = mapped_column(
        String(100), server_default="neurons"
    )  # the units: app.methods.neurons.units
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
    """Browse columns of one finished neuron; NULL where undefined (a corpus without any token).

    Its primary key (index_id, layer, unit) serves as the (index_id, layer) index."""

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


class DescriptionSetRow(Base):
    """One neuron description run of one model revision: its descriptor set and summary."""

    __tablename__ = "neuron_description_sets"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    model_name: Mapped[str] = mapped_column(String(500))
    model_revision: Mapped[str] = mapped_column(String(64), index=True)
    corpora: Mapped[dict] = mapped_column(JSON)  # {corpus name: index id}
    basis: Mapped[str] = mapped_column(
        String(100), server_default="neurons"
    )  # "random-directions:<set id>" too
    descriptor_set: Mapped[dict] = mapped_column(JSON)
    summary: Mapped[dict] = mapped_column(JSON)
    params: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now)


class DescriptionRow(Base):
    """One described neuron of a run: label, consistency, best descriptor, per-corpus detail."""

    __tablename__ = "neuron_descriptions"

    set_id: Mapped[str] = mapped_column(String(32), ForeignKey(_SET_ID, ondelete="CASCADE"), primary_key=True)
    layer: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    unit: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    label: Mapped[str] = mapped_column(String(20))
    consistency: Mapped[float | None] = mapped_column(Float, nullable=True)
    best_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    best_descriptor: Mapped[str | None] = mapped_column(String(200), nullable=True)
    detail: Mapped[dict] = mapped_column(JSON)


class DescriptorScoreRow(Base):
    """The best score of one neuron for one descriptor over the corpora of a run."""

    __tablename__ = "neuron_descriptor_scores"
    __table_args__ = (Index("ix_neuron_descriptor_scores_set_descriptor", "set_id", "descriptor"),)

    set_id: Mapped[str] = mapped_column(String(32), ForeignKey(_SET_ID, ondelete="CASCADE"), primary_key=True)
    layer: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    unit: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    descriptor: Mapped[str] = mapped_column(String(200), primary_key=True)  # lower-case label
    score: Mapped[float] = mapped_column(Float)  # best log2 enrichment over the corpora
    corpus: Mapped[str] = mapped_column(String(200))  # where that score was reached


class DatasetRow(Base):
    """A data file uploaded from the page: name, kind, content hash, what validation found."""

    __tablename__ = "datasets"
    __table_args__ = (UniqueConstraint("sha256", "kind", name="uq_datasets_sha256_kind"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # texts labelled treebank
    format: Mapped[str] = mapped_column(String(10))  # the suffix the readers dispatch on (.tsv, .conllu, ...)
    filename: Mapped[str] = mapped_column(String(500))  # as the user named it: shown, never used as a path
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    rows: Mapped[int] = mapped_column(Integer)
    summary: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now)


class DatasetChunkRow(Base):
    """One piece of a dataset's content, in order: a file is stored and read back without holding it whole."""

    __tablename__ = "dataset_chunks"

    dataset_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    content: Mapped[bytes] = mapped_column(LargeBinary)


class DictionaryRow(Base):
    """A sparse-autoencoder dictionary of one layer and site (weights + held-out metrics); while it trains,
    its resumable checkpoint (status ``training``, never listed)."""

    __tablename__ = "dictionaries"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    model_name: Mapped[str] = mapped_column(String(500))
    model_revision: Mapped[str] = mapped_column(String(64), index=True)
    layer: Mapped[int] = mapped_column(Integer)
    site: Mapped[str] = mapped_column(String(20))
    width: Mapped[int] = mapped_column(Integer)
    k: Mapped[int] = mapped_column(Integer)
    params: Mapped[dict] = mapped_column(JSON)
    params_key: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(20))
    metrics: Mapped[dict] = mapped_column(JSON)
    weights: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    checkpoint: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now)
