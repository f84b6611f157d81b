"""The simulator's Flask app and how to serve it: `create_simulator`, `serve_simulator`.

`/cgi-bin/<api>` runs one WeChat API call through `wechatsim.api` (framework-free);
a dropped-connection fault closes the socket here. Nothing happens at import time.
"""

from __future__ import annotations

import socket
import time

from flask import Flask, Response, request

from wechatsim.api import Outcome, begin, finish
from wechatsim.config import SimConfig
from wechatsim.control import control_blueprint
from wechatsim.server import run_asyncio, run_gunicorn, run_werkzeug
from wechatsim.state import SimState

SERVERS = ("asyncio", "werkzeug", "gunicorn")


def create_simulator(config: SimConfig | None = None) -> Flask:
    """Build the simulator app; `sim_state(app)` is its SimState."""
    state = SimState(config or SimConfig())
    app = Flask("qzbot.simulator")
    # the control API is read by people too (`curl …/_sim/messages`): Chinese as itself,
    # indented, and the charset said, not \uXXXX escapes
    app.json.ensure_ascii = False  # type: ignore[attr-defined]  # DefaultJSONProvider
    app.json.compact = False  # type: ignore[attr-defined]
    app.json.mimetype = "application/json; charset=utf-8"  # type: ignore[attr-defined]
    app.extensions["wechat_sim"] = state
    app.register_blueprint(control_blueprint(state))

    @app.route("/cgi-bin/<path:api>", methods=["GET", "POST"])
    def cgi(api: str) -> Response:
        pending = begin(state, api, request.method, request.args, request.get_data())
        if isinstance(pending, Outcome):
            return _response(pending)
        if pending.plan.latency_s > 0:
            time.sleep(pending.plan.latency_s)  # outside the lock: calls overlap
        outcome = finish(state, pending)
        if outcome.hang_s > 0:
            time.sleep(outcome.hang_s)
        return _response(outcome)

    return app


def sim_state(app: Flask) -> SimState:
    """The SimState behind a simulator app."""
    return app.extensions["wechat_sim"]


def serve_simulator(host: str, port: int, config: SimConfig | None = None, *,
                    server: str = "asyncio", threads: int = 64) -> None:
    """Serve the simulator until interrupted (blocks): `qzbot simulator --port N`.

    host, port: where to listen; keep 127.0.0.1 unless you mean to expose it.
    config: a SimConfig, e.g. SimConfig(latency_ms=20) for `--latency-ms 20`.
    server: "asyncio" (default: one event loop, latency awaited, the fastest measured,
    see bench/simulator_load.py), "werkzeug" (a thread per connection) or "gunicorn"
    (one gthread worker with `threads` threads; main thread only). asyncio and
    werkzeug may also be run from a daemon thread, e.g. for an embedded demo.
    """
    app = create_simulator(config)
    if server == "asyncio":
        run_asyncio(app, host, port)
    elif server == "werkzeug":
        run_werkzeug(app, host, port)
    elif server == "gunicorn":
        run_gunicorn(app, host, port, threads=threads)
    else:
        raise ValueError(f"server must be one of {SERVERS}, not {server!r}")


def _response(outcome: Outcome) -> Response:
    if outcome.drop:
        # Close the connection under the client's feet; in-process there is no socket
        # and the client gets an empty body instead.
        sock = request.environ.get("werkzeug.socket") or request.environ.get("gunicorn.socket")
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
    return Response(outcome.body, status=outcome.status, content_type=outcome.content_type)
