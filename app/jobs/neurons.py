"""Neuron jobs: build activation indexes of corpora, then describe their neurons (see app.methods.neurons)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.errors import InvalidInput
from app.jobs.contract import JobOutcome, Progress
from app.methods.neurons.corpora import SAMPLE_CORPUS, read_corpus, validate_corpus_name
from app.methods.neurons.descriptions import CorpusExemplars, describe_corpora
from app.methods.neurons.directions import DEFAULT_DIRECTIONS
from app.methods.neurons.generators import make_generator
from app.methods.neurons.index import build_index
from app.methods.probes.pipeline import Stages
from app.services.runner import Runner

MAX_CORPORA = 8
SAMPLE_NAME = "sample"


class CorpusSpec(BaseModel):
    """A corpus file on the server registered under a name."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64, examples=["wiki"])
    path: str = Field(description="Text (one sentence per line), CSV/TSV/JSONL with a column, or CoNLL-U.")
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
    corpora: list[CorpusSpec] = Field(min_length=1, max_length=MAX_CORPORA)
    k: int | None = Field(None, ge=1, le=1000, description="Exemplars per neuron (default from settings).")
    batch_size: int | None = Field(None, ge=1, le=4096)
    max_tokens: int | None = Field(None, ge=3, le=4096, description="Truncate sentences to this many tokens.")
    describe: bool = Field(True, description="Describe the neurons over all indexed corpora afterwards.")
    directions: int = Field(DEFAULT_DIRECTIONS, ge=0, le=10_000, description="Random directions (control).")
    seed: int = Field(0, ge=0, le=2**31 - 1)


class DescribeNeuronsParams(BaseModel):
    """Describe neurons over already indexed corpora (default: every finished index of the loaded model)."""

    model_config = ConfigDict(extra="forbid")
    corpora: list[str] | None = Field(None, max_length=MAX_CORPORA)
    directions: int = Field(DEFAULT_DIRECTIONS, ge=0, le=10_000)
    seed: int = Field(0, ge=0, le=2**31 - 1)


def sample_corpus_params() -> dict:
    """The job the first ``serve`` starts when the loaded model has no index yet."""
    return {"corpora": [{"name": SAMPLE_NAME, "path": str(SAMPLE_CORPUS)}]}


def run_index_neurons(runner: Runner, params: IndexNeuronsParams, progress: Progress) -> JobOutcome:
    settings = runner.settings
    texts = [read_corpus(spec.path, spec.column, spec.limit) for spec in params.corpora]
    weights = {spec.name: float(len(t)) for spec, t in zip(params.corpora, texts, strict=True)}
    if params.describe:
        weights["describe"] = sum(weights.values())
    stages = Stages(weights, progress)
    last = None
    for spec, sentences in zip(params.corpora, texts, strict=True):
        last = build_index(  # takes the model lock per batch: requests interleave with the build
            runner.loaded,
            runner.neurons,
            spec.name,
            spec.path,
            sentences,
            k=params.k or settings.neuron_top_k,
            batch_size=params.batch_size or settings.neuron_batch_size,
            progress=stages.stage(spec.name),
            max_tokens=params.max_tokens,
            lock=runner.lock,
        )
    if not params.describe:
        return JobOutcome(result_id=last.id)
    names = [spec.name for spec in params.corpora]
    describe = DescribeNeuronsParams(corpora=names, directions=params.directions, seed=params.seed)
    return run_describe_neurons(runner, describe, stages.stage("describe"))


def run_describe_neurons(runner: Runner, params: DescribeNeuronsParams, progress: Progress) -> JobOutcome:
    indexes = [
        info for info in runner.neurons.list_for_revision(runner.loaded.revision) if info.status == "done"
    ]
    if params.corpora:
        found = {info.corpus: info for info in indexes}
        missing = [name for name in params.corpora if name not in found]
        if missing:
            raise InvalidInput(f"No finished neuron index for corpus {', '.join(missing)}; index it first.")
        indexes = [found[name] for name in params.corpora]
    if not indexes:
        raise InvalidInput("No finished neuron index for the loaded model; index a corpus first.")
    corpora = []
    for info in indexes:
        state = runner.neurons.load_state(info.id)
        texts = runner.neurons.sentences(info.id, list(range(info.sentence_count)))
        sentences = [texts[i] for i in range(info.sentence_count)]
        corpora.append(
            CorpusExemplars(info.corpus, info.id, sentences, state.top_sentences, state.top_positions)
        )
    settings = runner.settings
    generator = make_generator(
        url=settings.describer_url,
        model=settings.describer_model,
        key=settings.describer_key,
        path=settings.describer_path,
        loaded=runner.loaded,
        timeout=settings.describer_timeout,
    )
    with runner.lock:
        run = describe_corpora(
            runner.loaded,
            corpora,
            generator,
            directions=params.directions,
            seed=params.seed,
            batch_size=settings.neuron_batch_size,
            progress=progress,
        )
    set_id = runner.descriptions.save(
        run,
        runner.loaded.name,
        runner.loaded.revision,
        {corpus.name: corpus.index_id for corpus in corpora},
        params.model_dump(mode="json"),
    )
    return JobOutcome(result_id=set_id)


class LabelledDataSpec(BaseModel):
    """A labelled file whose labels are the sentence-level concepts of the neuron evaluation."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64, examples=["ag_news"])
    path: str
    text_col: str | None = None
    label_col: str = "label"
    label_names: dict[str, str] | None = Field(None, description='e.g. {"0": "World", "1": "Sports"}.')
    limit: int | None = Field(None, ge=10, le=1_000_000)


class EvalNeuronsParams(BaseModel):
    """Precision@k / recall@k of unsupervised neuron descriptions against label concepts (AUROC truth)."""

    model_config = ConfigDict(extra="forbid")
    datasets: list[LabelledDataSpec] = Field(min_length=1, max_length=MAX_CORPORA)
    exemplars: int = Field(50, ge=1, le=1000)
    top: int = Field(2, ge=1, le=20)
    threshold: float = Field(0.75, gt=0.5, le=1.0, description="AUROC a true concept must reach.")
    directions: int | None = Field(
        None, ge=0, le=100_000, description="Random directions (default: one per unit)."
    )
    seed: int = Field(0, ge=0, le=2**31 - 1)


def run_eval_neurons(runner: Runner, params: EvalNeuronsParams, progress: Progress) -> JobOutcome:
    """Run the neuron description evaluation (app.methods.evaluation.neuron_descriptions)."""
    from app.methods.evaluation.neuron_descriptions import evaluate_neuron_descriptions
    from app.methods.evaluation.texts import read_labelled

    datasets, names = [], {}
    for spec in params.datasets:
        texts, labels = read_labelled(spec.path, spec.text_col, spec.label_col, spec.limit)
        datasets.append((spec.name, texts, labels))
        if spec.label_names:
            names[spec.name] = spec.label_names
    progress(0, 1)
    with runner.lock:
        evaluation = evaluate_neuron_descriptions(
            runner.loaded,
            datasets,
            label_names=names or None,
            exemplars=params.exemplars,
            top=params.top,
            threshold=params.threshold,
            seed=params.seed,
            directions=params.directions,
            batch_size=runner.settings.neuron_batch_size,
        )
    progress(1, 1)
    summary = evaluation.summary()
    summary["table"] = evaluation.table()
    summary["examples"] = sum(len(texts) for _, texts, _ in datasets)
    summary["skipped"] = 0
    return JobOutcome("neurons", summary)
