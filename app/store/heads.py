"""Fitted heads in the store (weights + metrics, tied to one model revision)."""

from __future__ import annotations

from app.errors import NotFound
from app.modeling.heads import FittedHead
from app.store.codec import pack, unpack
from app.store.revisioned import RevisionedStore
from app.store.tables import HeadRow


class HeadStore(RevisionedStore[FittedHead]):
    """Save and look up fitted heads; a head only applies to the weights revision it was fitted on."""

    table = HeadRow
    what = "fitted head"

    def save(self, head: FittedHead) -> FittedHead:
        row = HeadRow(
            id=head.id,
            name=head.name,
            model_name=head.model_name,
            model_revision=head.model_revision,
            labels=head.labels,
            weights=pack({"weight": head.weight, "bias": head.bias}),
            metrics=head.metrics,
            params=head.params,
            created_at=head.created_at,
        )
        with self._session(write=True) as session:
            session.add(row)
        return head

    def find(self, key: str, revision: str) -> FittedHead:
        """A head by id or name (newest of that name) fitted on this revision."""
        head = self.latest(revision, key)
        if head is None:
            raise NotFound(
                f"No fitted head {key!r} for the loaded model (fit one with 'bertscope heads fit')."
            )
        return head

    def _record(self, row: HeadRow) -> FittedHead:
        arrays = unpack(row.weights)
        return FittedHead(
            name=row.name,
            model_name=row.model_name,
            model_revision=row.model_revision,
            labels=list(row.labels),
            weight=arrays["weight"],
            bias=arrays["bias"],
            metrics=row.metrics,
            params=row.params,
            id=row.id,
            created_at=row.created_at,
        )
