"""The only object that touches the live model: cache lookup -> lock -> method.run -> store."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from app.errors import InvalidInput
from app.methods import get_method
from app.methods.attribution.sanity import randomisation_test
from app.methods.base import Method, Result
from app.methods.probes.lookup import TreebankLookup, best_layer
from app.methods.probes.structural_probe import ProbeContext
from app.modeling.encoding import Encoded, encode_for
from app.modeling.forward import CleanPass, clean_pass
from app.modeling.loading import LoadedModel
from app.modeling.targets import HeadTarget, TargetSpec, bind_target
from app.services.batcher import MicroBatcher, guard_memory
from app.services.readers_writer import ReadersWriter
from app.settings import Settings
from app.store.analyses import AnalysisStore, StoredAnalysis
from app.store.heads import FittedHead, HeadStore
from app.store.neuron_descriptions import DescriptionStore
from app.store.neurons import NeuronStore
from app.store.probes import ProbeSet, ProbeStore


class AnalysisRequest(BaseModel):
    """What the API's POST /api/analyses and the CLI's ``analyze`` accept."""

    model_config = ConfigDict(extra="forbid")
    method: str = Field(min_length=1, max_length=100, examples=["attention"])
    text: str = Field(examples=["The cat sat on the mat."])
    text_pair: str | None = Field(None, description="Optional second sentence (sentence-pair input).")
    params: dict[str, Any] = Field(default_factory=dict, description="Method parameters (see /api/methods).")
    target: TargetSpec | None = Field(None, description="What to explain; null = the model's default.")


def format_validation_error(error: ValidationError, prefix: str = "") -> str:
    """One readable line per problem: ``params.steps: Input should be a valid integer``."""
    parts = []
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"] if part != "body")
        parts.append(f"{prefix}{location}: {item['msg']}" if location else f"{prefix}{item['msg']}")
    return "; ".join(parts)


def cache_key(revision: str, method: str, version: int, params: dict, request: AnalysisRequest) -> str:
    """Identical (weights, method, version, params, input, target) -> identical key."""
    material = {
        "revision": revision,
        "method": method,
        "version": version,
        "params": params,
        "text": request.text,
        "text_pair": request.text_pair,
        "target": None if request.target is None else request.target.model_dump(mode="json"),
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


class Runner:
    """Runs analyses on one resident model; access to the model is serialised by a lock."""

    def __init__(self, loaded: LoadedModel, store: AnalysisStore, settings: Settings) -> None:
        self.loaded = loaded
        self.store = store
        self.heads = HeadStore(store.engine)
        self.probes = ProbeStore(store.engine)
        self.neurons = NeuronStore(store.engine)
        self.descriptions = DescriptionStore(store.engine)
        self._maxima: dict[str, np.ndarray] = {}
        self.treebanks = TreebankLookup()
        self.settings = settings
        self.lock = threading.Lock()  # the model: held only while it computes, never to store or render
        self._model_users = ReadersWriter()
        self._flights: dict[str, threading.Event] = {}  # cache keys being computed now
        self._flights_lock = threading.Lock()  # requests read ``self.loaded``; a model swap writes it
        self._tokenizer_lock = threading.Lock()  # fast tokenizers refuse concurrent calls
        self.batcher = (
            MicroBatcher(
                lambda: self.loaded,
                self.lock,
                max_batch=settings.batch_max_size,
                wait_seconds=settings.batch_wait_ms / 1000,
                max_tokens=settings.batch_max_tokens,
            )
            if settings.batching
            else None
        )

    def using_model(self) -> AbstractContextManager[None]:
        """Held by every request for its whole duration, so a model swap never happens under it."""
        return self._model_users.reading()

    def swap_model(self, loaded: LoadedModel) -> None:
        """Make ``loaded`` the resident model once no request is using the current one."""
        with self._model_users.writing(), self.lock:
            self.loaded = loaded
            self._maxima.clear()

    def close(self) -> None:
        """Stop the micro-batcher's worker (after what is already queued)."""
        if self.batcher is not None:
            self.batcher.close()

    def batching(self) -> dict[str, Any]:
        """Micro-batching settings and what the batcher has done so far."""
        settings = self.settings
        if self.batcher is None:
            return {"enabled": False}
        return {
            "enabled": True,
            "max_size": settings.batch_max_size,
            "wait_ms": settings.batch_wait_ms,
            "max_tokens": settings.batch_max_tokens,
            **self.batcher.stats.to_json(),
        }

    def encode(self, text: str, text_pair: str | None = None) -> Encoded:
        """Encode an input for the loaded model within the configured limits."""
        with self._tokenizer_lock:
            return encode_for(
                self.loaded,
                text,
                text_pair,
                max_tokens=self.max_tokens,
                max_chars=self.settings.max_text_chars,
            )

    def token_strings(self, texts: list[str], max_tokens: int) -> list[list[str]]:
        """The tokens of each text as the model sees them (special tokens included, truncated)."""
        tokenizer = self.loaded.tokenizer
        with self._tokenizer_lock:
            ids = tokenizer(texts, truncation=True, max_length=max_tokens)["input_ids"]
            return [tokenizer.convert_ids_to_tokens(row) for row in ids]

    def clean_pass(self, encoded: Encoded, *, ffn: bool = False) -> CleanPass:
        """The clean forward pass of one input: micro-batched with concurrent requests when batching is on."""
        if self.batcher is not None:
            return self.batcher.clean_pass(encoded, ffn=ffn)
        with self.lock, guard_memory(self.loaded):
            return clean_pass(self.loaded, encoded, ffn=ffn)

    def neuron_maxima(self, index_id: str) -> np.ndarray:
        """[layer, unit] maximum activation of every neuron over an index's corpus (cached per index)."""
        if index_id not in self._maxima:
            page = self.neurons.neurons_page(index_id, sort="max", limit=1, offset=0)
            count = page.total
            items = []
            for offset in range(0, count, 500):
                items += self.neurons.neurons_page(index_id, sort="max", limit=500, offset=offset).items
            layers = max(item.layer for item in items) + 1
            maxima = np.zeros((layers, count // layers), dtype=np.float64)
            for item in items:
                maxima[item.layer, item.unit] = item.maximum or 0.0
            self._maxima[index_id] = maxima
        return self._maxima[index_id]

    def find_head(self, key: str) -> FittedHead:
        """A head fitted on the loaded weights, by id or name."""
        return self.heads.find(key, self.loaded.revision)

    @property
    def max_tokens(self) -> int:
        return min(self.settings.max_tokens, self.loaded.max_positions)

    def randomisation(self, analysis: StoredAnalysis) -> dict:
        """Adebayo et al.'s cascading model-parameter randomisation test of a stored attribution."""
        if get_method(analysis.method).kind != "attribution":
            raise InvalidInput("The randomisation test applies to token attribution analyses.")
        if analysis.model["revision"] != self.loaded.revision:
            raise InvalidInput("This analysis was made with other weights than the loaded ones.")
        original = np.asarray(analysis.result["scores"], dtype=np.float64)
        with self.lock, guard_memory(self.loaded):
            method, encoded, params, target = _rerun_inputs(self, analysis)
            return randomisation_test(self.loaded, encoded, method, params, target, original)

    def analyze(self, request: AnalysisRequest) -> tuple[StoredAnalysis, bool]:
        """Return the stored analysis for ``request`` and whether it came from the cache."""
        method = get_method(request.method)
        try:
            params = method.Params.model_validate(request.params)
        except ValidationError as exc:
            raise InvalidInput(format_validation_error(exc, prefix="params.")) from None
        probes = None
        if getattr(method, "needs_probe", False):
            probes, params = self._pin_probe(params)
        params_json = params.model_dump(mode="json")
        if isinstance(request.target, HeadTarget):  # pin a head name to the id it means now
            request = request.model_copy(
                update={
                    "target": request.target.model_copy(
                        update={"head": self.find_head(request.target.head).id}
                    )
                }
            )
        key = cache_key(self.loaded.revision, method.name, method.version, params_json, request)
        cached = self.store.find(key)
        if cached is not None:
            return cached, True
        with self._single_flight(key) as leader:
            if not leader:  # an identical request just finished: its stored result is ours
                cached = self.store.find(key)
                if cached is not None:
                    return cached, True
            return self._compute(method, request, params, probes, key), False

    def _compute(
        self, method: Method, request: AnalysisRequest, params: BaseModel, probes: ProbeSet | None, key: str
    ) -> StoredAnalysis:
        """Run the method on the request and store the analysis under ``key``."""
        if self.batcher is not None and getattr(method, "batchable", False):
            encoded, target, result = self._run_batched(method, request)
        else:
            encoded, target, result = self._run_locked(method, request, params, probes)
        analysis = StoredAnalysis(
            model=self.loaded.describe(),
            method=method.name,
            method_version=method.version,
            params=params.model_dump(mode="json"),
            target=None
            if target is None or probes is not None
            else {**target.describe(), "spec": target.spec.model_dump(mode="json")},
            text=request.text,
            text_pair=request.text_pair,
            tokens=encoded.tokens,
            encoding=encoded.describe(),
            result=result.to_dict(),
            cache_key=key,
        )
        return self.store.save(analysis)

    @contextmanager
    def _single_flight(self, key: str) -> Iterator[bool]:
        """Identical requests arriving together compute once: the first leads (yields True), the others
        wait for it (yield False) and then read the store; if the leader failed they compute themselves."""
        with self._flights_lock:
            flight = self._flights.get(key)
            leader = flight is None
            if leader:
                flight = self._flights[key] = threading.Event()
        if not leader:
            flight.wait()
            yield False
            return
        try:
            yield True
        finally:
            with self._flights_lock:
                self._flights.pop(key, None)
            flight.set()

    def _run_batched(self, method: Method, request: AnalysisRequest) -> tuple[Encoded, None, Result]:
        """A method that needs only the clean pass: the pass joins a micro-batch; the rest runs unlocked."""
        with self.batcher.expecting() as ticket:
            encoded = self.encode(request.text, request.text_pair)
            clean = ticket.clean_pass(encoded)
        return encoded, None, method.from_pass(self.loaded, clean)

    def _run_locked(
        self, method: Method, request: AnalysisRequest, params: BaseModel, probes: ProbeSet | None
    ) -> tuple[Encoded, Any, Result]:
        """Any other method: exclusive access to the model (it may hook or patch modules) while it runs."""
        encoded = self.encode(request.text, request.text_pair)
        with self.lock, guard_memory(self.loaded):
            target = (
                bind_target(self.loaded, request.target, encoded, heads=self.find_head)
                if method.needs_target
                else None
            )
            if probes is not None:
                target = ProbeContext(probes, self.treebanks.find(probes, request.text))
            return encoded, target, method.run(self.loaded, encoded, params, target)

    def _pin_probe(self, params: BaseModel) -> tuple[ProbeSet, BaseModel]:
        """The probe set a probe method will use, with its id and layer written into the params (so the
        cache key and the permalink name exactly what was drawn)."""
        probes = self.probes.find(params.probe_id, self.loaded.revision)
        layer = params.layer if params.layer is not None else best_layer(probes)
        if layer not in probes.layers:
            raise InvalidInput(
                f"params.layer: probe set {probes.id} has layers {probes.layers}, not {layer}."
            )
        return probes, params.model_copy(update={"probe_id": probes.id, "layer": layer})


def _rerun_inputs(runner: Runner, analysis: StoredAnalysis) -> tuple:
    """Encoded input, validated params and bound target of a stored analysis, to run it again."""
    method = get_method(analysis.method)
    encoded = runner.encode(analysis.text, analysis.text_pair)
    spec = (analysis.target or {}).get("spec")
    target_spec = TypeAdapter(TargetSpec).validate_python(spec) if spec else None
    target = (
        bind_target(runner.loaded, target_spec, encoded, heads=runner.find_head)
        if method.needs_target
        else None
    )
    return method, encoded, method.Params.model_validate(analysis.params), target


def analysis_json(analysis: StoredAnalysis, *, cached: bool | None = None) -> dict[str, Any]:
    """The documented JSON of a stored analysis (arrays stay numpy until serialised)."""
    body = {
        "id": analysis.id,
        "url": analysis.url,
        "method": analysis.method,
        "method_version": analysis.method_version,
        "model": analysis.model,
        "text": analysis.text,
        "text_pair": analysis.text_pair,
        "params": analysis.params,
        "target": analysis.target,
        "tokens": analysis.tokens,
        "encoding": analysis.encoding,
        "result": analysis.result,
        "created_at": analysis.created_at.isoformat(),
    }
    if cached is not None:
        body["cached"] = cached
    return body


def dumps(body: Any) -> bytes:
    """JSON bytes with numpy arrays serialised natively (fast for large matrices)."""
    return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)
