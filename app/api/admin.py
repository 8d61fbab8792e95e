"""Admin operations (starting and cancelling jobs): a bearer token from settings, or loopback-only use.

With ``BERTSCOPE_ADMIN_TOKEN`` set, admin routes need ``Authorization: Bearer <token>``. Without it they are
open only when the server listens on a loopback address (one person on their own machine); a shared server
(``--host 0.0.0.0``, as in Docker) refuses them until a token is configured.
"""

from __future__ import annotations

import secrets
from typing import Literal

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.errors import BertscopeError
from app.settings import Settings

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
AdminMode = Literal["open", "token", "disabled"]

bearer = HTTPBearer(auto_error=False, description="The admin token (setting BERTSCOPE_ADMIN_TOKEN).")


class AdminTokenRequired(BertscopeError):
    """An admin route was called without the token."""

    code = "admin_token_required"
    status = 401


class AdminForbidden(BertscopeError):
    """Wrong token, or admin operations are disabled on this server."""

    code = "admin_forbidden"
    status = 403


def admin_mode(settings: Settings) -> AdminMode:
    """How this server guards admin operations."""
    if settings.admin_token is not None and settings.admin_token.get_secret_value():
        return "token"
    return "open" if settings.host in LOOPBACK_HOSTS else "disabled"


def require_admin(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
) -> None:
    """Dependency of every admin route."""
    settings: Settings = request.app.state.settings
    mode = admin_mode(settings)
    if mode == "open":
        if request.url.hostname not in LOOPBACK_HOSTS:  # e.g. DNS rebinding: a foreign name for 127.0.0.1
            raise AdminForbidden(
                f"Admin operations without a token are accepted only as http://localhost or 127.0.0.1, not "
                f"{request.url.hostname!r}; set BERTSCOPE_ADMIN_TOKEN to allow them under another name."
            )
        return
    if mode == "disabled":
        raise AdminForbidden(
            "Admin operations (starting or cancelling jobs) are disabled on this shared server: "
            "set BERTSCOPE_ADMIN_TOKEN and send it as 'Authorization: Bearer <token>'."
        )
    if credentials is None:
        raise AdminTokenRequired(
            "This is an admin operation: send the admin token as 'Authorization: Bearer <token>' "
            "(on the pages, type it in the admin token field at the top)."
        )
    expected = settings.admin_token.get_secret_value().encode()
    if not secrets.compare_digest(credentials.credentials.encode(), expected):
        raise AdminForbidden("The admin token is wrong.")


def is_admin(request: Request, credentials: HTTPAuthorizationCredentials | None) -> bool:
    """Whether this request passes :func:`require_admin`."""
    try:
        require_admin(request, credentials)
    except (AdminTokenRequired, AdminForbidden):
        return False
    return True


def require_uploader(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
) -> None:
    """Dependency of the dataset routes that change data (upload, delete): admins, or anyone when the
    server opens dataset jobs to everyone (setting ``open_dataset_jobs``)."""
    if not request.app.state.settings.open_dataset_jobs:
        require_admin(request, credentials)


def authorize_job(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None,
    admin_only: bool,
    server_paths: list[str],
) -> None:
    """Admins may start or cancel any job. With ``open_dataset_jobs``, anyone may start or cancel a job that
    is not admin-only and reads only uploaded datasets (never a file path on the server)."""
    if is_admin(request, credentials):
        return
    if not request.app.state.settings.open_dataset_jobs or admin_only:
        require_admin(request, credentials)  # raises the admin error that applies
    if server_paths:
        raise AdminForbidden(
            f"Reading files on the server ({', '.join('params.' + path for path in server_paths)}) needs the "
            "admin token; upload the file from the page (or POST /api/datasets) and pick the dataset instead."
        )
