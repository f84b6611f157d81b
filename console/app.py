"""`create_console_app`: the staff console (pages) and the JSON API (/api/v1) in one Flask app.

Separate from the citizen webhook app and meant for an internal address
(`qzbot console --host 127.0.0.1 --port 8090`; gunicorn "bot.wsgi:console()" in production).
Security defaults: CSRF on every form (Flask-WTF; the JSON API authenticates by bearer token
instead of cookies and is exempt), session cookie HttpOnly + SameSite=Lax (+ Secure unless
[console] secure_cookies = false), a strict Content-Security-Policy (scripts and styles only
from our own vendored files), no framing, no MIME sniffing, no caching of pages.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import timedelta
from pathlib import Path

from flask import Flask, Response, render_template, request
from flask_login import current_user
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from bot.runtime import Runtime, build_runtime
from bot.settings import Settings, load_settings
from bot.store.db import require_current_schema
from bot.vocab import ROLE_LABELS
from console import auth
from console.api import install as install_api
from console.api.errors import http_error as api_http_error
from console.views import BLUEPRINTS, NAV
from console.views.cases import nav_casework
from console.web import RUNTIME, close_db, cn_time, iso_time

log = logging.getLogger("qzbot.console")
HERE = Path(__file__).resolve().parent
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")
API_PREFIX = "/api/"
HTMX = "vendor/htmx-2.0.11/htmx.min.js"  # pinned htmx major version 2
CHARTJS = "vendor/chartjs-4.6.1/chart.umd.min.js"
csrf = CSRFProtect()


def session_key(secret: str) -> bytes:
    """The console's cookie-signing key, derived from [security] secret_key (never the key
    itself, so a leak of one use does not forge the other)."""
    return hashlib.sha256(b"qzbot-console-session\0" + secret.encode()).digest()


def create_console_app(settings: Settings | None = None, *, runtime: Runtime | None = None,
                       check_schema: bool = True) -> Flask:
    """Build the console app on `runtime` (or one built from `settings` / the config file)."""
    if runtime is None:
        runtime = build_runtime(settings or load_settings())
    settings = runtime.settings
    if check_schema:
        require_current_schema(runtime.engine)
    cfg = settings.console
    app = Flask("qzbot.console", template_folder=str(HERE / "templates"),
                static_folder=str(HERE / "static"), static_url_path="/static")
    app.config.update(
        SECRET_KEY=session_key(settings.security.secret_key),
        SESSION_COOKIE_NAME="qzc_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=cfg.secure_cookies,
        REMEMBER_COOKIE_SECURE=cfg.secure_cookies,
        REMEMBER_COOKIE_HTTPONLY=True,
        PERMANENT_SESSION_LIFETIME=timedelta(minutes=cfg.idle_timeout_minutes),
        MAX_CONTENT_LENGTH=8 * 1024 * 1024,  # content-pack uploads
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session (idle timeout)
        WTF_CSRF_SSL_STRICT=cfg.secure_cookies,
        JSON_AS_ASCII=False,
    )
    app.json.ensure_ascii = False
    app.extensions[RUNTIME] = runtime
    csrf.init_app(app)
    auth.install(app, cfg.idle_timeout_minutes)
    app.teardown_appcontext(close_db)
    for bp in BLUEPRINTS:
        app.register_blueprint(bp)
    install_api(app, csrf)  # /api/v1 + its OpenAPI document (flask-smorest)
    app.jinja_env.globals.update(HTMX=HTMX, CHARTJS=CHARTJS, role_label=role_label)
    # every staff-facing time: {{ t|cn_time }} ("2026-11-27 10:00", Asia/Shanghai) and
    # <time datetime="{{ t|iso_time }}"> for machines (console/web.py)
    app.jinja_env.filters.update(cn_time=cn_time, iso_time=iso_time)
    app.context_processor(lambda: {"console_nav": lambda: _nav(app),
                                   "url_rules": app.view_functions})
    app.after_request(_headers)
    if cfg.trusted_proxies > 0:  # the client's address for login limits and the audit log
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=cfg.trusted_proxies,  # type: ignore[method-assign]
                                x_proto=cfg.trusted_proxies)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(CSRFError, _csrf_error)
    return app


def role_label(role: str) -> str:
    """A role's Chinese name."""
    return ROLE_LABELS.get(role, role)


def _nav(app: Flask) -> list[tuple[str, str]]:
    """The navigation entries the logged-in account may use."""
    if not current_user.is_authenticated:
        return []
    role = current_user.role
    casework = role != "admin" and nav_casework()  # issue 10: accounts with casework roles
    return [(endpoint, label) for endpoint, label, roles in NAV
            if endpoint in app.view_functions and (not roles or role == "admin" or role in roles
                                                    or ("casework" in roles and casework))]


def _headers(resp: Response) -> Response:
    """Security headers on every response; pages and API answers are never cached."""
    resp.headers.setdefault("Content-Security-Policy", CSP)
    resp.headers["X-Frame-Options"] = "DENY"
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "same-origin"
    if not request.path.startswith("/static/"):
        resp.headers["Cache-Control"] = "no-store"
    return resp


def _wants_json() -> bool:
    return request.path.startswith(API_PREFIX)


def _http_error(exc: HTTPException) -> tuple[Response | str, int]:
    """HTML error page for the console, JSON with a stable code for the API."""
    code = exc.code or 500
    if _wants_json():
        return api_http_error(exc), code  # {"error": {"code", "message"}}: stable codes
    return render_template("error.html", code=code, name=exc.name,
                           description=exc.description), code


def _csrf_error(exc: CSRFError) -> tuple[str, int]:
    log.warning("console: form refused, CSRF token missing or invalid (%s %s)",
                request.method, request.path)
    return render_template("error.html", code=400, name="表单已失效",
                           description="表单校验失败（CSRF 令牌缺失或无效），"
                                       "请刷新页面后重试。"), 400


def app_json(body: dict) -> str:
    """JSON text with Chinese kept readable."""
    return json.dumps(body, ensure_ascii=False)
