"""Console sessions: Flask-Login identity, the session epoch, the idle timeout.

A session names its account as "<staff id>:<session_epoch>". Resetting a password, disabling
an account or changing its role bumps `Staff.session_epoch`, so every older session stops at
its next request. A session idle longer than [console] idle_timeout_minutes ends too.
Login, TOTP and lockout live in console/views/auth.py; this module only recognises sessions
(and sends a browser that is not logged in to the login page instead of a bare 401).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from flask import Flask, Response, jsonify, redirect, request, session, url_for
from flask_login import LoginManager, UserMixin, logout_user
from werkzeug.exceptions import Unauthorized

from bot.store.models import Staff
from console.web import db

SEEN = "_qz_seen"  # last request time of this session (epoch seconds)


@dataclass
class ConsoleUser(UserMixin):
    """The logged-in account as Flask-Login sees it (no ORM object outlives a request)."""

    staff_id: int
    name: str
    role: str
    epoch: int

    def get_id(self) -> str:
        return f"{self.staff_id}:{self.epoch}"

    @classmethod
    def of(cls, staff: Staff) -> ConsoleUser:
        return cls(staff.id, staff.name, staff.role, staff.session_epoch or 0)


def install(app: Flask, idle_minutes: int) -> LoginManager:
    """Wire Flask-Login and the idle timeout into `app`."""
    manager = LoginManager(app)
    manager.login_view = "auth.login"
    manager.login_message = "请先登录。"
    manager.session_protection = "strong"

    @manager.user_loader
    def load(user_id: str) -> ConsoleUser | None:
        try:
            sid, epoch = (int(part) for part in user_id.split(":"))
        except ValueError:
            return None
        staff = db().get(Staff, sid)
        if staff is None or not staff.active or (staff.session_epoch or 0) != epoch:
            return None
        return ConsoleUser.of(staff)

    @app.before_request
    def idle_timeout() -> None:
        if request.path.startswith("/static/") or (
                request.path.startswith("/api/") and "Authorization" in request.headers):
            return  # assets and bearer-token API calls neither use nor create a session
        now = time.time()
        seen = session.get(SEEN)
        if seen is not None and now - float(seen) > idle_minutes * 60:
            logout_user()
            session.clear()
        session[SEEN] = now

    app.register_error_handler(Unauthorized, _unauthorized)
    return manager


def _unauthorized(exc: Unauthorized) -> tuple[Response, int] | Response:
    """401 on a page: go to the login page (and come back after it); htmx gets HX-Redirect;
    the JSON API keeps its JSON error."""
    if request.path.startswith("/api/"):
        return jsonify({"error": {"code": "unauthorized", "message": exc.description}}), 401
    target = url_for("auth.login",
                     next=request.full_path.rstrip("?") if request.method == "GET" else None)
    if request.headers.get("HX-Request"):
        return Response("", 401, {"HX-Redirect": target})
    return redirect(target)
