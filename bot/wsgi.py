"""WSGI entry point for gunicorn: `gunicorn 'bot.wsgi:app'` (settings from QZBOT_CONFIG/env)."""

from __future__ import annotations

import os


def run_gunicorn(config: str | None, host: str, port: int, workers: int) -> None:
    """Serve with gunicorn (gthread workers; the app is built in each worker after fork)."""
    from gunicorn.app.base import BaseApplication

    if config:
        os.environ["QZBOT_CONFIG"] = config

    class _App(BaseApplication):
        def load_config(self):
            for key, value in {"bind": f"{host}:{port}", "workers": workers,
                               "worker_class": "gthread", "threads": 8, "timeout": 30,
                               "accesslog": None}.items():
                self.cfg.set(key, value)

        def load(self):
            from bot import create_app

            return create_app()

    _App().run()


def __getattr__(name: str):
    """`bot.wsgi:app` builds the app on first access (in the gunicorn worker)."""
    if name == "app":
        from bot import create_app

        globals()["app"] = create_app()
        return globals()["app"]
    raise AttributeError(name)
