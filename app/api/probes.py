"""Probe sets: list them, read one, and its per-layer figures (training runs as a ``train_probes`` job)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from app.api.deps import use_runner
from app.api.routes import ERRORS
from app.figures.probe_set import probe_set_view
from app.services.runner import Runner

router = APIRouter(prefix="/api", tags=["probes"])


@router.get("/probes", responses=ERRORS)
def list_probes(runner: Runner = Depends(use_runner)) -> list[dict[str, Any]]:
    """Probe sets trained on the loaded weights, newest first."""
    return [probes.describe() for probes in runner.probes.for_revision(runner.loaded.revision)]


@router.get("/probes/{probe_id}", responses=ERRORS)
def get_probes(probe_id: str, runner: Runner = Depends(use_runner)) -> dict[str, Any]:
    """One probe set: params, layers, rank and every metric measured on its dev treebank."""
    return runner.probes.find(probe_id, runner.loaded.revision).describe()


@router.get("/probes/{probe_id}/figure", responses=ERRORS)
def get_probe_figures(probe_id: str, runner: Runner = Depends(use_runner)) -> dict[str, Any]:
    """Per-layer metric curves, tree topological curves and the summary table of one probe set."""
    probes = runner.probes.find(probe_id, runner.loaded.revision)
    return {"id": probes.id, **probe_set_view(probes.metrics)}
