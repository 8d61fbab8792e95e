"""A temporary store and job context around a loaded model, for benchmarks that run jobs end to end."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from app.jobs.contract import JobContext
from app.modeling.loading import LoadedModel
from app.services.container import Services, build_services
from app.settings import Settings
from app.store.db import make_engine


@contextmanager
def temporary_jobs(loaded: LoadedModel) -> Iterator[tuple[Services, JobContext]]:
    """Services over a throw-away SQLite store (nothing started on serve) and a job context without
    progress reporting; the store is deleted afterwards."""
    with tempfile.TemporaryDirectory() as directory:
        settings = Settings(
            database_url=f"sqlite:///{directory}/bench.db",
            index_sample_on_start=False,
            train_probes_on_start=False,
            cache_dir=Path(directory) / "cache",
        )
        services = build_services(loaded, make_engine(settings.database_url), settings)
        yield services, JobContext(services.runner, services.stores, settings, lambda done, total: None)
