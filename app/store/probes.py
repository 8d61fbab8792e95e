"""Trained structural probe sets in the store (weights + metrics, tied to one model revision)."""

from __future__ import annotations

from app.errors import NotFound
from app.methods.probes.probe_set import ProbeSet
from app.store.codec import pack, unpack
from app.store.revisioned import RevisionedStore
from app.store.tables import ProbeRow

ERASER_PREFIX = "amnesic."  # keys of the amnesic check's erasures among a probe set's arrays


class ProbeStore(RevisionedStore[ProbeSet]):
    """Save and look up probe sets; a probe set only applies to the revision it was trained on."""

    table = ProbeRow
    what = "probe set"

    def save(self, probes: ProbeSet) -> ProbeSet:
        row = ProbeRow(
            id=probes.id,
            name=probes.name,
            model_name=probes.model_name,
            model_revision=probes.model_revision,
            layers=probes.layers,
            rank=probes.rank,
            params=probes.params,
            metrics=probes.metrics,
            weights=pack({"distance": probes.distance, "depth": probes.depth, **probes.erasers}),
            created_at=probes.created_at,
        )
        with self._session(write=True) as session:
            session.add(row)
        return probes

    def find(self, key: str | None, revision: str) -> ProbeSet:
        """A probe set by id or name (newest of that name), or the newest of all when ``key`` is None."""
        probes = self.latest(revision, key)
        if probes is None:
            what = f"probe set {key!r}" if key else "trained probe set"
            raise NotFound(
                f"No {what} for the loaded model: train one with 'bertscope probe train' "
                "or from the Probes page."
            )
        return probes

    def _record(self, row: ProbeRow) -> ProbeSet:
        arrays = unpack(row.weights)
        return ProbeSet(
            name=row.name,
            model_name=row.model_name,
            model_revision=row.model_revision,
            layers=[int(layer) for layer in row.layers],
            distance=arrays["distance"],
            depth=arrays["depth"],
            erasers={key: value for key, value in arrays.items() if key.startswith(ERASER_PREFIX)},
            params=row.params,
            metrics=row.metrics,
            id=row.id,
            created_at=row.created_at,
        )
