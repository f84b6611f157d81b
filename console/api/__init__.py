"""The JSON API under /api/v1 (issue 9 item 8), with an OpenAPI 3.0.3 document generated from
the code (flask-smorest + marshmallow) at GET /api/v1/openapi.json.

`install(app, csrf)` (called by create_console_app) registers the API blueprints, exempts
them from the form CSRF check (bearer requests carry no cookie authority; cookie requests are
checked in console/api/auth.py through the X-CSRFToken header instead), and documents the
bearer scheme. Errors are JSON with stable codes (console/api/errors.py). Every endpoint
calls a service function (push/actions.py, ...); there is no SQL here. No Swagger UI is
served (it would come from a CDN): read the JSON document, or load it in any local viewer.
"""

from __future__ import annotations

from flask import Flask
from flask_smorest import Api
from flask_wtf.csrf import CSRFProtect

from console.api import accounts, audit, campaigns, cases, questions, records
from console.api.errors import ErrorSchema

PREFIX = "/api/v1"
BLUEPRINTS = [campaigns.bp, records.bp, audit.bp, questions.bp, accounts.bp,
              cases.bp]  # casework (issue 10)


class QzApi(Api):
    """flask-smorest's Api with our error document; the app's HTTPException handler renders
    errors (HTML for pages, JSON under /api/), so the Api registers none of its own."""

    ERROR_SCHEMA = ErrorSchema

    def _register_error_handlers(self) -> None:
        return None


def install(app: Flask, csrf: CSRFProtect) -> QzApi:
    """Mount /api/v1 and its OpenAPI document on the console app."""
    app.config.update(
        API_TITLE="泉州交通运输 管理后台 API",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX=PREFIX,
        OPENAPI_JSON_PATH="openapi.json",
        API_SPEC_OPTIONS={
            "info": {"description": (
                "员工后台的 JSON API。认证：`Authorization: Bearer qzt_...`（在 /account/tokens "
                "新建令牌；GET 需要 read 权限，其余需要 write），或控制台会话（非 GET 需带 "
                "X-CSRFToken 头）。角色权限与页面相同。错误统一为 "
                "{\"error\": {\"code\", \"message\", \"details\"}}，code 稳定不变。")},
            "security": [{"bearer": []}, {"session": []}],
        },
    )
    api = QzApi(app)
    api.spec.components.security_scheme("bearer", {
        "type": "http", "scheme": "bearer", "bearerFormat": "qzt_ token",
        "description": "a per-account API token (scopes read / write)"})
    api.spec.components.security_scheme("session", {
        "type": "apiKey", "in": "cookie", "name": "qzc_session",
        "description": "the console's session; non-GET requests need X-CSRFToken"})
    for bp in BLUEPRINTS:
        api.register_blueprint(bp)
        csrf.exempt(bp)
    return api
