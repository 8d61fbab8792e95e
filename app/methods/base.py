"""The ``Method`` protocol and the plain result container every method returns."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Literal, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict

from app.modeling.encoding import Encoded
from app.modeling.loading import LoadedModel
from app.modeling.targets import BoundTarget

Kind = Literal["attribution", "mixing", "neurons", "probe"]


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
    """One analysis algorithm. ``name`` is the same string in registry, API, cache key and UI."""

    name: ClassVar[str]
    kind: ClassVar[Kind]
    version: ClassVar[int]
    title: ClassVar[str]
    citation: ClassVar[str]
    needs_target: ClassVar[bool]
    Params: ClassVar[type[BaseModel]]
    result_type: ClassVar[type[Result]]

    def run(
        self, loaded: LoadedModel, encoded: Encoded, params: BaseModel, target: BoundTarget | None
    ) -> Result: ...


def as_numpy(array: Any) -> np.ndarray:
    """float32 numpy copy of a tensor (or array) for a result field."""
    if hasattr(array, "detach"):
        array = array.detach().float().cpu().numpy()
    return np.asarray(array, dtype=np.float32)
