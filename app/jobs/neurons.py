"""Neuron jobs: build activation indexes of corpora, then describe their neurons (see app.methods.neurons)."""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.data import SAMPLE_CORPUS, WIKIPEDIA_SAMPLE
from app.errors import InvalidInput
from app.jobs.contract import JobContext, JobOutcome, ShardRunner
from app.jobs.data_files import data_field
from app.jobs.sharded_index import build_state_sharded
from app.jobs.sharded_map import sharded_direction_scores
from app.methods.callbacks import Exclusive, Progress, ShouldStop, no_exclusion
from app.methods.neurons.corpora import (
    DEFAULT_BATCH_SIZE,
    read_corpus,
    resolve_max_tokens,
    validate_corpus_name,
)
from app.methods.neurons.descriptions import CorpusExemplars, describe_corpora
from app.methods.neurons.directions import DEFAULT_DIRECTIONS
from app.methods.neurons.generators import make_generator
from app.methods.neurons.index import DEFAULT_CHECKPOINT_EVERY, build_state
from app.methods.neurons.stats import DEFAULT_K
from app.methods.neurons.units import NEURONS, UnitBasis
from app.methods.probes.pipeline import Stages
from app.modeling.loading import LoadedModel
from app.store.neurons import NeuronIndexInfo, NeuronStore

MAX_CORPORA = 8
SAMPLE_NAME = "sample"
WIKIPEDIA_NAME = "wikipedia"


def batch_size_field() -> Any:
    """An index job's ``batch_size``: sentences per forward pass, the settings' default when unset."""
    return Field(
        None,
        ge=1,
        le=4096,
        description="Sentences per forward pass (default from settings).",
        json_schema_extra={"advanced": True},
    )


def directions_field(description: str) -> Any:
    """A describing job's number of random directions (the illusion check's control)."""
    return Field(
        DEFAULT_DIRECTIONS, ge=0, le=10_000, description=description, json_schema_extra={"advanced": True}
    )


def seed_field() -> Any:
    """A job's random seed, on the advanced side of its form."""
    return Field(
        0,
        ge=0,
        le=2**31 - 1,
        description="Random seed (the same seed gives the same result).",
        json_schema_extra={"advanced": True},
    )


class CorpusSpec(BaseModel):
    """A corpus file on the server registered under a name."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64, examples=["wiki"], description="Corpus name.")
    path: str = data_field(
        "texts",
        description="An uploaded dataset, or a file on the server: text (one sentence per line), "
        "CSV/TSV/JSONL with a column, or CoNLL-U.",
    )
    column: str | None = Field(None, description="Text column of a CSV/TSV/JSONL file.")
    limit: int | None = Field(None, ge=1, le=10_000_000, description="Use only the first N sentences.")

    @field_validator("name")
    @classmethod
    def _valid_name(cls, name: str) -> str:
        try:
            return validate_corpus_name(name)
        except InvalidInput as exc:
            raise ValueError(exc.message) from None


class IndexNeuronsParams(BaseModel):
    """Index every FFN neuron over each corpus (top-k exemplars, statistics, histogram), then describe."""

    model_config = ConfigDict(extra="forbid")
    corpora: list[CorpusSpec] = Field(
        min_length=1,
        max_length=MAX_CORPORA,
        description="Corpora to index, each under its name.",
        json_schema_extra={"widget": "corpora"},
    )
    k: int | None = Field(
        None,
        ge=1,
        le=1000,
        title="Exemplars per neuron",
        description="Exemplars per neuron (default from settings).",
    )
    batch_size: int | None = batch_size_field()
    max_tokens: int | None = Field(
        None,
        ge=3,
        le=4096,
        description="Truncate sentences to this many tokens.",
        json_schema_extra={"advanced": True},
    )
    describe: bool = Field(True, description="Describe the neurons over all indexed corpora afterwards.")
    directions: int = directions_field("Random directions (control).")
    seed: int = seed_field()


class DescribeNeuronsParams(BaseModel):
    """Describe neurons over already indexed corpora (default: every finished index of the loaded model)."""

    model_config = ConfigDict(extra="forbid")
    corpora: list[str] | None = Field(
        None, max_length=MAX_CORPORA, description="Indexed corpus names (default: all finished indexes)."
    )
    directions: int = Field(
        DEFAULT_DIRECTIONS, ge=0, le=10_000, description="Random directions (the illusion control)."
    )
    seed: int = Field(0, ge=0, le=2**31 - 1, description="Random seed (the same seed gives the same result).")


def sample_corpus_params() -> dict:
    """The job the first ``serve`` starts when the loaded model has no index yet: the shipped sample corpus
    and the Wikipedia sample, two genres described together, so the cross-corpus illusion check (Bolukbasi
    et al., 2021) has its consistent / inconsistent / corpus-specific figures on a fresh install."""
    return {
        "corpora": [
            {"name": SAMPLE_NAME, "path": str(SAMPLE_CORPUS)},
            {"name": WIKIPEDIA_NAME, "path": str(WIKIPEDIA_SAMPLE)},
        ]
    }


def run_index_neurons(context: JobContext, params: IndexNeuronsParams) -> JobOutcome:
    """Index each corpus (resuming a stopped build), then describe them all when asked."""
    settings = context.settings
    texts = [read_corpus(context.data_path(spec.path), spec.column, spec.limit) for spec in params.corpora]
    weights = {spec.name: float(len(t)) for spec, t in zip(params.corpora, texts, strict=True)}
    if params.describe:
        weights["describe"] = sum(weights.values())
    stages = Stages(weights, context.progress)
    last = None
    with context.model.using_model() as loaded:
        for spec, sentences in zip(params.corpora, texts, strict=True):
            last = index_corpus(
                loaded,
                context.stores.neurons,
                spec.name,
                spec.path,
                sentences,
                k=params.k or settings.neuron_top_k,
                batch_size=params.batch_size or settings.neuron_batch_size,
                max_tokens=params.max_tokens,
                progress=stages.stage(spec.name),
                should_stop=context.should_stop,
                exclusive=context.model.exclusive,
                runner=context.shards,
            )
            context.stop_if_asked()  # a stopped build has kept its checkpoint: submitting again resumes it
    if not params.describe:
        return JobOutcome(result_id=last.id)
    names = [spec.name for spec in params.corpora]
    describe = DescribeNeuronsParams(corpora=names, directions=params.directions, seed=params.seed)
    return run_describe_neurons(replace(context, progress=stages.stage("describe")), describe)


def index_corpus(
    loaded: LoadedModel,
    store: NeuronStore,
    corpus_name: str,
    source: str,
    sentences: list[str],
    *,
    k: int = DEFAULT_K,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_tokens: int | None = None,
    progress: Progress | None = None,
    should_stop: ShouldStop | None = None,
    exclusive: Exclusive = no_exclusion,
    checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY,
    runner: ShardRunner | None = None,
    basis: UnitBasis = NEURONS,
) -> NeuronIndexInfo:
    """Build (or resume, or just return when already done) the stored index of one corpus over ``basis``.

    A stopped build leaves a checkpoint and status ``building``; calling again continues from it. The model
    is held (``exclusive``) per batch only: never while the store writes. With a ``runner`` (a Ray cluster)
    the batches run on its workers and the result is the same state (:mod:`app.jobs.sharded_index`).
    """
    max_tokens = resolve_max_tokens(loaded, max_tokens)
    record, state = store.start_or_resume(
        loaded.name,
        loaded.revision,
        corpus_name,
        source,
        sentences,
        k=k,
        max_tokens=max_tokens,
        basis=basis.key,
    )
    if record.status == "done":
        return record
    build = (
        partial(build_state, basis=basis)
        if runner is None
        else partial(build_state_sharded, runner=runner, basis=basis)
    )
    state = build(
        loaded,
        sentences,
        k=k,
        batch_size=batch_size,
        max_tokens=max_tokens,
        resume=state,
        progress=progress,
        should_stop=should_stop or (lambda: False),
        checkpoint=partial(store.save_checkpoint, record.id),
        checkpoint_every=checkpoint_every,
        exclusive=exclusive,
    )
    if not state.complete:
        return store.save_checkpoint(record.id, state)
    return store.finish(record.id, state)


def _sharded_scores(context: JobContext, basis: UnitBasis) -> dict:
    """With a Ray cluster, the random directions' corpus pass runs in shards on its workers."""
    if context.shards is None:
        return {}
    return {"scores_of": sharded_direction_scores(context.shards, context.should_stop, basis)}


def run_describe_neurons(context: JobContext, params: DescribeNeuronsParams) -> JobOutcome:
    """Describe the neurons over finished indexes (all of the loaded model's, or the named corpora)."""
    with context.model.using_model() as loaded:
        return describe_basis(context, loaded, params)


def describe_basis(
    context: JobContext, loaded: LoadedModel, params: DescribeNeuronsParams, basis: UnitBasis = NEURONS
) -> JobOutcome:
    """Describe the units of ``basis`` over its finished indexes, beside random directions in its space."""
    neurons = context.stores.neurons
    indexes = [
        info for info in neurons.list_for_revision(loaded.revision, basis.key) if info.status == "done"
    ]
    what = "neuron index" if basis is NEURONS else f"index of {basis.key}"
    if params.corpora:
        found = {info.corpus: info for info in indexes}
        missing = [name for name in params.corpora if name not in found]
        if missing:
            raise InvalidInput(f"No finished {what} for corpus {', '.join(missing)}; index it first.")
        indexes = [found[name] for name in params.corpora]
    if not indexes:
        raise InvalidInput(f"No finished {what} for the loaded model; index a corpus first.")
    corpora = []
    for info in indexes:
        state = neurons.load_state(info.id)
        texts = neurons.sentences(info.id, list(range(info.sentence_count)))
        sentences = [texts[i] for i in range(info.sentence_count)]
        corpora.append(
            CorpusExemplars(info.corpus, info.id, sentences, state.top_sentences, state.top_positions)
        )
    settings = context.settings
    generator = make_generator(
        url=settings.describer_url,
        model=settings.describer_model,
        key=settings.describer_key,
        path=settings.describer_path,
        loaded=loaded,
        timeout=settings.describer_timeout,
    )
    with context.model.exclusive():
        run = describe_corpora(
            loaded,
            corpora,
            generator,
            directions=params.directions,
            seed=params.seed,
            batch_size=settings.neuron_batch_size,
            progress=context.progress,
            basis=basis,
            **_sharded_scores(context, basis),
        )
    set_id = context.stores.descriptions.save(
        run,
        loaded.name,
        loaded.revision,
        {corpus.name: corpus.index_id for corpus in corpora},
        params.model_dump(mode="json"),
    )
    return JobOutcome(result_id=set_id)
