"""Evaluations and jobs in the store."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Engine, or_, select, update
from sqlalchemy.orm import Session

from app.errors import NotFound
from app.ids import new_id
from app.store.db import session_scope
from app.store.tables import EvaluationRow, JobRow

T = TypeVar("T")
ACTIVE = ("queued", "running")


@dataclass
class Job:
    id: str
    kind: str
    params: dict
    status: str
    progress: float
    message: str
    result_id: str | None
    created_at: datetime
    updated_at: datetime
    owner: str | None = None  # the replica that runs it
    started_at: datetime | None = None  # when it began running (None while queued)

    def to_json(self, now: datetime | None = None) -> dict[str, Any]:
        """The job as the API returns it, with ``eta_s``: seconds left at the pace so far (None unless it is
        running and has made progress)."""
        body = dict(self.__dict__)
        body["created_at"] = self.created_at.isoformat()
        body["updated_at"] = self.updated_at.isoformat()
        body["started_at"] = self.started_at.isoformat() if self.started_at else None
        body["eta_s"] = eta_seconds(self.status, self.progress, self.started_at, now or datetime.now(UTC))
        return body


def eta_seconds(status: str, progress: float, started_at: datetime | None, now: datetime) -> float | None:
    """Seconds a running job still needs if the rest goes at the pace so far: elapsed x (1 - p) / p.

    None while queued or finished, before it reports progress (p = 0: no pace yet) or without a start time.
    """
    if status != "running" or started_at is None or not progress > 0:
        return None
    elapsed = max((now - started_at).total_seconds(), 0.0)
    done = min(progress, 1.0)
    return round(elapsed * (1.0 - done) / done, 1)


@dataclass
class Evaluation:
    id: str
    kind: str
    model_name: str
    model_revision: str
    params: dict
    summary: dict
    job_id: str | None
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "created_at": self.created_at.isoformat()}


def _job(row: JobRow) -> Job:
    return Job(
        row.id,
        row.kind,
        row.params,
        row.status,
        row.progress,
        row.message,
        row.result_id,
        row.created_at,
        row.updated_at,
        row.owner,
        row.started_at,
    )


def _evaluation(row: EvaluationRow) -> Evaluation:
    return Evaluation(
        row.id,
        row.kind,
        row.model_name,
        row.model_revision,
        row.params,
        row.summary,
        row.job_id,
        row.created_at,
    )


class RecordStore:
    """Jobs and evaluations; database failures become ``StoreUnavailable``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _session(self) -> AbstractContextManager[Session]:
        return session_scope(self.engine, write=True)

    def _get(self, row_type: type, key: str, convert: Callable[[Any], T], what: str) -> T:
        with self._session() as session:
            row = session.get(row_type, key)
            if row is None:
                raise NotFound(f"No {what} with id {key!r}.")
            return convert(row)

    def create_job(self, kind: str, params: dict, owner: str | None = None) -> Job:
        now = datetime.now(UTC)
        row = JobRow(
            id=new_id(),
            owner=owner,
            kind=kind,
            params=params,
            status="queued",
            progress=0.0,
            message="queued",
            created_at=now,
            updated_at=now,
        )
        with self._session() as session:
            session.add(row)
            return _job(row)

    def job(self, job_id: str) -> Job:
        return self._get(JobRow, job_id, _job, "job")

    def jobs(self, limit: int = 50) -> list[Job]:
        with self._session() as session:
            rows = session.scalars(select(JobRow).order_by(JobRow.created_at.desc()).limit(limit))
            return [_job(row) for row in rows]

    def update_job(self, job_id: str, **values: Any) -> None:
        """Set columns of one job; marking it running also records when it started."""
        values["updated_at"] = datetime.now(UTC)
        if values.get("status") == "running":
            values.setdefault("started_at", values["updated_at"])
        with self._session() as session:
            session.execute(update(JobRow).where(JobRow.id == job_id).values(**values))

    def finish_job(self, job_id: str, evaluation: Evaluation) -> None:
        """Store the evaluation and mark the job done in one transaction (all or nothing)."""
        with self._session() as session:
            session.add(EvaluationRow(**evaluation.__dict__))
            session.execute(
                update(JobRow)
                .where(JobRow.id == job_id)
                .values(
                    status="done",
                    progress=1.0,
                    message="done",
                    result_id=evaluation.id,
                    updated_at=datetime.now(UTC),
                )
            )

    def fail_interrupted_jobs(self, owner: str | None = None) -> int:
        """Jobs left queued or running by a process that died are marked failed (they can be re-run).

        With ``owner`` only that replica's jobs (and jobs of no replica) are touched: other replicas sharing
        the database keep running theirs."""
        mine = JobRow.status.in_(ACTIVE)
        if owner is not None:
            mine = mine & or_(JobRow.owner == owner, JobRow.owner.is_(None))
        with self._session() as session:
            result = session.execute(
                update(JobRow)
                .where(mine)
                .values(
                    status="failed",
                    message="interrupted: the server stopped before the job finished",
                    updated_at=datetime.now(UTC),
                )
            )
            return result.rowcount or 0

    def save_evaluation(self, evaluation: Evaluation) -> Evaluation:
        with self._session() as session:
            session.add(EvaluationRow(**evaluation.__dict__))
        return evaluation

    def evaluation(self, evaluation_id: str) -> Evaluation:
        return self._get(EvaluationRow, evaluation_id, _evaluation, "evaluation")

    def evaluations(self, kind: str | None = None, limit: int = 50) -> list[Evaluation]:
        query = select(EvaluationRow).order_by(EvaluationRow.created_at.desc()).limit(limit)
        if kind is not None:
            query = query.where(EvaluationRow.kind == kind)
        with self._session() as session:
            return [_evaluation(row) for row in session.scalars(query)]


def new_evaluation(
    kind: str, model: dict, params: dict, summary: dict, job_id: str | None = None
) -> Evaluation:
    return Evaluation(
        new_id(), kind, model["name"], model["revision"], params, summary, job_id, datetime.now(UTC)
    )
