"""A local stand-in for the WeChat API, for development, tests, demos and benchmarks.

Same paths, parameters and JSON as the platform (see docs/wechat-platform.md) for the
calls qzbot makes, plus a JSON control API under /_sim/ to inject faults, change
recipients and read back every accepted message. Build it with `create_simulator()` and
use it in-process through the Flask test client, serve it from a thread with
`start_in_thread()`, or in the foreground with `serve_simulator()`. Nothing happens at
import time.

The rule it keeps: this package imports NOTHING of the project (not bot, handlers or
push), so it serves both sides as an independent peer; tests/test_simulator.py walks
its AST to prove it.

Modules: config (SimConfig, FaultRule), rules (payload checks), tokens (access tokens),
faults (fault rules), account (menu, tags), state (the locked state), api (one call,
framework-free), control (/_sim/), aio (the asyncio server), server (threads, werkzeug,
gunicorn), app (the Flask app, `create_simulator`, `serve_simulator`).
"""

from wechatsim.api import WECHAT_APIS
from wechatsim.app import SERVERS, create_simulator, serve_simulator, sim_state
from wechatsim.config import FaultRule, SimConfig
from wechatsim.server import RunningSimulator, start_in_thread
from wechatsim.state import SimState

__all__ = [
    "SERVERS", "WECHAT_APIS", "FaultRule", "RunningSimulator", "SimConfig", "SimState",
    "create_simulator", "serve_simulator", "sim_state", "start_in_thread",
]
