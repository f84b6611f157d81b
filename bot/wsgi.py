"""WSGI entry point for gunicorn: `gunicorn 'bot.wsgi:app'` (settings from QZBOT_CONFIG/env).

Like `qzbot serve`, it refuses published secrets (bot.secrets_check), logs with offset-
stamped times, and its access log never shows the openid that WeChat appends to the
callback URL (bot.logs.access_log_safe).
"""

from __future__ import annotations

import logging
import os

from flask import Flask
from gunicorn.app.base import BaseApplication

from bot.app import create_app
from bot.logs import access_log_safe, setup_logging
from bot.secrets_check import refuse_published_secrets
from bot.settings import load_settings


def build_app(check_secrets: bool = True) -> Flask:
    """The production app: settings checked, logging set up, access-log-safe.

    check_secrets=False: `qzbot serve` already decided (it knows whether --demo was given).
    """
    settings = load_settings()
    if check_secrets:
        refuse_published_secrets(settings)
    setup_logging(logging.WARNING)
    logging.getLogger("qzbot").setLevel(settings.log.level.upper())
    app = create_app(settings)
    app.wsgi_app = access_log_safe(app.wsgi_app)  # type: ignore[method-assign]
    return app


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


def __getattr__(name: str):
    """`bot.wsgi:app` builds the app on first access (in the gunicorn worker)."""
    if name == "app":
        globals()["app"] = build_app()
        return globals()["app"]
    raise AttributeError(name)
