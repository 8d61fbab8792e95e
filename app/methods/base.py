"""The analysis contract: what every per-input method declares and how it is run.

An *analysis* runs on one input (a text or a sentence pair) and is cached and permalinked. Each method
declares, as class attributes read directly (never with ``getattr``):

- ``name``: the paper's name, the same string in the registry, the API, the cache key and the page;
- ``kind``: ``attribution`` (token scores), ``mixing`` (token-to-token matrices) or ``probe``;
- ``version``: part of the cache key; bump it when results change;
- ``title``, ``citation``: shown on the pages and used as figure titles;
- ``summary``: one line saying what the method shows, for a reader who does not know it (beside the picker);
- ``Params``: one pydantic model (validation, the page's form, the cache key);
- ``requires``: what besides the input it needs: ``nothing``, a ``target`` (what prediction to explain)
  or a ``probe_set`` (trained probes, with the gold tree when the sentence is in their treebank);
- ``batchable``: True when ``from_pass`` needs only the clean forward pass and the weights, so the server
  may batch the pass with other requests and run the rest outside the model lock.

``passes(params, tokens, layers)`` estimates the cost of one run as a number of full forward passes over the
input (a backward pass counts as two); the server multiplies it by the padded length and refuses requests over
its per-request budget before they hold the model.

``run(loaded, encoded, params, given)`` computes the result; ``given`` is what ``requires`` names (a bound
target, a probe context, or None). ``bind_params(params, given)`` returns the params with every default
that depends on ``given`` resolved, so the cache key and the permalink name exactly what was computed.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Literal, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict

from app.errors import InvalidInput
from app.modeling.encoding import Encoded
from app.modeling.forward import CleanPass
from app.modeling.loading import LoadedModel

Kind = Literal["attribution", "mixing", "probe"]
Requirement = Literal["nothing", "target", "probe_set"]


class NoParams(BaseModel):
    """A method without parameters still validates (and rejects unknown keys)."""

    model_config = ConfigDict(extra="forbid")


@dataclasses.dataclass
class Result:
    """Base of all results: fields are numpy arrays or JSON scalars, never tensors."""

    def to_dict(self) -> dict[str, Any]:
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Result:
        names = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in names})


class Method(Protocol):
    """One analysis algorithm (see the module docstring for what each attribute means)."""

    name: ClassVar[str]
    kind: ClassVar[Kind]
    version: ClassVar[int]
    title: ClassVar[str]
    citation: ClassVar[str]
    summary: ClassVar[str]
    requires: ClassVar[Requirement]
    batchable: ClassVar[bool]
    Params: ClassVar[type[BaseModel]]
    result_type: ClassVar[type[Result]]

    def run(self, loaded: LoadedModel, encoded: Encoded, params: BaseModel, given: Any) -> Result: ...

    def from_pass(self, loaded: LoadedModel, clean: CleanPass) -> Result: ...

    def bind_params(self, params: BaseModel, given: Any) -> BaseModel: ...

    def passes(self, params: BaseModel, tokens: int, layers: int) -> float: ...


class AnalysisMethod:
    """Defaults: needs nothing but the input, not batchable, params independent of ``given``."""

    requires: ClassVar[Requirement] = "nothing"
    batchable: ClassVar[bool] = False

    def from_pass(self, loaded: LoadedModel, clean: CleanPass) -> Result:
        """Only batchable methods compute from a shared clean pass."""
        raise InvalidInput(f"Method {getattr(self, 'name', '?')} does not compute from a clean pass alone.")

    def bind_params(self, params: BaseModel, given: Any) -> BaseModel:
        return params

    def passes(self, params: BaseModel, tokens: int, layers: int) -> float:
        """Estimated cost in forward passes over the input: one, unless a method says otherwise."""
        return 1.0


def as_numpy(array: Any) -> np.ndarray:
    """float32 numpy copy of a tensor (or array) for a result field."""
    if hasattr(array, "detach"):
        array = array.detach().float().cpu().numpy()
    return np.asarray(array, dtype=np.float32)
