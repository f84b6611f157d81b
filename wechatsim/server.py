"""Serving the simulator: in the foreground (asyncio, werkzeug, gunicorn) or from a thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask
from werkzeug.serving import WSGIRequestHandler, make_server

from wechatsim.aio import run_asyncio, serve_forever

__all__ = ["RunningSimulator", "run_asyncio", "run_gunicorn", "run_werkzeug",
           "start_in_thread"]


class _QuietHandler(WSGIRequestHandler):
    """No access log line per request: it costs throughput and floods test output."""

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@dataclass
class RunningSimulator:
    """A simulator served from a background thread; `stop()` shuts it down."""

    url: str
    port: int
    app: Flask
    _stop: Callable[[], None]

    def stop(self) -> None:
        """Stop serving, close the listening socket and the open connections."""
        self._stop()


def start_in_thread(app: Flask, host: str = "127.0.0.1", port: int = 0, *,
                    server: str = "asyncio") -> RunningSimulator:
    """Serve `app` from a daemon thread (port 0: any free port) with asyncio or werkzeug."""
    if server == "werkzeug":
        wz = make_server(host, port, app, threaded=True, request_handler=_QuietHandler)
        thread = threading.Thread(target=wz.serve_forever, kwargs={"poll_interval": 0.05},
                                  name=f"wechat-sim:{wz.port}", daemon=True)
        thread.start()

        def stop_werkzeug() -> None:
            wz.shutdown()
            wz.server_close()
            thread.join(timeout=5)

        return RunningSimulator(f"http://{host}:{wz.port}", wz.port, app, stop_werkzeug)
    if server != "asyncio":
        raise ValueError(f"server must be 'asyncio' or 'werkzeug', not {server!r}")
    loop = asyncio.new_event_loop()
    stop_event = asyncio.Event()
    bound: list[int] = []
    ready = threading.Event()
    failure: list[BaseException] = []

    def on_ready(p: int) -> None:
        bound.append(p)
        ready.set()

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(serve_forever(app, host, port, on_ready, stop_event))
        except BaseException as exc:  # reported to the starting thread below
            failure.append(exc)
            ready.set()
        finally:
            loop.close()

    thread = threading.Thread(target=run, name="wechat-sim:asyncio", daemon=True)
    thread.start()
    ready.wait(timeout=10)
    if failure or not bound:
        raise RuntimeError(f"simulator did not start: {failure[0] if failure else 'timeout'}")

    def stop_asyncio() -> None:
        if not loop.is_closed():
            loop.call_soon_threadsafe(stop_event.set)
        thread.join(timeout=5)

    return RunningSimulator(f"http://{host}:{bound[0]}", bound[0], app, stop_asyncio)


def run_werkzeug(app: Flask, host: str, port: int) -> None:
    """Serve in the foreground with werkzeug's threaded server (a thread per connection)."""
    server = make_server(host, port, app, threaded=True, request_handler=_QuietHandler)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def run_gunicorn(app: Flask, host: str, port: int, *, threads: int = 64) -> None:
    """Serve in the foreground with one gunicorn gthread worker (one state for all)."""
    from gunicorn.app.base import BaseApplication  # noqa: PLC0415 - only this mode needs it; gunicorn needs fcntl (no Windows)

    bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    options = {
        "bind": bind,
        "workers": 1,  # the state lives in one process
        "worker_class": "gthread",
        "threads": threads,
        "worker_connections": max(1000, threads * 4),
        "keepalive": 75,
        "timeout": 120,
        "graceful_timeout": 5,
        "accesslog": None,
        "loglevel": "warning",
    }

    class _App(BaseApplication):
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Flask:
            return app

    _App().run()
