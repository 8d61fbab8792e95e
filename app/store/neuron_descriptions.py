"""Neuron description runs in the store: the shared descriptor set, a summary, and one row per neuron.

- ``neuron_description_sets``: one run (model revision, corpora and their index ids, generator, the
  clustered descriptor set, the summary that compares neurons with random directions).
- ``neuron_descriptions``: per neuron its label, consistency, best descriptor and score, and the per-corpus
  detail as JSON.
- ``neuron_descriptor_scores``: per neuron and descriptor its best score over the corpora (lower-case label),
  so that a search ``q`` finds and ranks 40k neurons in SQL by their score *for the matching descriptor*.
A run is written in one transaction: a crash leaves either the whole run or nothing. A run describes one
basis of units (``neurons`` or ``features:<dictionary id>``); its random directions are kept as a set of
their own, basis ``random-directions:<run id>`` (layer = the direction's layer, unit = its number).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, insert, select

from app.errors import InvalidInput
from app.ids import new_id
from app.methods.neurons.descriptions import Described, DescriptionRun
from app.methods.neurons.units import NEURONS_KEY
from app.store.revisioned import RevisionedStore
from app.store.tables import DescriptionRow, DescriptionSetRow, DescriptorScoreRow

MAX_PAGE = 500
SORTS = ("score", "consistency", "layer")
RANDOM_PREFIX = "random-directions:"


def random_basis(set_id: str) -> str:
    """The basis under which the random directions of run ``set_id`` are stored."""
    return f"{RANDOM_PREFIX}{set_id}"


@dataclass
class DescriptionSet:
    """One description run without its neurons: corpora, descriptor set, summary and parameters."""

    id: str
    model_name: str
    model_revision: str
    corpora: dict[str, str]
    descriptor_set: dict
    summary: dict
    params: dict
    created_at: datetime
    basis: str = NEURONS_KEY

    def to_json(self, with_descriptors: bool = False) -> dict[str, Any]:
        body = {key: value for key, value in self.__dict__.items() if key != "descriptor_set"}
        body["created_at"] = self.created_at.isoformat()
        body["descriptor_labels"] = self.descriptor_set["labels"]
        if with_descriptors:
            body["descriptor_set"] = self.descriptor_set
        return body


def _neuron(row: DescriptionRow) -> dict[str, Any]:
    return {
        "layer": row.layer,
        "unit": row.unit,
        "label": row.label,
        "consistency": row.consistency,
        "best_score": row.best_score,
        "best_descriptor": row.best_descriptor,
        **row.detail,
    }


class DescriptionStore(RevisionedStore[DescriptionSet]):
    """Save description runs (the newest of a revision is the one shown) and browse their neurons."""

    table = DescriptionSetRow
    what = "neuron description run"
    name_column = None  # runs have no name: found by id, or the newest of a revision

    def _record(self, row: DescriptionSetRow) -> DescriptionSet:
        return DescriptionSet(
            row.id,
            row.model_name,
            row.model_revision,
            row.corpora,
            row.descriptor_set,
            row.summary,
            row.params,
            row.created_at,
            row.basis,
        )

    def _missing(self, record_id: str) -> str:
        return f"No neuron description run {record_id!r}."

    def latest(
        self, revision: str, key: str | None = None, basis: str = NEURONS_KEY
    ) -> DescriptionSet | None:
        """The newest run of this revision over ``basis`` (default: the neurons); with ``key``, that run."""
        where = [DescriptionSetRow.basis == basis]
        if key:
            where.append(DescriptionSetRow.id == key)
        return self._newest(revision, *where)

    def save(
        self, run: DescriptionRun, model_name: str, revision: str, corpora: dict[str, str], params: dict
    ) -> str:
        """Store the run and its random directions in one transaction; returns the run's id."""
        set_id = new_id()
        labels = run.descriptor_set.labels
        units = [(number // run.num_units, number % run.num_units) for number in range(len(run.neurons))]
        rows, scores = _rows(set_id, run.neurons, units, labels)
        random_id = new_id()
        directions = [(int(layer), number) for number, layer in enumerate(run.direction_layers)]
        random_rows, random_scores = _rows(random_id, run.randoms, directions, labels)
        common = {
            "model_name": model_name,
            "model_revision": revision,
            "corpora": corpora,
            "descriptor_set": run.descriptor_set.to_dict(),
            "params": params,
        }
        with self._session(write=True) as session:
            session.add(DescriptionSetRow(id=set_id, basis=run.basis, summary=run.summary, **common))
            session.add(
                DescriptionSetRow(
                    id=random_id,
                    basis=random_basis(set_id),
                    summary=_random_summary(run),
                    **common,
                )
            )
            session.flush()
            for table, values in (
                (DescriptionRow, rows + random_rows),
                (DescriptorScoreRow, scores + random_scores),
            ):
                if values:
                    session.execute(insert(table), values)
        return set_id

    def neuron(self, set_id: str, layer: int, unit: int) -> dict[str, Any] | None:
        with self._session() as session:
            row = session.get(DescriptionRow, (set_id, layer, unit))
            return None if row is None else _neuron(row)

    def page(
        self,
        set_id: str,
        *,
        layer: int | None = None,
        query: str | None = None,
        label: str | None = None,
        sort: str = "score",
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[int, list[dict[str, Any]]]:
        """Neurons of a run, filtered by layer, descriptor text and label, sorted, one page."""
        if sort not in SORTS:
            raise InvalidInput(f"Unknown sort {sort!r}; sort by one of {', '.join(SORTS)}.")
        if not 1 <= limit <= MAX_PAGE or offset < 0:
            raise InvalidInput(f"limit must be 1-{MAX_PAGE} and offset at least 0.")
        where = [DescriptionRow.set_id == set_id]
        if layer is not None:
            where.append(DescriptionRow.layer == layer)
        if label:
            where.append(DescriptionRow.label == label)
        match = None
        if query:
            escaped = query.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            match = (
                select(
                    DescriptorScoreRow.layer,
                    DescriptorScoreRow.unit,
                    func.max(DescriptorScoreRow.score).label("score"),
                    # a descriptor that *is* the query outranks longer ones that merely contain it
                    func.max(
                        case(
                            (DescriptorScoreRow.descriptor == query.lower().strip(), DescriptorScoreRow.score)
                        )
                    ).label("exact"),
                )
                .where(
                    DescriptorScoreRow.set_id == set_id,
                    DescriptorScoreRow.descriptor.like(f"%{escaped}%", escape="\\"),
                )
                .group_by(DescriptorScoreRow.layer, DescriptorScoreRow.unit)
                .subquery()
            )
        score = DescriptionRow.best_score if match is None else match.c.score
        exact = [] if match is None else [match.c.exact.desc().nulls_last()]
        order = {
            "score": [*exact, score.desc().nulls_last()],
            "consistency": [DescriptionRow.consistency.desc().nulls_last(), score.desc().nulls_last()],
            "layer": [],
        }[sort]
        statement = select(DescriptionRow)
        counting = select(func.count()).select_from(DescriptionRow)
        if match is not None:
            joined = and_(DescriptionRow.layer == match.c.layer, DescriptionRow.unit == match.c.unit)
            statement = statement.join(match, joined)
            counting = counting.join(match, joined)
        statement = (
            statement.where(*where)
            .order_by(*order, DescriptionRow.layer, DescriptionRow.unit)
            .limit(limit)
            .offset(offset)
        )
        with self._session() as session:
            total = session.scalar(counting.where(*where))
            items = [_neuron(row) for row in session.scalars(statement)]
        return int(total or 0), items


def _random_summary(run: DescriptionRun) -> dict[str, Any]:
    """The summary of a run's random directions as a run of their own: its context, their group as units."""
    shared = {
        key: run.summary[key]
        for key in ("corpora", "descriptors", "generator", "thresholds")
        if key in run.summary
    }
    return {**shared, "basis": f"random:{run.basis}", "units": run.summary.get("random_directions", {})}


def _rows(
    set_id: str, items: list[Described], units: list[tuple[int, int]], labels: list[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The description rows of ``items`` (at ``units``: (layer, unit) each) and their descriptor scores."""
    rows, scores = [], []
    for (layer, unit), item in zip(units, items, strict=True):
        best = max(
            (entry for entries in item.descriptors.values() for entry in entries[:1]),
            key=lambda entry: entry[1],
            default=None,
        )
        rows.append(
            {
                "set_id": set_id,
                "layer": layer,
                "unit": unit,
                "label": item.label,
                "consistency": item.consistency,
                "best_score": None if best is None else float(best[1]),
                "best_descriptor": None if best is None else labels[best[0]][:200],
                "detail": {
                    "descriptors": item.descriptors,
                    "stability": item.stability,
                    "token_overlap": item.token_overlap,
                },
            }
        )
        scores.extend(_score_rows(set_id, rows[-1], labels))
    return rows, scores


def _score_rows(set_id: str, row: dict[str, Any], labels: list[str]) -> list[dict[str, Any]]:
    """Per descriptor of one neuron row its best score over the corpora (ties: the first corpus)."""
    best: dict[str, dict[str, Any]] = {}
    for corpus, entries in row["detail"]["descriptors"].items():
        for entry in entries:
            name = labels[entry[0]].lower()[:200]
            if name not in best or entry[1] > best[name]["score"]:
                best[name] = {
                    "set_id": set_id,
                    "layer": row["layer"],
                    "unit": row["unit"],
                    "descriptor": name,
                    "score": float(entry[1]),
                    "corpus": corpus[:200],
                }
    return list(best.values())
