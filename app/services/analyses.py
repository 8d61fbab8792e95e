"""Per-input analyses: validate, look up the cache, compute with the model, store; and what they show.

An identical request (same weights, method, version, params, input and target) gives the stored analysis;
identical requests arriving together compute once. Batchable methods join a micro-batch for their clean
pass and compute the rest outside the model lock; every other method holds the model exclusively.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from app.errors import InvalidInput, OverBudget, format_validation_error
from app.jobs.data_files import local_path
from app.methods import get_method
from app.methods.attribution.sanity import randomisation_test
from app.methods.base import Method, Result
from app.methods.probes.lookup import TreebankLookup
from app.methods.probes.structural_probe import ProbeContext
from app.modeling.encoding import Encoded
from app.modeling.heads import FittedHead
from app.modeling.loading import LoadedModel
from app.modeling.targets import HeadTarget, TargetSpec, available_targets, bind_target
from app.services.runner import Runner
from app.store.analyses import StoredAnalysis
from app.store.stores import Stores


class AnalysisRequest(BaseModel):
    """What the API's POST /api/analyses and the CLI's ``analyze`` accept."""

    model_config = ConfigDict(extra="forbid")
    method: str = Field(min_length=1, max_length=100, examples=["attention"])
    text: str = Field(examples=["The cat sat on the mat."])
    text_pair: str | None = Field(None, description="Optional second sentence (sentence-pair input).")
    params: dict[str, Any] = Field(default_factory=dict, description="Method parameters (see /api/methods).")
    target: TargetSpec | None = Field(None, description="What to explain; null = the model's default.")


def validate_params(model: type[BaseModel], params: dict[str, Any]) -> BaseModel:
    """``params`` parsed by ``model``; problems become one InvalidInput naming each ``params.field``."""
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        raise InvalidInput(format_validation_error(exc, prefix="params.")) from None


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


class Analyses:
    """Runs and stores analyses on the runner's model."""

    def __init__(self, runner: Runner, stores: Stores) -> None:
        self.runner = runner
        self.stores = stores
        self.treebanks = TreebankLookup(partial(local_path, stores=stores, settings=runner.settings))
        self._flights: dict[str, threading.Event] = {}  # cache keys being computed now
        self._flights_lock = threading.Lock()

    def find_head(self, key: str) -> FittedHead:
        """A head fitted on the loaded weights, by id or name."""
        return self.stores.heads.find(key, self.runner.revision)

    def targets(self) -> list[dict[str, Any]]:
        """The loaded model's targets, plus fitted heads when there are any."""
        with self.runner.using_model() as loaded:
            targets = available_targets(loaded)
        heads = self.stores.heads.list_for_revision(self.runner.revision)
        if heads:
            targets.append({"kind": "head", "heads": [head.describe() for head in heads]})
        return targets

    def analyze(self, request: AnalysisRequest) -> tuple[StoredAnalysis, bool]:
        """Return the stored analysis for ``request`` and whether it came from the cache."""
        method = get_method(request.method)
        params = validate_params(method.Params, request.params)
        probes = None
        if method.requires == "probe_set":
            probes = self._probe_context(params, request.text)
            params = method.bind_params(params, probes)
        if isinstance(request.target, HeadTarget):  # pin a head name to the id it means now
            head = self.find_head(request.target.head).id
            request = request.model_copy(update={"target": request.target.model_copy(update={"head": head})})
        params_json = params.model_dump(mode="json")
        key = cache_key(self.runner.revision, method.name, method.version, params_json, request)
        cached = self.stores.analyses.find(key)
        if cached is not None:
            return cached, True
        self._check_budget(method, params, request)
        with self._single_flight(key) as leader:
            if not leader:  # an identical request just finished: its stored result is ours
                cached = self.stores.analyses.find(key)
                if cached is not None:
                    return cached, True
            return self._compute(method, request, params, probes, key), False

    def _check_budget(self, method: Method, params: BaseModel, request: AnalysisRequest) -> None:
        """Refuse, before it holds the model, a request estimated to cost more than the per-request budget."""
        budget, longest, layers = (
            self.runner.settings.max_request_cost,
            self.runner.max_tokens,
            self.runner.num_layers,
        )
        if method.passes(params, longest, layers) * longest <= budget:
            return  # within budget at any length: no need to encode the text here (the cheap, common case)
        tokens = self.runner.encode(request.text, request.text_pair).length
        passes = method.passes(params, tokens, layers)
        cost = passes * tokens
        if cost > budget:
            raise OverBudget(
                f"{method.name} on this input would cost about {cost:,.0f} (forward passes x tokens: "
                f"{passes:,.0f} x {tokens}), over the per-request budget of {budget:,} set by "
                "BERTSCOPE_MAX_REQUEST_COST. Use fewer samples or steps or a shorter text, or run it with "
                "`bertscope analyze` on your own machine (no budget there)."
            )

    def randomisation(self, analysis: StoredAnalysis) -> dict:
        """Adebayo et al.'s cascading model-parameter randomisation test of a stored attribution."""
        if get_method(analysis.method).kind != "attribution":
            raise InvalidInput("The randomisation test applies to token attribution analyses.")
        if analysis.model["revision"] != self.runner.revision:
            raise InvalidInput("This analysis was made with other weights than the loaded ones.")
        original = np.asarray(analysis.result["scores"], dtype=np.float64)
        method = get_method(analysis.method)
        encoded = self.runner.encode(analysis.text, analysis.text_pair)
        spec = (analysis.target or {}).get("spec")
        target_spec = TypeAdapter(TargetSpec).validate_python(spec) if spec else None
        params = method.Params.model_validate(analysis.params)
        with self.runner.exclusive() as loaded:
            target = bind_target(loaded, target_spec, encoded, heads=self.find_head)
            return randomisation_test(loaded, encoded, method, params, target, original)

    def _probe_context(self, params: BaseModel, text: str) -> ProbeContext:
        probes = self.stores.probes.find(params.probe_id, self.runner.revision)
        return ProbeContext(probes, self.treebanks.find(probes, text))

    def _compute(
        self,
        method: Method,
        request: AnalysisRequest,
        params: BaseModel,
        probes: ProbeContext | None,
        key: str,
    ) -> StoredAnalysis:
        """Run the method on the request and store the analysis under ``key``."""
        if self.runner.batcher is not None and method.batchable:
            encoded, target, result = self._run_batched(method, request)
        else:
            encoded, target, result = self._run_exclusive(method, request, params, probes)
        analysis = StoredAnalysis(
            model=self.runner.describe_model(),
            method=method.name,
            method_version=method.version,
            params=params.model_dump(mode="json"),
            target=None
            if target is None
            else {**target.describe(), "spec": target.spec.model_dump(mode="json")},
            text=request.text,
            text_pair=request.text_pair,
            tokens=encoded.tokens,
            encoding=encoded.describe(),
            result=result.to_dict(),
            cache_key=key,
        )
        return self.stores.analyses.save(analysis)

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
        with self.runner.batcher.expecting() as ticket:
            encoded = self.runner.encode(request.text, request.text_pair)
            clean = ticket.clean_pass(encoded)
        with self.runner.using_model() as loaded:
            return encoded, None, method.from_pass(loaded, clean)

    def _run_exclusive(
        self, method: Method, request: AnalysisRequest, params: BaseModel, probes: ProbeContext | None
    ) -> tuple[Encoded, Any, Result]:
        """Any other method: exclusive access to the model (it may hook or patch modules) while it runs."""
        encoded = self.runner.encode(request.text, request.text_pair)
        with self.runner.exclusive() as loaded:
            target = self._bind_target(loaded, method, request, encoded)
            given = probes if method.requires == "probe_set" else target
            return encoded, target, method.run(loaded, encoded, params, given)

    def _bind_target(
        self, loaded: LoadedModel, method: Method, request: AnalysisRequest, encoded: Encoded
    ) -> Any:
        if method.requires != "target":
            return None
        return bind_target(loaded, request.target, encoded, heads=self.find_head)


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
