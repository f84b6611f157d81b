"""The simulated WeChat API calls, free of any web framework: begin -> (sleep) -> finish.

Both front ends use it: the Flask app (test client, werkzeug) sleeps in a thread, the
asyncio server awaits. `begin` parses and rolls the faults, the caller waits out the
latency, `finish` applies the call and the fault and says how to answer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from wechatsim.faults import Plan
from wechatsim.rules import Problem
from wechatsim.state import SimState

# API name (path below /cgi-bin/) -> HTTP method the platform uses for it.
WECHAT_APIS = {
    "token": "GET",
    "stable_token": "POST",
    "message/custom/send": "POST",
    "message/template/send": "POST",
    "message/subscribe/bizsend": "POST",
    "message/template/subscribe": "POST",
    "menu/create": "POST",
    "menu/get": "GET",
    "menu/delete": "GET",
    "tags/create": "POST",
    "tags/get": "GET",
    "tags/members/batchtagging": "POST",
}
API_PREFIX = "/cgi-bin/"
GARBAGE_BODY = (b"<html><head><title>502 Bad Gateway</title></head><body>"
                b"<center>stgw</center>\x00\x9f</body></html>")


@dataclass
class Outcome:
    """How to answer: a body, after sleeping `hang_s`; or drop the connection."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    hang_s: float = 0.0
    drop: bool = False


@dataclass
class Pending:
    """A parsed call whose faults are decided; the caller sleeps `plan.latency_s` next."""

    api: str
    args: Mapping[str, str]
    payload: dict[str, Any] | None
    problem: Problem
    plan: Plan


def json_outcome(result: Mapping[str, Any], status: int = 200) -> Outcome:
    """A JSON answer, UTF-8 as the platform sends it (no \\u escapes)."""
    body = json.dumps(result, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Outcome(status=status, body=body)


def parse_body(raw: bytes) -> tuple[dict[str, Any] | None, Problem]:
    """JSON object or the platform's errcode: 44002 empty, 47001 not JSON."""
    if not raw.strip():
        return None, (44002, "empty post data")
    try:
        payload = json.loads(raw)
    except ValueError:
        return None, (47001, "data format error")
    if not isinstance(payload, dict):
        return None, (47001, "data format error")
    return payload, None


def begin(state: SimState, api: str, method: str, args: Mapping[str, str],
          raw_body: bytes) -> Pending | Outcome:
    """Parse the call and roll the faults; an Outcome means answer at once (404)."""
    if WECHAT_APIS.get(api) != method:
        return Outcome(status=404, body=b"404 page not found", content_type="text/plain")
    payload, problem = parse_body(raw_body) if method == "POST" else (None, None)
    touser = payload.get("touser") if payload is not None else None
    plan = state.plan(api, touser if isinstance(touser, str) else None)
    return Pending(api, args, payload, problem, plan)


def finish(state: SimState, call: Pending) -> Outcome:
    """Apply the call to the state (unless a fault strikes first) and shape the answer."""
    fault = call.plan.fault
    if fault is not None and not fault.after_accept:
        state.count(call.api, str(fault.errcode) if fault.kind == "errcode" else fault.kind)
        return _fault_outcome(fault.kind, fault.errcode, fault.errmsg, fault.hang_s, None)
    if call.api == "token":
        result = state.get_token(call.args)
    elif call.api == "stable_token":
        result = state.stable_token(call.payload, call.problem)
    else:
        result = state.call(call.api, call.args.get("access_token"), call.payload,
                            call.problem)
    if fault is not None:
        return _fault_outcome(fault.kind, fault.errcode, fault.errmsg, fault.hang_s, result)
    return json_outcome(result)


def _fault_outcome(kind: str, errcode: int, errmsg: str, hang_s: float,
                   result: dict[str, Any] | None) -> Outcome:
    if kind == "errcode":
        return json_outcome({"errcode": errcode, "errmsg": errmsg})
    if kind == "hang":  # answer only after the client's read timeout has passed
        out = json_outcome(result or {"errcode": -1, "errmsg": "system error"})
        out.hang_s = hang_s
        return out
    if kind == "garbage":
        return Outcome(status=200, body=GARBAGE_BODY, content_type="text/html")
    if kind == "http500":
        return Outcome(status=500, body=b"<html>500 Internal Server Error</html>",
                       content_type="text/html")
    return Outcome(drop=True)
