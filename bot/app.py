"""The composition root of the web process: `create_app` wires the features to the edge.

Only the composition root (this module, bot/wsgi.py, bot/worker.py, bot/cli/) imports the
feature packages: here the citizen handlers and their search (handlers/), the job that
sends customer-service texts and the consent step of the one-time subscription redirect
(push/). The edge it wires them into (bot/webhook.py, bot/subscribemsg.py) imports none.
Nothing connects at import time; every app gets its own runtime, router and search.
"""

from __future__ import annotations

from flask import Flask, Response, jsonify

from bot.router import Router
from bot.runtime import Runtime, build_runtime
from bot.settings import Settings, load_settings
from bot.store.db import require_current_schema
from bot.subscribemsg import APPLY_REDIRECT
from bot.subscribemsg import bp as subscribemsg_bp
from bot.webhook import Webhook, bp
from cases.h5 import bp as cases_h5_bp
from handlers.routes import build_router
from handlers.search import SearchService
from push.consent import apply_redirect
from push.followups import enqueue_customer_texts


def create_app(settings: Settings | None = None, *, runtime: Runtime | None = None,
               check_schema: bool = True, router: Router | None = None) -> Flask:
    """Build the Flask app: settings, runtime, schema check, search warm-up, routes.

    `router` replaces the citizen handlers (benchmarks use a trivial echo router).
    """
    if runtime is None:
        runtime = build_runtime(settings or load_settings())
    settings = runtime.settings
    if check_schema:
        require_current_schema(runtime.engine)
    app = Flask("qzbot")
    search = SearchService(settings.bot.content_check_seconds)
    with runtime.sessions() as session:  # warm up: the first citizen shouldn't pay for it
        search.index(session, runtime.now())
    app.extensions["qzbot.runtime"] = runtime
    app.extensions["qzbot.webhook"] = Webhook(runtime, router or build_router(settings), search,
                                              send_texts=enqueue_customer_texts)
    app.extensions[APPLY_REDIRECT] = apply_redirect
    app.register_blueprint(bp)
    app.register_blueprint(subscribemsg_bp)
    app.register_blueprint(cases_h5_bp)  # /h5/apply, /h5/message, /h5/consent (issue 10)
    app.add_url_rule("/healthz", "healthz", lambda: healthz(runtime))
    return app


def healthz(runtime: Runtime) -> tuple[Response, int]:
    """Liveness and dependencies: database and redis."""
    status = {"database": "ok", "redis": "ok"}
    try:
        with runtime.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        status["database"] = type(exc).__name__
    try:
        runtime.redis.ping()
    except Exception as exc:  # noqa: BLE001
        status["redis"] = type(exc).__name__
    ok = status["database"] == "ok"
    return jsonify(status), 200 if ok else 503
