"""The services one process runs: the runner, the stores, the analyses, the job manager and the uploaded
datasets, built together."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from app.jobs.manager import JobManager
from app.modeling.loading import LoadedModel
from app.services.analyses import Analyses
from app.services.datasets import Datasets
from app.services.runner import Runner
from app.settings import Settings
from app.store.stores import Stores


@dataclass
class Services:
    """What the API and the CLI call: never the model, never a lock."""

    settings: Settings
    runner: Runner
    stores: Stores
    analyses: Analyses
    jobs: JobManager
    datasets: Datasets

    def close(self) -> None:
        """Stop the job worker and the batcher, then close the database's connections."""
        self.jobs.stop()
        self.runner.close()
        self.stores.engine.dispose()


def build_services(loaded: LoadedModel, engine: Engine, settings: Settings) -> Services:
    """The runner around ``loaded`` and everything that works with it (no thread is started here)."""
    runner = Runner(loaded, settings)
    stores = Stores.on(engine)
    return Services(
        settings=settings,
        runner=runner,
        stores=stores,
        analyses=Analyses(runner, stores),
        jobs=JobManager(runner, stores, settings),
        datasets=Datasets(stores.datasets, settings),
    )
