"""The simulator's JSON control API under /_sim/: faults, recipients, records, stats."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from wechatsim.config import FaultRule
from wechatsim.state import SimState


class _BadRequest(ValueError):
    """A control request with a bad body; answered with 400 and the reason."""


def _body() -> dict[str, Any]:
    data = request.get_json(force=True, silent=True) if request.get_data() else {}
    if not isinstance(data, dict):
        raise _BadRequest("body must be a JSON object")
    return data


def control_blueprint(state: SimState) -> Blueprint:
    """Routes that tests, demos and benchmarks use to steer and inspect the simulator."""
    bp = Blueprint("wechat_sim_control", __name__, url_prefix="/_sim")

    @bp.errorhandler(_BadRequest)
    def bad_request(exc: _BadRequest) -> tuple[Response, int]:
        return jsonify({"error": str(exc)}), 400

    @bp.get("/health")
    def health() -> Response:
        return jsonify({"ok": True})

    @bp.get("/messages")
    def messages() -> Response:
        args = request.args
        try:
            since = float(args["since"]) if args.get("since") else None
            limit = int(args["limit"]) if args.get("limit") else None
        except ValueError as exc:
            raise _BadRequest("since must be a number, limit an integer") from exc
        found = state.messages(args.get("touser") or None, args.get("api") or None,
                               since, limit)
        return jsonify({"count": len(found), "messages": found})

    @bp.get("/stats")
    def stats() -> Response:
        return jsonify(state.stats())

    @bp.get("/faults")
    def list_faults() -> Response:
        return jsonify(state.describe_faults())

    @bp.post("/faults")
    def set_faults() -> Response:
        """{"rules": [FaultRule...], "replace": false, "latency_ms": optional base latency}."""
        data = _body()
        raw = data.get("rules", [])
        if not isinstance(raw, list):
            raise _BadRequest("rules must be a list")
        try:
            rules = [FaultRule.from_dict(r) for r in raw]
        except (TypeError, ValueError) as exc:
            raise _BadRequest(str(exc)) from exc
        latency = data.get("latency_ms")
        if latency is not None and not isinstance(latency, int | float):
            raise _BadRequest("latency_ms must be a number")
        active = state.install_faults(rules, replace=bool(data.get("replace")),
                                      latency_ms=latency)
        return jsonify({"rules": active})

    @bp.post("/reset")
    def reset() -> Response:
        state.reset()
        return jsonify({"ok": True})

    @bp.post("/invalidate_token")
    def invalidate_token() -> Response:
        """{"expired": false}: the current token answers 40001 (or 42001) from now on."""
        token = state.invalidate_token(expired=bool(_body().get("expired")))
        return jsonify({"invalidated": token})

    @bp.post("/followers")
    def followers() -> Response:
        """{"followers": [...] | null, "refused": [...], "add": false}."""
        data = _body()
        for key in ("followers", "refused"):
            if data.get(key) is not None and not isinstance(data[key], list):
                raise _BadRequest(f"{key} must be a list")
        result = state.set_recipients(data.get("followers", ...), data.get("refused", ...),
                                      add=bool(data.get("add")))
        return jsonify(result)

    @bp.post("/interactions")
    def interactions() -> Response:
        """{"openid": ..., "kind": "message" | "event"}: opens a customer-service window."""
        data = _body()
        openid = data.get("openid")
        if not isinstance(openid, str) or not openid:
            raise _BadRequest("openid is required")
        try:
            state.interact(openid, str(data.get("kind", "message")))
        except ValueError as exc:
            raise _BadRequest(str(exc)) from exc
        return jsonify({"ok": True})

    return bp
