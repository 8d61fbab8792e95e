"""Jobs (long work in the background) and the evaluations they produce."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.security import HTTPAuthorizationCredentials

from app.api.admin import authorize_job, bearer, require_admin
from app.api.deps import get_services
from app.api.responses import NumpyJSONResponse
from app.api.schemas import ADMIN_ERRORS, ERRORS, JobOut, JobRequest
from app.figures.evaluation import evaluation_view
from app.jobs.data_files import server_paths
from app.jobs.manager import JobManager
from app.jobs.registry import JOBS, get_job_kind, parse_params

router = APIRouter(prefix="/api", tags=["jobs and evaluations"])


def get_jobs(request: Request) -> JobManager:
    return get_services(request).jobs


@router.get("/jobs/kinds")
def job_kinds() -> dict[str, Any]:
    """Every job kind with the JSON schema of its params."""
    return {name: kind.Params.model_json_schema() for name, kind in JOBS.items()}


@router.post("/jobs", status_code=202, responses=ADMIN_ERRORS)
def submit_job(
    body: JobRequest,
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
    jobs: JobManager = Depends(get_jobs),
) -> NumpyJSONResponse:
    """Queue a job; poll ``GET /api/jobs/{id}`` for progress. Data fields take an uploaded dataset
    (``dataset:<id>``) or, for admins, a file path on the server."""
    if not request.app.state.settings.open_dataset_jobs:
        require_admin(request, credentials)
    kind = get_job_kind(body.kind)
    authorize_job(request, credentials, kind.admin_only, server_paths(parse_params(body.kind, body.params)))
    return NumpyJSONResponse(jobs.submit(body.kind, body.params).to_json(), status_code=202)


@router.get("/jobs", responses={200: {"model": list[JobOut]}, **ERRORS})
def list_jobs(jobs: JobManager = Depends(get_jobs)) -> list[dict[str, Any]]:
    return [job.to_json() for job in jobs.records.jobs()]


@router.get("/jobs/{job_id}", responses={200: {"model": JobOut}, **ERRORS})
def get_job(job_id: str, jobs: JobManager = Depends(get_jobs)) -> dict[str, Any]:
    return jobs.records.job(job_id).to_json()


@router.post("/jobs/{job_id}/cancel", responses=ADMIN_ERRORS)
def cancel_job(
    job_id: str,
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
    jobs: JobManager = Depends(get_jobs),
) -> dict[str, Any]:
    """Ask a queued or running job to stop; nothing partial is stored."""
    if not request.app.state.settings.open_dataset_jobs:
        require_admin(request, credentials)
    job = jobs.records.job(job_id)
    authorize_job(request, credentials, get_job_kind(job.kind).admin_only, [])
    return jobs.cancel(job_id).to_json()


@router.get("/evaluations", responses=ERRORS)
def list_evaluations(
    kind: Literal["mixing", "degradation", "neurons"] | None = None, jobs: JobManager = Depends(get_jobs)
) -> list[dict[str, Any]]:
    """Stored evaluations, newest first, optionally of one kind."""
    return [evaluation.to_json() for evaluation in jobs.records.evaluations(kind)]


@router.get("/evaluations/{evaluation_id}", responses=ERRORS)
def get_evaluation(evaluation_id: str, jobs: JobManager = Depends(get_jobs)) -> dict[str, Any]:
    return jobs.records.evaluation(evaluation_id).to_json()


@router.get("/evaluations/{evaluation_id}/figure", responses=ERRORS)
def get_evaluation_figure(evaluation_id: str, jobs: JobManager = Depends(get_jobs)) -> dict[str, Any]:
    """Plotly figure and summary table of an evaluation (mixing: rho per layer; degradation: curves)."""
    evaluation = jobs.records.evaluation(evaluation_id)
    return evaluation_view(evaluation.kind, evaluation.summary, evaluation.model_name)
