"""The ``index_features`` job: a dictionary's features as units of the activation index, then described.

The same pipeline as the neurons' (:mod:`app.jobs.neurons`) over :class:`app.methods.features.basis.
FeatureBasis`: top-k exemplars, statistics and histograms per feature over each corpus, then descriptors,
their stability, the cross-corpus labels of the illusion check, and random directions in the space the
dictionary reads as the control. Corpora are neuron-indexed corpora (their stored sentences are reused).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from app.errors import InvalidInput
from app.jobs.contract import JobContext, JobOutcome
from app.jobs.neurons import (
    MAX_CORPORA,
    DescribeNeuronsParams,
    batch_size_field,
    describe_basis,
    directions_field,
    index_corpus,
    seed_field,
)
from app.methods.features.basis import FeatureBasis
from app.methods.probes.pipeline import Stages
from app.store.neuron_records import NeuronIndexInfo

CorpusName = Annotated[str, Field(min_length=1, max_length=64)]


class IndexFeaturesParams(BaseModel):
    """Index a dictionary's features over indexed corpora (exemplars, statistics), then describe them beside
    random directions in the space the dictionary reads."""

    model_config = ConfigDict(extra="forbid")
    dictionary: str | None = Field(
        None, min_length=1, max_length=200, description="Dictionary id or name (default: the newest)."
    )
    corpora: list[CorpusName] | None = Field(
        None,
        min_length=1,
        max_length=MAX_CORPORA,
        description="Neuron-indexed corpus names (default: those the dictionary was trained on).",
    )
    k: int | None = Field(
        None,
        ge=1,
        le=1000,
        title="Exemplars per feature",
        description="Exemplars per feature (default from settings).",
    )
    batch_size: int | None = batch_size_field()
    describe: bool = Field(True, description="Describe the features over these corpora afterwards.")
    directions: int = directions_field("Random directions in the dictionary's space (control).")
    seed: int = seed_field()


def run_index_features(context: JobContext, params: IndexFeaturesParams) -> JobOutcome:
    """Index the dictionary's features over each corpus (resuming a stopped build), then describe them."""
    settings = context.settings
    with context.model.using_model() as loaded:
        dictionary = context.stores.dictionaries.find(params.dictionary, loaded.revision)
        basis = FeatureBasis(dictionary)
        names = params.corpora or list(dictionary.params.get("corpora", []))
        sources = _neuron_indexes(context, loaded.revision, names)
        weights = {info.corpus: float(info.sentence_count) for info in sources}
        if params.describe:
            weights["describe"] = sum(weights.values())
        stages = Stages(weights, context.progress)
        last = None
        for info in sources:
            texts = context.stores.neurons.sentences(info.id, list(range(info.sentence_count)))
            last = index_corpus(
                loaded,
                context.stores.neurons,
                info.corpus,
                info.corpus_source,
                [texts[i] for i in range(info.sentence_count)],
                k=params.k or settings.neuron_top_k,
                batch_size=params.batch_size or settings.neuron_batch_size,
                max_tokens=info.max_tokens,
                progress=stages.stage(info.corpus),
                should_stop=context.should_stop,
                exclusive=context.model.exclusive,
                runner=context.shards,
                basis=basis,
            )
            context.stop_if_asked()  # a stopped build has kept its checkpoint: submitting again resumes it
        if not params.describe:
            return JobOutcome(result_id=last.id if last else None)
        describe = DescribeNeuronsParams(corpora=names, directions=params.directions, seed=params.seed)
        return describe_basis(replace(context, progress=stages.stage("describe")), loaded, describe, basis)


def _neuron_indexes(context: JobContext, revision: str, names: list[str]) -> list[NeuronIndexInfo]:
    """The finished neuron indexes of the named corpora (their sentences are what the features index)."""
    found = {
        info.corpus: info
        for info in context.stores.neurons.list_for_revision(revision)
        if info.status == "done"
    }
    missing = [name for name in names if name not in found]
    if missing or not names:
        known = ", ".join(sorted(found)) or "none yet"
        raise InvalidInput(
            f"No finished neuron index of corpus {', '.join(missing) or '(none named)'} for the loaded model "
            f"(indexed: {known}); index it first."
        )
    return [found[name] for name in dict.fromkeys(names)]
