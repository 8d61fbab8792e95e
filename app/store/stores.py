"""Every store of one database, built from one engine: what the services and jobs are handed."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from app.store.analyses import AnalysisStore
from app.store.datasets import DatasetStore
from app.store.dictionaries import DictionaryStore
from app.store.heads import HeadStore
from app.store.neuron_descriptions import DescriptionStore
from app.store.neurons import NeuronStore
from app.store.probes import ProbeStore
from app.store.records import RecordStore


@dataclass(frozen=True)
class Stores:
    """Analyses, job records and evaluations, fitted heads, probe sets, neuron indexes and descriptions,
    uploaded datasets."""

    engine: Engine
    analyses: AnalysisStore
    records: RecordStore
    heads: HeadStore
    probes: ProbeStore
    neurons: NeuronStore
    descriptions: DescriptionStore
    datasets: DatasetStore
    dictionaries: DictionaryStore

    @classmethod
    def on(cls, engine: Engine) -> Stores:
        return cls(
            engine=engine,
            analyses=AnalysisStore(engine),
            records=RecordStore(engine),
            heads=HeadStore(engine),
            probes=ProbeStore(engine),
            neurons=NeuronStore(engine),
            descriptions=DescriptionStore(engine),
            datasets=DatasetStore(engine),
            dictionaries=DictionaryStore(engine),
        )
