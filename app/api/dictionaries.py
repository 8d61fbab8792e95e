"""Feature dictionaries (TopK sparse autoencoders): list them, read one, download its weights (training runs
as a ``train_dictionary`` job)."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from fastapi import APIRouter, Depends, Response

from app.api.deps import use_services
from app.api.schemas import ERRORS
from app.services.container import Services

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
