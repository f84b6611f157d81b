"""What every /api/v1 blueprint shares: authentication before each request, domain errors
rendered as JSON, and the error responses documented in the OpenAPI document."""

from __future__ import annotations

import http
from collections.abc import Callable

from flask_smorest import Blueprint

from bot.errors import QzbotError
from console.api.auth import authenticate
from console.api.errors import domain_error

# never registered: only lends its `alt_response` decorator to `documented`
_DOC = Blueprint("api_doc_helper", __name__)
ALWAYS = (401, 429)


def install_errors(bp: Blueprint) -> None:
    """Authenticate every request of `bp`; its domain errors become JSON errors."""
    bp.before_request(authenticate)
    bp.register_error_handler(QzbotError, domain_error)


def documented(*statuses: int) -> Callable:
    """Document the error answers an endpoint can give (401 and 429 always)."""

    def wrap(view: Callable) -> Callable:
        for status in sorted(set(statuses) | set(ALWAYS), reverse=True):
            view = _DOC.alt_response(status, response=http.HTTPStatus(status).name)(view)
        return view

    return wrap
