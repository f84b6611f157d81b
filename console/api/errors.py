"""The JSON API's errors: one shape, stable codes, never HTML and never a stack trace.

Every error answer is `{"error": {"code": "<stable_code>", "message": "...", "details": {}}}`.
Clients branch on `code`, which never changes once published; `message` is for people and may
change. Codes: bad_request, unauthorized, forbidden, insufficient_scope, csrf_failed,
not_found, method_not_allowed, conflict, invalid_transition, validation_error,
payload_too_large, unsupported_media_type, rate_limited, internal_error, unavailable.
Domain errors (bot/errors.py) map to them here, so an endpoint just lets them rise.
"""

from __future__ import annotations

import logging
from typing import Any

import marshmallow as ma
from flask import Response, json
from werkzeug.exceptions import HTTPException

from bot.errors import InvalidTransition, NotFound, PermissionDenied, QzbotError

log = logging.getLogger("qzbot.console.api")

# HTTP status -> the code used when nothing more specific is known
BY_STATUS = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
             405: "method_not_allowed", 409: "conflict", 413: "payload_too_large",
             415: "unsupported_media_type", 422: "validation_error", 429: "rate_limited",
             500: "internal_error", 503: "unavailable"}
# Messages for statuses whose werkzeug description is English or could carry details
MESSAGES = {401: "需要登录或有效的 API 令牌（Authorization: Bearer qzt_...）。",
            403: "当前账号无权执行此操作。", 404: "没有找到该对象。",
            405: "该地址不支持此请求方法。", 413: "请求内容过大。",
            415: "请求内容类型不受支持（请使用 application/json）。",
            422: "请求参数校验失败。", 429: "请求过于频繁，请稍后再试。",
            500: "服务器内部错误，已记录。", 503: "服务暂不可用，请稍后再试。"}


class ApiError(HTTPException):
    """An HTTP error with a stable API code (raise it; the app's error handler renders it)."""

    def __init__(self, status: int, code: str, message: str,
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(description=message)
        self.code = status
        self.api_code = code
        self.details = details or {}


def body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """The error document."""
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    return {"error": error}


def respond(status: int, code: str, message: str,
            details: dict[str, Any] | None = None) -> Response:
    """A JSON error response."""
    return Response(json.dumps(body(code, message, details)), status=status,
                    mimetype="application/json")


def http_error(exc: HTTPException) -> Response:
    """Any HTTP error under /api/ as JSON (werkzeug's, flask-smorest's 422, ours)."""
    status = exc.code or 500
    if isinstance(exc, ApiError):
        return respond(status, exc.api_code, exc.description or "", exc.details)
    code = BY_STATUS.get(status, "error")
    details: dict[str, Any] = {}
    data = getattr(exc, "data", None)  # webargs / flask-smorest: validation messages
    if status == 422 and isinstance(data, dict) and data.get("messages"):
        details["fields"] = data["messages"]
    message = MESSAGES.get(status) or exc.description or exc.name
    resp = respond(status, code, message, details)
    for name, value in exc.get_headers():  # e.g. 405's Allow
        if name.lower() not in ("content-type", "content-length"):
            resp.headers[name] = value
    return resp


def domain_error(exc: QzbotError) -> Response:
    """A domain error raised by a service function, as JSON with its stable code."""
    if isinstance(exc, NotFound):
        return respond(404, "not_found", str(exc))
    if isinstance(exc, PermissionDenied):
        return respond(403, "forbidden", str(exc))
    if isinstance(exc, InvalidTransition):
        return respond(409, "invalid_transition", str(exc))
    problems = getattr(exc, "problems", None)
    if problems is not None:
        return respond(422, "validation_error", "; ".join(map(str, problems)) or str(exc),
                       {"problems": [str(p) for p in problems]})
    log.warning("api: %s refused: %s", type(exc).__name__, exc)
    return respond(400, "bad_request", str(exc))


class ErrorDetail(ma.Schema):
    code = ma.fields.String(required=True, metadata={
        "description": "stable machine-readable code: " + ", ".join(sorted(
            set(BY_STATUS.values()) | {"insufficient_scope", "csrf_failed",
                                       "invalid_transition"}))})
    message = ma.fields.String(required=True, metadata={"description": "for people (zh-CN)"})
    details = ma.fields.Dict(metadata={"description": "field errors or problems, when any"})


class ErrorSchema(ma.Schema):
    """The error document (documentation only: errors are built by `body`)."""

    error = ma.fields.Nested(ErrorDetail, required=True)
