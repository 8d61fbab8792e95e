"""The ``train_dictionary`` job: a TopK sparse autoencoder on one layer's activations over indexed corpora
(:mod:`app.methods.features`), with held-out metrics and the cost of splicing it into the model."""

from __future__ import annotations

import hashlib
import io
import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Annotated, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field

from app.errors import InvalidInput
from app.jobs.contract import JobCancelled, JobContext, JobOutcome
from app.jobs.feature_index import IndexFeaturesParams, run_index_features
from app.jobs.neurons import MAX_CORPORA
from app.methods.features.activations import activation_chunks, site_dimension, site_module
from app.methods.features.dictionary import FeatureDictionary
from app.methods.features.sae import (
    SaeOptions,
    TrainingState,
    evaluate_sae,
    shuffled_minibatches,
    start_training,
    train_sae,
)
from app.methods.features.splice import probe_cost, splice_cost
from app.methods.probes.pipeline import Stages
from app.methods.probes.probe_maps import ProbeWeights
from app.methods.probes.treebank import read_conllu
from app.modeling.loading import LoadedModel

HELDOUT_TOKENS = 50_000  # held-out activations kept for the metrics
SPLICE_SENTENCES = 100  # held-out sentences run with the reconstruction spliced in
PROBE_SENTENCES = 300  # dev treebank sentences the probe's UUAS is measured on, with and without
INIT_TOKENS = 4096  # activations that set the input scale and b_pre


class TrainDictionaryParams(BaseModel):
    """Train a TopK sparse autoencoder (Gao et al. 2024) on one layer's activations over indexed corpora."""

    model_config = ConfigDict(extra="forbid")
    corpora: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        min_length=1, max_length=MAX_CORPORA, description="Indexed corpus names whose sentences it trains on."
    )
    layer: int = Field(ge=0, le=200, description="Layer (residual: 0 = embeddings; ffn: 0 = first block).")
    site: Literal["residual", "ffn"] = Field("residual", description="Residual stream or FFN activations.")
    width_multiplier: int = Field(8, ge=1, le=64, description="Latents per activation dimension.")
    k: int = Field(32, ge=1, le=1024, description="Active latents per token (TopK).")
    steps: int = Field(2000, ge=10, le=1_000_000, description="Training steps (minibatches).")
    batch_size: int = Field(1024, ge=16, le=16_384, description="Tokens per minibatch.")
    learning_rate: float = Field(1e-3, gt=0, le=1, description="Adam's learning rate.")
    heldout_every: int = Field(10, ge=2, le=1000, description="Every n-th sentence is held out for metrics.")
    max_sentences: int | None = Field(None, ge=10, description="Use at most this many sentences per corpus.")
    name: str | None = Field(None, max_length=200, description="Name (default: layer, site and width).")
    index_features: bool = Field(
        True, description="Then index and describe its features over the same corpora (to browse them)."
    )
    seed: int = Field(0, ge=0, le=2**31 - 1, description="Random seed (the same seed gives the same result).")


def run_train_dictionary(context: JobContext, params: TrainDictionaryParams) -> JobOutcome:
    """Train (or resume), evaluate on held-out sentences, splice in, store the finished dictionary."""
    store = context.stores.dictionaries
    with context.model.using_model() as loaded:
        site_module(loaded, params.layer, params.site)  # the layer exists at that site, or a clear error
        dimension = site_dimension(loaded, params.site)
        width = params.width_multiplier * dimension
        _check_fits(params, dimension, width, context.settings.max_dictionary_bytes)
        train, heldout = _sentences(context, loaded, params)
        key = _params_key(params, loaded.revision)
        options = SaeOptions(
            width=width,
            k=params.k,
            steps=params.steps,
            batch_size=params.batch_size,
            learning_rate=params.learning_rate,
            seed=params.seed,
        )
        weights = {"train": params.steps, "evaluate": max(1, params.steps // 10)}
        if params.index_features:
            weights["features"] = max(1, params.steps // 4)
        stages = Stages(weights, context.progress)
        chunks = _chunks(context, loaded, params)
        resumed = store.checkpoint(loaded.revision, key)
        state = _resume(resumed[1], options) if resumed else start_training(_sample(chunks(train)), options)
        shell = FeatureDictionary.from_sae(
            state.sae,
            name=params.name or f"L{params.layer} {params.site} x{params.width_multiplier} k{params.k}",
            model_name=loaded.name,
            model_revision=loaded.revision,
            layer=params.layer,
            site=params.site,
            params=params.model_dump(mode="json"),
            **({"id": resumed[0]} if resumed else {}),
        )
        try:
            batches = itertools.islice(_epochs(chunks, train, options), state.step, None)
            state = train_sae(
                state,
                batches,
                options,
                progress=stages.stage("train"),
                should_stop=context.should_stop,
                checkpoint=lambda s: store.save_checkpoint(shell, key, _serialise(s)),
            )
            context.stop_if_asked()
        except JobCancelled:
            store.discard_training(shell.id)  # Cancel: nothing partial stays
            raise
        held = torch.cat(list(itertools.islice(chunks(heldout), 10_000)))[:HELDOUT_TOKENS]
        metrics = evaluate_sae(state.sae, held, state, options.dead_after).to_dict()
        with context.model.exclusive():
            metrics["splice"] = splice_cost(
                loaded,
                state.sae,
                params.layer,
                params.site,
                heldout[:SPLICE_SENTENCES],
                context.model.max_tokens,
            )
            metrics["probe"] = _probe_cost(context, loaded, state, params)
        stages.stage("evaluate")(1, 1)
    finished = FeatureDictionary.from_sae(
        state.sae, **{**_fields(shell), "metrics": {**metrics, "width": width, "dimension": dimension}}
    )
    store.save(finished, key)
    if params.index_features:
        features = IndexFeaturesParams(dictionary=finished.id, corpora=params.corpora, seed=params.seed)
        run_index_features(replace(context, progress=stages.stage("features")), features)
    return JobOutcome(result_id=finished.id)


def _probe_cost(
    context: JobContext, loaded: LoadedModel, state: TrainingState, params: TrainDictionaryParams
) -> dict:
    """The newest probe set with a probe at this layer: its UUAS on its dev treebank, with and without the
    splice (residual site only; otherwise, or with no such probe set, the reason why not)."""
    if params.site != "residual":
        return {"skipped": "structural probes read the residual stream; this dictionary reads the FFN"}
    found = [p for p in context.stores.probes.list_for_revision(loaded.revision) if params.layer in p.layers]
    if not found:
        return {"skipped": f"no probe set of the loaded model has a probe at layer {params.layer}"}
    probes = found[0]
    sentences = read_conllu(context.data_path(probes.params["dev"]), PROBE_SENTENCES)
    weights = ProbeWeights(probes.layers, probes.distance, probes.depth)
    cost = probe_cost(loaded, state.sae, params.layer, weights, sentences, context.model.max_tokens)
    return {"probe_set": probes.id, "probe_set_name": probes.name, **cost}


def _check_fits(params: TrainDictionaryParams, dimension: int, width: int, budget: int) -> None:
    """Refuse before training when weights + gradients + Adam's two moments exceed the budget."""
    if params.k > width:
        raise InvalidInput(f"k ({params.k}) cannot exceed the number of latents ({width}).")
    weights = 4 * (2 * width * dimension + width + dimension)
    estimate = (
        4 * weights + 4 * params.batch_size * width * 3
    )  # + a minibatch's codes, pre-activations, grads
    if estimate > budget:
        raise InvalidInput(
            f"A dictionary of {width} latents on {dimension} dimensions needs about "
            f"{estimate / 2**30:.2f} GiB to train, over the {budget / 2**30:.2f} GiB budget "
            "(BERTSCOPE_MAX_DICTIONARY_BYTES): use a smaller width_multiplier or batch_size."
        )


def _sentences(
    context: JobContext, loaded: LoadedModel, params: TrainDictionaryParams
) -> tuple[list[str], list[str]]:
    """The named indexed corpora's sentences, every n-th held out."""
    indexes = {
        info.corpus: info
        for info in context.stores.neurons.list_for_revision(loaded.revision)
        if info.status == "done"
    }
    missing = [name for name in params.corpora if name not in indexes]
    if missing:
        known = ", ".join(sorted(indexes)) or "none yet"
        raise InvalidInput(
            f"No finished neuron index of corpus {', '.join(missing)} for the loaded model "
            f"(indexed: {known}); index it first."
        )
    sentences: list[str] = []
    for name in params.corpora:
        info = indexes[name]
        count = min(info.sentence_count, params.max_sentences or info.sentence_count)
        texts = context.stores.neurons.sentences(info.id, list(range(count)))
        sentences += [texts[i] for i in range(count)]
    heldout = sentences[params.heldout_every - 1 :: params.heldout_every]
    train = [text for i, text in enumerate(sentences) if (i + 1) % params.heldout_every]
    if not heldout or not train:
        raise InvalidInput("Too few sentences to hold some out: index more, or lower heldout_every.")
    return train, heldout


def _chunks(
    context: JobContext, loaded: LoadedModel, params: TrainDictionaryParams
) -> Callable[[list[str]], Iterator[torch.Tensor]]:
    def chunks(sentences: list[str]) -> Iterator[torch.Tensor]:
        return activation_chunks(
            loaded,
            sentences,
            params.layer,
            params.site,
            batch_size=context.settings.neuron_batch_size,
            max_tokens=context.model.max_tokens,
            exclusive=context.model.exclusive,
        )

    return chunks


def _epochs(
    chunks: Callable[[list[str]], Iterator[torch.Tensor]], train: list[str], options: SaeOptions
) -> Iterator[torch.Tensor]:
    """Minibatches over the training sentences, epoch after epoch, each epoch shuffled by its own seed."""
    for epoch in itertools.count():
        yield from shuffled_minibatches(
            chunks(train), options.batch_size, seed=options.seed * 100_003 + epoch
        )


def _sample(chunks: Iterator[torch.Tensor]) -> torch.Tensor:
    taken, held = [], 0
    for chunk in chunks:
        taken.append(chunk)
        held += chunk.shape[0]
        if held >= INIT_TOKENS:
            break
    return torch.cat(taken)[:INIT_TOKENS]


def _params_key(params: TrainDictionaryParams, revision: str) -> str:
    text = json.dumps({"params": params.model_dump(mode="json"), "revision": revision}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _serialise(state: TrainingState) -> bytes:
    buffer = io.BytesIO()
    torch.save(
        {
            "sae": state.sae.state_dict(),
            "dimension": state.sae.decoder.shape[1],
            "optimizer": state.optimizer.state_dict(),
            "step": state.step,
            "tokens_seen": state.tokens_seen,
            "since_fired": state.since_fired,
            "losses": state.losses,
        },
        buffer,
    )
    return buffer.getvalue()


def _resume(data: bytes, options: SaeOptions) -> TrainingState:
    saved = torch.load(io.BytesIO(data), weights_only=True)
    state = start_training(torch.zeros(2, saved["dimension"]), options)
    state.sae.load_state_dict(saved["sae"])
    state.optimizer.load_state_dict(saved["optimizer"])
    state.step, state.tokens_seen = saved["step"], saved["tokens_seen"]
    state.since_fired, state.losses = saved["since_fired"], list(saved["losses"])
    return state


def _fields(dictionary: FeatureDictionary) -> dict:
    return {
        "name": dictionary.name,
        "model_name": dictionary.model_name,
        "model_revision": dictionary.model_revision,
        "layer": dictionary.layer,
        "site": dictionary.site,
        "params": dictionary.params,
        "id": dictionary.id,
    }
