"""WSGI entry point for gunicorn: `gunicorn 'bot.wsgi:app'` (settings from QZBOT_CONFIG/env);
the staff console: `gunicorn 'bot.wsgi:console()'` on an internal address.

Like `qzbot serve`, it refuses published secrets (bot.secrets_check), logs with offset-
stamped times, and its access log never shows the openid that WeChat appends to the
callback URL (bot.logs.access_log_safe).

Once the app is built, its objects (modules, the search snapshot and index, SQLAlchemy's
mappers) are moved out of the garbage collector's reach (`settle_heap`): they live as long
as the worker, and without it every full collection walks them all again, a cost paid by
requests (issue 8 item 7: echo 0.70x -> 0.85x of WeRoBot in an A/B). The app is built in
each gunicorn worker after the fork, so the freeze happens there too.
"""

from __future__ import annotations

import gc
import logging
import os

from flask import Flask
from gunicorn.app.base import BaseApplication

from bot.app import create_app
from bot.logs import access_log_safe, setup_logging
from bot.router import Router
from bot.secrets_check import refuse_published_secrets
from bot.settings import load_settings


def build_app(check_secrets: bool = True, *, router: Router | None = None) -> Flask:
    """The production app: settings checked, logging set up, access-log-safe, heap settled.

    check_secrets=False: `qzbot serve` already decided (it knows whether --demo was given).
    `router` replaces the citizen handlers (bench/webhook_apps.py's echo bot).
    """
    settings = load_settings()
    if check_secrets:
        refuse_published_secrets(settings)
    setup_logging(logging.WARNING)
    logging.getLogger("qzbot").setLevel(settings.log.level.upper())
    app = create_app(settings, router=router)
    app.wsgi_app = access_log_safe(app.wsgi_app)  # type: ignore[method-assign]
    settle_heap()
    return app


def settle_heap() -> None:
    """Collect once, then freeze what survives: the app's long-lived objects are left out
    of every later collection (gc.freeze; call it after the app is built, in the worker)."""
    gc.collect()
    gc.freeze()


def run_gunicorn(config: str | None, host: str, port: int, workers: int) -> None:
    """Serve with gunicorn (gthread workers; the app is built in each worker after fork)."""
    if config:
        os.environ["QZBOT_CONFIG"] = config

    class _App(BaseApplication):
        def load_config(self):
            for key, value in {"bind": f"{host}:{port}", "workers": workers,
                               "worker_class": "gthread", "threads": 8, "timeout": 30,
                               "accesslog": None}.items():
                self.cfg.set(key, value)

        def load(self):
            return build_app(check_secrets=False)

    _App().run()


def console() -> Flask:
    """gunicorn "bot.wsgi:console()": the staff web console and JSON API (issue 9), served on
    its own internal address. Settings from QZBOT_CONFIG/env; published secrets refused (the
    secret key signs its sessions and seals the TOTP secrets)."""
    from console import create_console_app  # noqa: PLC0415 - only console workers load it

    settings = load_settings()
    refuse_published_secrets(settings)
    setup_logging(logging.WARNING)
    logging.getLogger("qzbot").setLevel(settings.log.level.upper())
    return create_console_app(settings)


def __getattr__(name: str):
    """`bot.wsgi:app` builds the app on first access (in the gunicorn worker)."""
    if name == "app":
        globals()["app"] = build_app()
        return globals()["app"]
    raise AttributeError(name)
