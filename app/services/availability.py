"""What the Sentence page can run now, and for what it cannot: why, what to do, and which job will fix it.

A method needs what its ``requires`` names: nothing, a target (what prediction to explain) or a probe set.
A fitted head is a target kind of its own. :func:`sentence_availability` is pure (plain data in, JSON out);
:func:`availability_now` gathers that data from the stores, so the page spec and ``GET /api/availability``
say the same thing, and the page can tell a reader *before* submitting why an analysis cannot run yet (and,
while a probe set is being trained or a head fitted, how far the job is and about how long it still needs).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from app.methods import METHODS
from app.services.container import Services

ACTIVE = ("queued", "running")

# what each missing thing is called, the job kind that makes one, and where a person starts that job
NEEDS = {
    "probe_set": {
        "missing": "No probe set has been trained for the loaded model yet, so there is no tree to draw.",
        "job": "train_probes",
        "doing": "a probe set is being trained",
        "hint": "Train one on the Probes page (/probes) from a CoNLL-U treebank; it becomes usable here "
        "as soon as it is trained, without reloading.",
        "waiting": "It becomes usable here as soon as the training finishes, without reloading.",
    },
    "head": {
        "missing": "No head has been fitted on the loaded model yet.",
        "job": "fit_head",
        "doing": "a head is being fitted",
        "hint": "Fit one from labelled sentences on the Evaluations page (/evaluations); it appears in the "
        "target picker as soon as it is fitted.",
        "waiting": "It appears in the target picker as soon as the fit finishes, without reloading.",
    },
}


def eta_text(seconds: float | None) -> str:
    """'about 1 min left' (rounded the way a person would say it); '' when there is no estimate."""
    if seconds is None or not math.isfinite(seconds):
        return ""
    if seconds < 10:
        return "a few seconds left"
    if seconds < 50:
        return f"about {round(seconds / 10) * 10} s left"
    if seconds < 90:
        return "about 1 min left"
    if seconds < 3600:
        return f"about {round(seconds / 60)} min left"
    return f"about {seconds / 3600:.1f} h left"


def job_text(doing: str, job: Mapping[str, Any]) -> str:
    """'a probe set is being trained: 40 %, about 1 min left' for a job as ``GET /api/jobs`` lists it."""
    if job["status"] == "queued":
        return f"{doing}: queued behind other jobs"
    progress = float(job.get("progress") or 0.0)
    if progress <= 0:
        return f"{doing}: starting"
    parts = [f"{math.floor(progress * 100)} %", eta_text(job.get("eta_s"))]
    return f"{doing}: " + ", ".join(part for part in parts if part)


def _active_job(kind: str, jobs: list[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The job of ``kind`` that will finish first: a running one before a queued one (jobs newest first)."""
    mine = [job for job in jobs if job["kind"] == kind and job["status"] in ACTIVE]
    running = [job for job in mine if job["status"] == "running"]
    return (running or mine[::-1] or [None])[0]


def _needs(what: str, have: int, jobs: list[Mapping[str, Any]]) -> dict[str, Any]:
    """Available when at least one exists; else why not, what to do, and the job that will make one."""
    if have > 0:
        return {"available": True, "reason": "", "hint": "", "job": None}
    need = NEEDS[what]
    job = _active_job(need["job"], jobs)
    if job is None:
        return {"available": False, "reason": need["missing"], "hint": need["hint"], "job": None}
    summary = {key: job.get(key) for key in ("id", "kind", "status", "progress", "eta_s")}
    text = job_text(need["doing"], job)
    reason = text[0].upper() + text[1:] + "."
    return {"available": False, "reason": reason, "hint": need["waiting"], "job": summary}


def sentence_availability(
    requires: Mapping[str, str],
    *,
    probe_sets: int,
    heads: int,
    target_kinds: list[str],
    jobs: list[Mapping[str, Any]],
) -> dict[str, Any]:
    """Per method (``requires``: method name -> what it requires) and per target kind that may be missing
    (``head``): ``available``, and otherwise ``reason`` (why not, or the progress of the job that will make
    it available), ``hint`` (what to do) and ``job`` (that job: id, kind, status, progress, eta_s)."""
    probe_set = _needs("probe_set", probe_sets, jobs)
    head = _needs("head", heads, jobs)
    targets = {"available": bool(target_kinds) or heads > 0, "reason": "", "hint": "", "job": None}
    if not targets["available"]:  # no classification head, no MLM head, no zero-shot: only a fitted head
        targets = {**head, "reason": "This model has no target to explain. " + head["reason"]}
    by_requirement = {"nothing": {"available": True, "reason": "", "hint": "", "job": None}}
    by_requirement.update(target=targets, probe_set=probe_set)
    return {
        "methods": {name: by_requirement[needs] for name, needs in requires.items()},
        "targets": {"head": head},
        "counts": {"probe_sets": probe_sets, "heads": heads},
    }


def availability_now(services: Services, target_kinds: list[str] | None = None) -> dict[str, Any]:
    """:func:`sentence_availability` for the loaded model, its stored probe sets and heads, and the jobs
    listed now (``target_kinds``: the model's target kinds when the caller already has them)."""
    revision = services.runner.revision
    if target_kinds is None:
        target_kinds = [target["kind"] for target in services.analyses.targets() if target["kind"] != "head"]
    return sentence_availability(
        {name: method.requires for name, method in METHODS.items()},
        probe_sets=services.stores.probes.count_for_revision(revision),
        heads=services.stores.heads.count_for_revision(revision),
        target_kinds=target_kinds,
        jobs=[job.to_json() for job in services.stores.records.jobs()],
    )
