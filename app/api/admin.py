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
