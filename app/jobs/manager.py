"""Long work in the background: one worker thread, progress in the store, cancellable, crash-consistent.

A job's result (an evaluation) is written in the same transaction that marks the job done, so a crash or
a cancellation mid-way leaves no partial result; jobs left running by a dead process are marked failed at
the next start (at the first successful connection, if the database was down then) and can simply be
submitted again. A database outage never kills the worker: progress that cannot be saved is skipped, and
a job's final state is written once the database is back.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel

from app.errors import BertscopeError, StoreUnavailable
from app.jobs.contract import JobCancelled, JobContext, JobOutcome, ModelAccess, shard_runner
from app.jobs.data_files import check_references
from app.jobs.registry import get_job_kind, parse_params
from app.settings import Settings
from app.store.db import ensure_ready, on_first_connection
from app.store.records import Job, new_evaluation
from app.store.stores import Stores

log = logging.getLogger("bertscope.jobs")
T = TypeVar("T")
RETRY_S = (0.5, 5.0)  # first and longest wait between attempts to reach an unavailable database


def execute(context: JobContext, kind: str, params: BaseModel, job_id: str | None = None) -> JobOutcome:
    """Run one job to the end and store what it produced (an evaluation in the same transaction that marks
    the job done; a fitted head or probe set before the job is marked done)."""
    stores = context.stores
    outcome = get_job_kind(kind).run(context, params)
    saved = stores.heads.save(outcome.head) if outcome.head is not None else None
    if outcome.probes is not None:
        saved = stores.probes.save(outcome.probes)
    result_id = saved.id if saved is not None else outcome.result_id
    if result_id is not None:
        if job_id is not None:
            stores.records.update_job(
                job_id, status="done", progress=1.0, message="done", result_id=result_id
            )
        return outcome
    outcome.evaluation = new_evaluation(
        outcome.evaluation_kind,
        context.model.describe_model(),
        params.model_dump(mode="json"),
        outcome.summary,
        job_id,
    )
    if job_id is None:
        stores.records.save_evaluation(outcome.evaluation)
    else:
        stores.records.finish_job(job_id, outcome.evaluation)
    return outcome


STOP_WAIT_SECONDS = 10.0  # how long a shutdown waits for the running job before leaving it interrupted


class JobManager:
    """Queue of jobs run one at a time by a daemon thread; progress is written at most every half second."""

    def __init__(self, model: ModelAccess, stores: Stores, settings: Settings) -> None:
        self.model = model
        self.stores = stores
        self.records = stores.records
        self.settings = settings
        self._queue: queue.Queue[str] = queue.Queue()
        self._cancel: dict[str, threading.Event] = {}
        self._thread: threading.Thread | None = None
        self._cancel_events_guard = threading.Lock()  # guards self._cancel only
        self._stopped = threading.Event()
        self.owner = settings.replica_id
        self.shards = shard_runner(settings)  # a Ray cluster for corpus shards, when one is configured

    def start(self) -> None:
        """Start the worker; jobs of a dead process are marked failed at the first successful connection."""
        on_first_connection(self.records.engine, self._fail_interrupted)
        self._thread = threading.Thread(target=self._work, name="bertscope-jobs", daemon=True)
        self._thread.start()

    def stop(self, wait_seconds: float = STOP_WAIT_SECONDS) -> None:
        """Let the worker end once the job it runs (if any) is over, waiting for that up to ``wait_seconds``:
        a process that exits while the worker is inside the model's native code aborts. A job still running
        after that is marked failed (interrupted) at the next start, as after a crash."""
        self._stopped.set()
        self._queue.put("")
        thread = self._thread
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            thread.join(wait_seconds)

    def _fail_interrupted(self) -> None:
        interrupted = self.records.fail_interrupted_jobs(self.owner)
        if interrupted:
            log.warning("%d job(s) interrupted by the last shutdown were marked failed", interrupted)

    def submit(self, kind: str, params: dict[str, Any]) -> Job:
        parsed = parse_params(kind, params)
        check_references(parsed, self.stores)
        job = self.records.create_job(kind, parsed.model_dump(mode="json"), owner=self.owner)
        with self._cancel_events_guard:
            self._cancel[job.id] = threading.Event()
        self._queue.put(job.id)
        return job

    def cancel(self, job_id: str) -> Job:
        job = self.records.job(job_id)
        if job.status in ("queued", "running"):
            with self._cancel_events_guard:
                event = self._cancel.get(job_id)
            if event is not None:
                event.set()
            if job.status == "queued" or event is None:
                self.records.update_job(job_id, status="cancelled", message="cancelled")
        return self.records.job(job_id)

    def _work(self) -> None:
        # connect as soon as the database answers, so the start-up work is not left for the first request
        try:
            self._retrying(lambda: ensure_ready(self.records.engine))
        except StoreUnavailable:
            return  # stopped before the database ever answered
        while not self._stopped.is_set():
            job_id = self._queue.get()
            if not job_id:
                continue
            try:
                self._run(job_id)
            except Exception:  # the worker must survive anything a job does
                log.exception("job %s crashed", job_id)
            finally:
                with self._cancel_events_guard:
                    self._cancel.pop(job_id, None)

    def _retrying(self, call: Callable[[], T]) -> T:
        """``call()``, repeated while the database is unavailable (a job's state must reach the store)."""
        delay = RETRY_S[0]
        while True:
            try:
                return call()
            except StoreUnavailable as exc:
                if self._stopped.is_set():
                    raise
                if delay == RETRY_S[0]:
                    log.warning("%s Retrying every few seconds.", exc.message)
                self._stopped.wait(delay)
                delay = min(delay * 2, RETRY_S[1])

    def _set_state(self, job_id: str, **values: Any) -> None:
        self._retrying(lambda: self.records.update_job(job_id, **values))

    def _run(self, job_id: str) -> None:
        job = self._retrying(lambda: self.records.job(job_id))
        event = self._cancel.get(job_id) or threading.Event()
        if job.status != "queued" or event.is_set():
            return
        self._set_state(job_id, status="running", message="starting")
        last = [0.0]

        def progress(done: int, total: int) -> None:
            if event.is_set():
                raise JobCancelled
            now = time.monotonic()
            if now - last[0] > 0.5 or done == total:
                last[0] = now
                try:
                    self.records.update_job(job_id, progress=done / max(total, 1), message=f"{done}/{total}")
                    if self.records.job(job_id).status == "cancelled":  # cancelled through another replica
                        raise JobCancelled
                except StoreUnavailable as exc:  # progress is informative only: keep computing
                    log.warning("job %s: progress not saved. %s", job_id, exc.message)

        try:
            context = JobContext(self.model, self.stores, self.settings, progress, event.is_set, self.shards)
            execute(context, job.kind, parse_params(job.kind, job.params), job_id)
        except JobCancelled:
            self._set_state(job_id, status="cancelled", message="cancelled")
        except BertscopeError as exc:
            self._set_state(job_id, status="failed", message=exc.message)
        except Exception as exc:
            log.exception("job %s failed", job_id)
            self._set_state(job_id, status="failed", message=f"{exc.__class__.__name__}: {exc}")


def start_sample_index(jobs: JobManager) -> Job | None:
    """On first serve, index (and describe together) the shipped sample and Wikipedia corpora in the
    background if the loaded model has no neuron index and no index job is already queued or running."""
    from app.jobs.neurons import sample_corpus_params

    if jobs.stores.neurons.list_for_revision(jobs.model.revision):
        return None
    if any(
        job.kind == "index_neurons" and job.status in ("queued", "running") for job in jobs.records.jobs()
    ):
        return None
    return jobs.submit("index_neurons", sample_corpus_params())


def start_default_probe_set(jobs: JobManager) -> Job | None:
    """On first serve, train the default probe set (the shipped UD English EWT slices) in the background if
    the loaded model has no probe set and no probe training job is already queued or running."""
    from app.jobs.probes import default_probe_params

    if jobs.stores.probes.list_for_revision(jobs.model.revision):
        return None
    if any(job.kind == "train_probes" and job.status in ("queued", "running") for job in jobs.records.jobs()):
        return None
    return jobs.submit("train_probes", default_probe_params())
