"""Probe sets: list them, read one, and its per-layer figures (training runs as a ``train_probes`` job)."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from fastapi import APIRouter, Depends, Response

from app.api.deps import use_services
from app.api.pages import PROBE_EXAMPLES
from app.api.schemas import ERRORS
from app.errors import NotFound
from app.figures.probe_set import probe_set_view
from app.services.container import Services

router = APIRouter(prefix="/api", tags=["probes"])


@router.get("/probes", responses=ERRORS)
def list_probes(services: Services = Depends(use_services)) -> list[dict[str, Any]]:
    """Probe sets trained on the loaded weights, newest first."""
    return [
        probes.describe() for probes in services.stores.probes.list_for_revision(services.runner.revision)
    ]


@router.get("/probes/{probe_id}", responses=ERRORS)
def get_probes(probe_id: str, services: Services = Depends(use_services)) -> dict[str, Any]:
    """One probe set: params, layers, rank and every metric measured on its dev treebank."""
    return services.stores.probes.find(probe_id, services.runner.revision).describe()


@router.get("/probes/{probe_id}/figure", responses=ERRORS)
def get_probe_figures(probe_id: str, services: Services = Depends(use_services)) -> dict[str, Any]:
    """Per-layer metric curves, tree topological curves and the summary table of one probe set, with a few
    sentences of its dev treebank to draw (``examples``)."""
    probes = services.stores.probes.find(probe_id, services.runner.revision)
    examples = services.analyses.treebanks.examples(probes, PROBE_EXAMPLES)
    return {"id": probes.id, **probe_set_view(probes.metrics), "examples": examples}


@router.get(
    "/probes/{probe_id}/erasers.npz",
    responses={**ERRORS, 200: {"content": {"application/octet-stream": {}}}},
    response_class=Response,
)
def get_probe_erasers(probe_id: str, services: Services = Depends(use_services)) -> Response:
    """The amnesic check's erasures of one probe set as a numpy ``.npz`` archive, to re-apply and re-measure
    them outside bertscope: per erased layer L and kind (``leace``, ``random``) the arrays
    ``amnesic.L.kind.left`` [hidden, r], ``.right`` [r, hidden] and ``.bias`` [hidden]; the erased state is
    ``x - ((x - bias) @ right.T) @ left.T``. 404 when the set was trained without the check."""
    probes = services.stores.probes.find(probe_id, services.runner.revision)
    if not probes.erasers:
        raise NotFound(f"Probe set {probes.id} was trained without the amnesic check: it holds no erasures.")
    buffer = io.BytesIO()
    np.savez(buffer, **probes.erasers)
    headers = {"Content-Disposition": f'attachment; filename="bertscope-erasers-{probes.id}.npz"'}
    return Response(buffer.getvalue(), media_type="application/octet-stream", headers=headers)
