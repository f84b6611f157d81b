"""qzbot: the WeChat official-account service of 泉州市交通运输局. Nothing happens at import."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from bot.router import Router
    from bot.runtime import Runtime
    from bot.settings import Settings


def create_app(settings: Settings | None = None, *, runtime: Runtime | None = None,
               check_schema: bool = True, router: Router | None = None) -> Flask:
    """Build the Flask app: settings, runtime, schema check, search warm-up, routes.

    `router` replaces the citizen handlers (benchmarks use a trivial echo router).
    """
    from flask import Flask, jsonify

    from bot.runtime import build_runtime
    from bot.settings import load_settings
    from bot.store.db import require_current_schema
    from bot.subscribemsg import bp as subscribemsg_bp
    from bot.webhook import Webhook, bp
    from handlers import build_router
    from handlers.index import SearchService

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
    app.extensions["qzbot.webhook"] = Webhook(runtime, router or build_router(settings), search)
    app.register_blueprint(bp)
    app.register_blueprint(subscribemsg_bp)

    @app.get("/healthz")
    def healthz():
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

    return app
