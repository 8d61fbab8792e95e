"""Sparse-autoencoder dictionaries in the store: finished ones (listed, by revision) and the checkpoint of
one in training (status ``training``: never listed; resumed when the same training is submitted again,
deleted when it is cancelled, replaced by the finished dictionary in one transaction)."""

from __future__ import annotations

from sqlalchemy import Select, delete, or_, select
from sqlalchemy.orm import defer

from app.errors import NotFound
from app.methods.features.dictionary import ARRAYS, FeatureDictionary, description
from app.store.codec import pack, unpack
from app.store.revisioned import RevisionedStore
from app.store.tables import DictionaryRow


class DictionaryStore(RevisionedStore[FeatureDictionary]):
    """Save, list and find dictionaries of one weights revision; keep one training's checkpoint."""

    table = DictionaryRow
    what = "dictionary"

    def list_for_revision(self, revision: str) -> list[FeatureDictionary]:
        """Finished dictionaries of a revision, with their weights, newest first."""
        with self._session() as session:
            return [self._record(row) for row in session.scalars(self._finished(revision))]

    def descriptions(self, revision: str) -> list[dict]:
        """What the API and pages list, without reading any weights (megabytes per dictionary)."""
        with self._session() as session:
            return [description(row, row.width) for row in session.scalars(self._without_weights(revision))]

    def description_of(self, dictionary_id: str, revision: str) -> dict | None:
        """One finished dictionary's listing entry (no weights read), or None."""
        query = self._without_weights(revision).where(DictionaryRow.id == dictionary_id)
        with self._session() as session:
            row = session.scalars(query).first()
            return None if row is None else description(row, row.width)

    def _without_weights(self, revision: str) -> Select:
        return self._finished(revision).options(defer(DictionaryRow.weights), defer(DictionaryRow.checkpoint))

    def _finished(self, revision: str) -> Select:
        return (
            select(DictionaryRow)
            .where(DictionaryRow.model_revision == revision, DictionaryRow.status == "done")
            .order_by(DictionaryRow.created_at.desc())
        )

    def find(self, key: str | None, revision: str) -> FeatureDictionary:
        """A finished dictionary by id or name (newest of that name), or the newest when ``key`` is None."""
        matches = [] if key is None else [or_(DictionaryRow.id == key, DictionaryRow.name == key)]
        found = self._newest(revision, DictionaryRow.status == "done", *matches)
        if found is None:
            what = f"dictionary {key!r}" if key else "trained dictionary"
            raise NotFound(
                f"No {what} for the loaded model: train one with 'bertscope features train' or from the "
                "Neurons page."
            )
        return found

    def checkpoint(self, revision: str, params_key: str) -> tuple[str, bytes] | None:
        """The id and checkpoint of an unfinished training of these params, if one was left."""
        query = select(DictionaryRow).where(
            DictionaryRow.model_revision == revision,
            DictionaryRow.params_key == params_key,
            DictionaryRow.status == "training",
        )
        with self._session() as session:
            row = session.scalars(query).first()
            return None if row is None or row.checkpoint is None else (row.id, row.checkpoint)

    def save_checkpoint(self, dictionary: FeatureDictionary, params_key: str, checkpoint: bytes) -> None:
        """Keep (or replace) the checkpoint of the training that will make ``dictionary``."""
        with self._session(write=True) as session:
            row = session.get(DictionaryRow, dictionary.id)
            if row is None:
                row = self._row(dictionary, params_key, "training")
                session.add(row)
            row.checkpoint = checkpoint

    def discard_training(self, dictionary_id: str) -> None:
        """Forget an unfinished training (on Cancel: nothing partial stays)."""
        with self._session(write=True) as session:
            session.execute(
                delete(DictionaryRow).where(
                    DictionaryRow.id == dictionary_id, DictionaryRow.status == "training"
                )
            )

    def save(self, dictionary: FeatureDictionary, params_key: str = "") -> FeatureDictionary:
        """Store a finished dictionary (replacing its training checkpoint, in one transaction)."""
        with self._session(write=True) as session:
            row = session.get(DictionaryRow, dictionary.id)
            if row is None:
                row = self._row(dictionary, params_key, "done")
                session.add(row)
            row.status, row.checkpoint, row.metrics = "done", None, dictionary.metrics
            row.weights = pack(dictionary.arrays())
        return dictionary

    def _row(self, dictionary: FeatureDictionary, params_key: str, status: str) -> DictionaryRow:
        return DictionaryRow(
            id=dictionary.id,
            name=dictionary.name,
            model_name=dictionary.model_name,
            model_revision=dictionary.model_revision,
            layer=dictionary.layer,
            site=dictionary.site,
            width=dictionary.width,
            k=dictionary.k,
            params=dictionary.params,
            params_key=params_key,
            status=status,
            metrics=dictionary.metrics if status == "done" else {"status": "training"},
            weights=None,
            created_at=dictionary.created_at,
        )

    def _record(self, row: DictionaryRow) -> FeatureDictionary:
        arrays = unpack(row.weights) if row.weights is not None else {}
        empty = {name: arrays.get(name) for name in ARRAYS}
        return FeatureDictionary(
            name=row.name,
            model_name=row.model_name,
            model_revision=row.model_revision,
            layer=row.layer,
            site=row.site,
            k=row.k,
            scale=float(arrays["scale"]) if "scale" in arrays else 1.0,
            params=row.params,
            metrics=row.metrics if row.status == "done" else {"status": "training"},
            id=row.id,
            created_at=row.created_at,
            **empty,  # type: ignore[arg-type]
        )
