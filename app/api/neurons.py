"""Neuron browser API: search and sort neurons, one neuron's evidence, active neurons of an analysis.

Indexes and descriptions are built by the ``index_neurons`` and ``describe_neurons`` jobs (POST /api/jobs).
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Path, Query

from app.api.deps import use_services
from app.api.schemas import ERRORS
from app.services.container import Services
from app.services.neuron_views import active_neurons, neuron_detail, neuron_page, neuron_summary

router = APIRouter(prefix="/api", tags=["neurons"])
Label = Literal["consistent", "inconsistent", "corpus-specific", "undescribed", "single corpus"]


@router.get("/neurons", responses=ERRORS)
def list_neurons(
    layer: int | None = Query(None, ge=0, le=256, description="Only this layer."),
    q: str | None = Query(None, max_length=200, description="Search descriptor labels (substring)."),
    label: Label | None = Query(None, description="Only neurons with this consistency label."),
    sort: Literal["score", "consistency", "layer"] = Query("score"),
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=10_000_000),
    basis: str = Query(
        "neurons",
        max_length=100,
        description="neurons, features:<dictionary id>, random:neurons or random:features:<dictionary id>.",
    ),
    services: Services = Depends(use_services),
) -> dict[str, Any]:
    """One page of units (neurons, a dictionary's features or random directions) with their best
    descriptors, consistency labels, and the summaries that compare the three."""
    return neuron_page(
        services.runner,
        services.stores,
        basis=basis,
        layer=layer,
        query=q,
        label=label,
        sort=sort,
        limit=limit,
        offset=offset,
    )


@router.get("/neurons/summary", responses=ERRORS)
def neurons_summary(services: Services = Depends(use_services)) -> dict[str, Any]:
    """The latest description run: corpora, generator, neurons against random directions."""
    return neuron_summary(services.runner, services.stores)


@router.get("/neurons/{layer}/{unit}", responses=ERRORS)
def get_neuron(
    layer: int = Path(ge=0, le=256),
    unit: int = Path(ge=0, le=1_000_000),
    services: Services = Depends(use_services),
) -> dict[str, Any]:
    """Descriptors with scores per corpus, exemplars per corpus with token activations, stats, consistency."""
    return neuron_detail(services.runner, services.stores, layer, unit)


@router.get("/analyses/{analysis_id}/neurons", responses=ERRORS)
def analysis_neurons(analysis_id: str, services: Services = Depends(use_services)) -> dict[str, Any]:
    """The neurons most active on a stored analysis's text, relative to their corpus maximum."""
    analysis = services.stores.analyses.get(analysis_id)
    return active_neurons(services.runner, services.stores, analysis)
