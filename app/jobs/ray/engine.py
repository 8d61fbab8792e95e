"""Run a job's shards on a Ray cluster: model workers (actors) per job, a lost worker's shard retried.

Per job, :class:`RayEngine` starts ``ray_workers`` model workers (each ``ray_threads_per_worker`` CPUs and
``ray_gpus_per_worker`` GPUs), checks that every one loaded the server's weights, keeps at most
``IN_FLIGHT`` shards queued on each, and yields each result as it arrives with its shard's index; the job
joins them in its own order. A worker process that dies is restarted by Ray (it reloads the model) and its
unfinished shards run again (``RETRIES`` times at most), so a lost worker costs only its shards. When the
job's ``should_stop()`` turns true, or the job ends in any way, the workers are killed: Cancel stops the Ray
work at once. Results are returned through Ray's object store to the job in the server, which writes them
as a single-process job would.
"""

from __future__ import annotations

import logging
import socket
import time
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import ray
from ray.exceptions import RayError

from app.errors import InvalidInput, RayWorkFailed
from app.jobs.ray.worker import ModelWorker, WorkerSpec
from app.methods.callbacks import ShouldStop
from app.modeling.loading import EMBEDDED, EMBEDDED_NAME, LoadedModel, embedded_model_path
from app.settings import Settings

log = logging.getLogger("bertscope.ray")
RETRIES = 3  # restarts of a lost worker, and reruns of each of its shards
IN_FLIGHT = 2  # shards queued per worker: it starts the next while its last result travels
POLL_S = 0.25  # how often should_stop() is asked while shards run
CONNECT_TIMEOUT_S = 5.0


class RayEngine:
    """The cluster at ``settings.ray_address``; connects on first use (one connection per process)."""

    def __init__(self, settings: Settings) -> None:
        if not settings.ray_address:
            raise InvalidInput("No Ray cluster is configured (BERTSCOPE_RAY_ADDRESS or --ray).")
        self.address = settings.ray_address
        self.workers = settings.ray_workers
        self.threads = settings.ray_threads_per_worker
        self.gpus = settings.ray_gpus_per_worker
        self.shard_sentences = settings.ray_shard_sentences
        self.worker_pids: list[int] = []  # of the running job's workers (for status pages and tests)
        self.shards_done = 0  # shards this engine has had computed, over all jobs
        self.start_seconds = 0.0  # how long the last job's workers took to start and load the model

    def connect(self) -> None:
        if ray.is_initialized():
            return
        options: dict[str, Any] = {"log_to_driver": False, "configure_logging": False}
        try:
            if self.address == "local":
                ray.init(include_dashboard=False, **options)
            else:
                _check_reachable(self.address)  # ray.init waits minutes for a head that is not there
                ray.init(address=self.address, **options)
        except (OSError, RuntimeError, ValueError) as exc:
            raise RayWorkFailed(
                f"Cannot reach the Ray cluster at {self.address!r} ({exc}). Start it (ray start --head) "
                "or fix BERTSCOPE_RAY_ADDRESS / --ray."
            ) from None

    def run(
        self, loaded: LoadedModel, task: str, payloads: Sequence[Any], should_stop: ShouldStop
    ) -> Iterator[tuple[int, Any]]:
        """``(index, result)`` of each payload run as ``task`` on a worker, as they finish; stops early (the
        workers killed) when ``should_stop()`` says so."""
        if not payloads:
            return
        with self._workers(loaded, len(payloads)) as workers:
            queued = deque(enumerate(payloads))
            running: dict[ray.ObjectRef, tuple[int, Any]] = {}
            load = dict.fromkeys(range(len(workers)), 0)
            while queued or running:
                while queued and min(load.values()) < IN_FLIGHT:
                    slot = min(load, key=load.__getitem__)
                    index, payload = queued.popleft()
                    running[workers[slot].run.remote(task, payload)] = (index, slot)
                    load[slot] += 1
                if should_stop():
                    return
                ready, _ = ray.wait(list(running), num_returns=1, timeout=POLL_S)
                for ref in ready:
                    index, slot = running.pop(ref)
                    load[slot] -= 1
                    result = self._get(ref)
                    self.shards_done += 1
                    yield index, result

    def _get(self, ref: ray.ObjectRef) -> Any:
        try:
            return ray.get(ref)
        except RayError as exc:
            raise RayWorkFailed(f"A shard failed on a Ray worker after {RETRIES} retries: {exc}") from None

    @contextmanager
    def _workers(self, loaded: LoadedModel, shards: int) -> Iterator[list[Any]]:
        self.connect()
        gpus = self.gpus if self.gpus is not None else (1.0 if loaded.device.type == "cuda" else 0.0)
        count = min(shards, self.workers or self._room(gpus))
        spec = WorkerSpec(_source(loaded), "cuda" if gpus > 0 else "cpu", _dtype(loaded), self.threads)
        # thread pools sized before the worker imports torch and numba: an idle pool larger than the worker's
        # CPUs spins, and two workers sharing a machine then run at a fifth of their speed
        threads = str(self.threads)
        actor = ray.remote(ModelWorker).options(
            num_cpus=self.threads,
            num_gpus=gpus,
            max_restarts=RETRIES,
            max_task_retries=RETRIES,
            runtime_env={"env_vars": {"NUMBA_NUM_THREADS": threads, "OMP_NUM_THREADS": threads}},
        )
        started = time.perf_counter()
        workers = [actor.remote(spec) for _ in range(count)]
        try:
            identities = [self._get(worker.identity.remote()) for worker in workers]
            wrong = {revision for _, revision in identities} - {loaded.revision}
            if wrong:
                raise RayWorkFailed(
                    f"Ray workers loaded {spec.source!r} with different weights (revision "
                    f"{', '.join(wrong)}, server {loaded.revision}); give the workers the same model files."
                )
            self.worker_pids = [pid for pid, _ in identities]
            self.start_seconds = time.perf_counter() - started
            log.info("%d Ray worker(s) ready: pids %s", count, self.worker_pids)
            yield workers
        finally:
            for worker in workers:
                ray.kill(worker, no_restart=True)
            self.worker_pids = []

    def _room(self, gpus: float) -> int:
        """How many workers the cluster's resources hold (at least one)."""
        resources = ray.cluster_resources()
        by_cpu = int(resources.get("CPU", 1) // self.threads)
        by_gpu = int(resources.get("GPU", 0) // gpus) if gpus > 0 else by_cpu
        return max(1, min(by_cpu, by_gpu))


def _check_reachable(address: str) -> None:
    """Raise ConnectionError unless something listens at the HOST:PORT of ``address`` (or ray://HOST:PORT)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"expected HOST:PORT, ray://HOST:PORT or 'local', got {address!r}")
    with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S):
        pass


def _source(loaded: LoadedModel) -> str:
    """What a worker passes to ``load_model``: 'embedded' for the shipped model (its path differs by host)."""
    if loaded.name == EMBEDDED_NAME and loaded.source == str(embedded_model_path()):
        return EMBEDDED
    return loaded.source


def _dtype(loaded: LoadedModel) -> str:
    return str(loaded.dtype).removeprefix("torch.")
