"""A local stand-in for the WeChat API, for development, tests, demos and benchmarks.

Same paths, parameters and JSON as the platform (see docs/wechat-platform.md) for the
calls qzbot makes, plus a JSON control API under /_sim/ to inject faults, change
recipients and read back every accepted message. Build it with `create_simulator()` and
use it in-process through the Flask test client, serve it from a thread with
`start_in_thread()`, or in the foreground with `serve_simulator()`. Nothing happens at
import time.

Modules: simulator_config (SimConfig, FaultRule), simulator_rules (payload checks),
simulator_tokens (access tokens), simulator_faults (fault rules), simulator_state (the
locked state), simulator_api (one call, framework-free), simulator_control (/_sim/),
simulator_aio (the asyncio server), simulator_server (threads, werkzeug, gunicorn).
"""

from __future__ import annotations

import socket
import time

from flask import Flask, Response, request

from push.simulator_api import WECHAT_APIS, Outcome, begin, finish
from push.simulator_config import FaultRule, SimConfig
from push.simulator_control import control_blueprint
from push.simulator_server import (
    RunningSimulator,
    run_asyncio,
    run_gunicorn,
    run_werkzeug,
    start_in_thread,
)
from push.simulator_state import SimState

__all__ = [
    "WECHAT_APIS", "FaultRule", "RunningSimulator", "SimConfig", "SimState",
    "create_simulator", "serve_simulator", "sim_state", "start_in_thread",
]
SERVERS = ("asyncio", "werkzeug", "gunicorn")


def create_simulator(config: SimConfig | None = None) -> Flask:
    """Build the simulator app; `sim_state(app)` is its SimState."""
    state = SimState(config or SimConfig())
    app = Flask("qzbot.simulator")
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
