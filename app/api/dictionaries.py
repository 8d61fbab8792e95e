"""Feature dictionaries (TopK sparse autoencoders): list them, read one, download its weights (training runs
as a ``train_dictionary`` job); one feature's evidence and the features most active on an analysis (their
index and descriptions are built by the ``index_features`` job)."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from fastapi import APIRouter, Depends, Path, Query, Response

from app.api.deps import use_services
from app.api.schemas import ERRORS
from app.services.container import Services
from app.services.feature_views import active_features, feature_detail
from app.services.unit_bases import browsable_bases

router = APIRouter(prefix="/api", tags=["features"])


@router.get("/dictionaries", responses=ERRORS)
def list_dictionaries(services: Services = Depends(use_services)) -> list[dict[str, Any]]:
    """Finished dictionaries of the loaded weights, newest first (a training in progress is not listed)."""
    revision = services.runner.revision
    return services.stores.dictionaries.descriptions(revision)


@router.get("/dictionaries/{dictionary_id}", responses=ERRORS)
def get_dictionary(dictionary_id: str, services: Services = Depends(use_services)) -> dict[str, Any]:
    """One dictionary: layer, site, width, k, params, and its held-out metrics (FVU, L0, dead latents, the
    cost of splicing its reconstruction into the model)."""
    return services.stores.dictionaries.find(dictionary_id, services.runner.revision).describe()


@router.get(
    "/dictionaries/{dictionary_id}/weights.npz",
    responses={**ERRORS, 200: {"content": {"application/octet-stream": {}}}},
    response_class=Response,
)
def get_dictionary_weights(dictionary_id: str, services: Services = Depends(use_services)) -> Response:
    """The autoencoder as a numpy ``.npz`` archive, to recompute its numbers outside bertscope: ``encoder``
    [d, latent], ``encoder_bias`` [latent], ``decoder`` [latent, d] (unit rows), ``pre_bias`` [d], ``scale``
    and ``k``. With x' = x / scale: z = ReLU(TopK_k((x' - pre_bias) @ encoder + encoder_bias)), and the
    reconstruction is scale * (z @ decoder + pre_bias)."""
    dictionary = services.stores.dictionaries.find(dictionary_id, services.runner.revision)
    buffer = io.BytesIO()
    np.savez(buffer, **dictionary.arrays(), k=np.array(dictionary.k))
    headers = {"Content-Disposition": f'attachment; filename="bertscope-dictionary-{dictionary.id}.npz"'}
    return Response(buffer.getvalue(), media_type="application/octet-stream", headers=headers)


@router.get("/features/bases", responses=ERRORS)
def list_bases(services: Services = Depends(use_services)) -> list[dict[str, str]]:
    """The bases the neuron browser can list (``basis`` of ``GET /api/neurons``): the neurons, each
    dictionary's features, and the random directions described beside either."""
    return browsable_bases(services.stores, services.runner.revision)


@router.get("/features/{dictionary_id}/{feature}", responses=ERRORS)
def get_feature(
    dictionary_id: str = Path(min_length=1, max_length=64),
    feature: int = Path(ge=0, le=10_000_000),
    services: Services = Depends(use_services),
) -> dict[str, Any]:
    """One feature as the neuron page shows a neuron (descriptors, exemplars with token activations, stats
    per corpus, consistency), plus its decoder direction's nearest neurons, token directions and probe
    effect."""
    return feature_detail(services.runner, services.stores, dictionary_id, feature)


@router.get("/analyses/{analysis_id}/features", responses=ERRORS)
def analysis_features(
    analysis_id: str,
    dictionary: str | None = Query(None, min_length=1, max_length=64, description="Dictionary id."),
    services: Services = Depends(use_services),
) -> dict[str, Any]:
    """The features most active on a stored analysis's text, relative to their corpus maximum (default
    dictionary: the newest with a finished feature index)."""
    analysis = services.stores.analyses.get(analysis_id)
    return active_features(services.runner, services.stores, analysis, dictionary)
