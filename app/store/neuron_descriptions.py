"""Neuron description runs in the store: the shared descriptor set, a summary, and one row per neuron.

- ``neuron_description_sets``: one run (model revision, corpora and their index ids, generator, the
  clustered descriptor set, the summary that compares neurons with random directions).
- ``neuron_descriptions``: per neuron its label, consistency, best descriptor and score, and the per-corpus
  detail as JSON (its ``search_text`` column is no longer written or read: searches use the score table).
- ``neuron_descriptor_scores``: per neuron and descriptor its best score over the corpora (lower-case label),
  so that a search ``q`` finds and ranks 40k neurons in SQL by their score *for the matching descriptor*.
A run is written in one transaction: a crash leaves either the whole run or nothing. Runs saved before the
score table existed get their rows on the first search.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    and_,
    case,
    exists,
    func,
    insert,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from app.errors import InvalidInput, NotFound
from app.methods.neurons.descriptions import DescriptionRun
from app.store.analyses import new_id
from app.store.db import Base, UTCDateTime, session_scope

MAX_PAGE = 500
SORTS = ("score", "consistency", "layer")


class DescriptionSetRow(Base):
    __tablename__ = "neuron_description_sets"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    model_name: Mapped[str] = mapped_column(String(500))
    model_revision: Mapped[str] = mapped_column(String(64), index=True)
    corpora: Mapped[dict] = mapped_column(JSON)  # {corpus name: index id}
    descriptor_set: Mapped[dict] = mapped_column(JSON)
    summary: Mapped[dict] = mapped_column(JSON)
    params: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=lambda: datetime.now(UTC))


class DescriptionRow(Base):
    __tablename__ = "neuron_descriptions"

    set_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("neuron_description_sets.id", ondelete="CASCADE"), primary_key=True
    )
    layer: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    unit: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    label: Mapped[str] = mapped_column(String(20))
    consistency: Mapped[float | None] = mapped_column(Float, nullable=True)
    best_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    best_descriptor: Mapped[str | None] = mapped_column(String(200), nullable=True)
    search_text: Mapped[str] = mapped_column(Text, default="")  # unused; kept so older databases still fit
    detail: Mapped[dict] = mapped_column(JSON)


class DescriptorScoreRow(Base):
    __tablename__ = "neuron_descriptor_scores"
    __table_args__ = (Index("ix_neuron_descriptor_scores_set_descriptor", "set_id", "descriptor"),)

    set_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("neuron_description_sets.id", ondelete="CASCADE"), primary_key=True
    )
    layer: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    unit: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    descriptor: Mapped[str] = mapped_column(String(200), primary_key=True)  # lower-case label
    score: Mapped[float] = mapped_column(Float)  # best log2 enrichment over the corpora
    corpus: Mapped[str] = mapped_column(String(200))  # where that score was reached


@dataclass
class DescriptionSet:
    id: str
    model_name: str
    model_revision: str
    corpora: dict[str, str]
    descriptor_set: dict
    summary: dict
    params: dict
    created_at: datetime

    def to_json(self, with_descriptors: bool = False) -> dict[str, Any]:
        body = {key: value for key, value in self.__dict__.items() if key != "descriptor_set"}
        body["created_at"] = self.created_at.isoformat()
        body["descriptor_labels"] = self.descriptor_set.get("labels", [])
        if with_descriptors:
            body["descriptor_set"] = self.descriptor_set
        return body


def _set(row: DescriptionSetRow) -> DescriptionSet:
    return DescriptionSet(
        row.id,
        row.model_name,
        row.model_revision,
        row.corpora,
        row.descriptor_set,
        row.summary,
        row.params,
        row.created_at,
    )


def _neuron(row: DescriptionRow) -> dict[str, Any]:
    return {
        "layer": row.layer,
        "unit": row.unit,
        "label": row.label,
        "consistency": row.consistency,
        "best_score": row.best_score,
        "best_descriptor": row.best_descriptor,
        **row.detail,
    }


class DescriptionStore:
    """Save description runs and browse their neurons."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _session(self, write: bool = False) -> AbstractContextManager[Session]:
        return session_scope(self.engine, write)

    def save(
        self, run: DescriptionRun, model_name: str, revision: str, corpora: dict[str, str], params: dict
    ) -> str:
        set_id = new_id()
        labels = run.descriptor_set.labels
        rows, scores = [], []
        for number, item in enumerate(run.neurons):
            best = max(
                (entry for entries in item.descriptors.values() for entry in entries[:1]),
                key=lambda entry: entry[1],
                default=None,
            )
            rows.append(
                {
                    "set_id": set_id,
                    "layer": number // run.num_units,
                    "unit": number % run.num_units,
                    "label": item.label,
                    "consistency": item.consistency,
                    "best_score": None if best is None else float(best[1]),
                    "best_descriptor": None if best is None else labels[best[0]][:200],
                    "detail": {
                        "descriptors": item.descriptors,
                        "stability": item.stability,
                        "token_overlap": item.token_overlap,
                    },
                }
            )
            scores.extend(_score_rows(set_id, rows[-1], labels))
        with self._session(write=True) as session:
            session.add(
                DescriptionSetRow(
                    id=set_id,
                    model_name=model_name,
                    model_revision=revision,
                    corpora=corpora,
                    descriptor_set=run.descriptor_set.to_dict(),
                    summary=run.summary,
                    params=params,
                )
            )
            session.flush()
            session.execute(insert(DescriptionRow), rows)
            if scores:
                session.execute(insert(DescriptorScoreRow), scores)
        return set_id

    def latest(self, revision: str) -> DescriptionSet | None:
        query = (
            select(DescriptionSetRow)
            .where(DescriptionSetRow.model_revision == revision)
            .order_by(DescriptionSetRow.created_at.desc())
            .limit(1)
        )
        with self._session() as session:
            row = session.scalars(query).first()
            return None if row is None else _set(row)

    def get(self, set_id: str) -> DescriptionSet:
        with self._session() as session:
            row = session.get(DescriptionSetRow, set_id)
            if row is None:
                raise NotFound(f"No neuron description run {set_id!r}.")
            return _set(row)

    def neuron(self, set_id: str, layer: int, unit: int) -> dict[str, Any] | None:
        with self._session() as session:
            row = session.get(DescriptionRow, (set_id, layer, unit))
            return None if row is None else _neuron(row)

    def page(
        self,
        set_id: str,
        *,
        layer: int | None = None,
        query: str | None = None,
        label: str | None = None,
        sort: str = "score",
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[int, list[dict[str, Any]]]:
        """Neurons of a run, filtered by layer, descriptor text and label, sorted, one page."""
        if sort not in SORTS:
            raise InvalidInput(f"Unknown sort {sort!r}; sort by one of {', '.join(SORTS)}.")
        if not 1 <= limit <= MAX_PAGE or offset < 0:
            raise InvalidInput(f"limit must be 1-{MAX_PAGE} and offset at least 0.")
        where = [DescriptionRow.set_id == set_id]
        if layer is not None:
            where.append(DescriptionRow.layer == layer)
        if label:
            where.append(DescriptionRow.label == label)
        match = None
        if query:
            self._ensure_scores(set_id)
            escaped = query.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            match = (
                select(
                    DescriptorScoreRow.layer,
                    DescriptorScoreRow.unit,
                    func.max(DescriptorScoreRow.score).label("score"),
                    # a descriptor that *is* the query outranks longer ones that merely contain it
                    func.max(
                        case(
                            (DescriptorScoreRow.descriptor == query.lower().strip(), DescriptorScoreRow.score)
                        )
                    ).label("exact"),
                )
                .where(
                    DescriptorScoreRow.set_id == set_id,
                    DescriptorScoreRow.descriptor.like(f"%{escaped}%", escape="\\"),
                )
                .group_by(DescriptorScoreRow.layer, DescriptorScoreRow.unit)
                .subquery()
            )
        score = DescriptionRow.best_score if match is None else match.c.score
        exact = [] if match is None else [match.c.exact.desc().nulls_last()]
        order = {
            "score": [*exact, score.desc().nulls_last()],
            "consistency": [DescriptionRow.consistency.desc().nulls_last(), score.desc().nulls_last()],
            "layer": [],
        }[sort]
        statement = select(DescriptionRow)
        counting = select(func.count()).select_from(DescriptionRow)
        if match is not None:
            joined = and_(DescriptionRow.layer == match.c.layer, DescriptionRow.unit == match.c.unit)
            statement = statement.join(match, joined)
            counting = counting.join(match, joined)
        statement = (
            statement.where(*where)
            .order_by(*order, DescriptionRow.layer, DescriptionRow.unit)
            .limit(limit)
            .offset(offset)
        )
        with self._session() as session:
            total = session.scalar(counting.where(*where))
            items = [_neuron(row) for row in session.scalars(statement)]
        return int(total or 0), items

    def _ensure_scores(self, set_id: str) -> None:
        """Write the score rows of a run saved before they existed (once; later searches find them)."""
        with self._session() as session:
            present = session.scalar(select(exists().where(DescriptorScoreRow.set_id == set_id)))
            described = session.scalar(
                select(
                    exists().where(DescriptionRow.set_id == set_id, DescriptionRow.best_score.is_not(None))
                )
            )
            if present or not described:
                return
            labels = session.get(DescriptionSetRow, set_id).descriptor_set.get("labels", [])
            rows = session.execute(
                select(DescriptionRow.layer, DescriptionRow.unit, DescriptionRow.detail).where(
                    DescriptionRow.set_id == set_id, DescriptionRow.best_score.is_not(None)
                )
            ).all()
        scores = [
            score
            for layer, unit, detail in rows
            for score in _score_rows(set_id, {"layer": layer, "unit": unit, "detail": detail}, labels)
        ]
        with self._session(write=True) as session:
            if not session.scalar(select(exists().where(DescriptorScoreRow.set_id == set_id))):
                session.execute(insert(DescriptorScoreRow), scores)


def _score_rows(set_id: str, row: dict[str, Any], labels: list[str]) -> list[dict[str, Any]]:
    """Per descriptor of one neuron row its best score over the corpora (ties: the first corpus)."""
    best: dict[str, dict[str, Any]] = {}
    for corpus, entries in row["detail"]["descriptors"].items():
        for entry in entries:
            name = labels[entry[0]].lower()[:200]
            if name not in best or entry[1] > best[name]["score"]:
                best[name] = {
                    "set_id": set_id,
                    "layer": row["layer"],
                    "unit": row["unit"],
                    "descriptor": name,
                    "score": float(entry[1]),
                    "corpus": corpus[:200],
                }
    return list(best.values())
