"""Request plumbing shared by every console view and API endpoint.

- `db()`: the request's database session (opened on first use, closed at teardown; the view
  commits, service functions never do: "the edge owns the transaction").
- `rt()`: the process runtime (settings, redis, clock).
- `actor()`: the logged-in staff account (a `Staff` row bound to `db()`).
- `roles_required(*roles)`: a view decorator; admins always pass (as `push.staff.require_role`).
- `not_found`, `denied`: raise the HTTP errors the error handlers render (HTML or JSON).
- `cn_time`, `iso_time`: THE way the console shows a time (Jinja filters of the same names,
  registered app-wide by create_console_app): staff read Asia/Shanghai "2026-11-27 10:00";
  machines get ISO 8601 with its +08:00 offset in `<time datetime="...">`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from typing import Any

from flask import abort, current_app, g
from flask_login import current_user
from sqlalchemy.orm import Session

from bot.clock import SHANGHAI
from bot.runtime import Runtime
from bot.store.models import Staff
from bot.vocab import Role

RUNTIME = "qzbot.runtime"


def rt() -> Runtime:
    """The runtime of this console app."""
    return current_app.extensions[RUNTIME]


def db() -> Session:
    """The request's session (one per request, closed at teardown)."""
    session = g.get("_qz_db")
    if session is None:
        session = g._qz_db = rt().sessions()
    return session


def close_db(_exc: BaseException | None = None) -> None:
    """Teardown: roll back anything uncommitted and close the request's session."""
    session = g.pop("_qz_db", None)
    if session is not None:
        session.close()


def actor() -> Staff:
    """The acting account, loaded in this request's session (401 when nobody is logged in)."""
    if not current_user.is_authenticated:
        abort(401)
    staff = db().get(Staff, current_user.staff_id)
    if staff is None or not staff.active:
        abort(401)
    return staff


def has_role(staff: Staff, *roles: str | Role) -> bool:
    """True if `staff` holds one of `roles`; admins hold every role."""
    return staff.role == Role.ADMIN.value or staff.role in {str(r) for r in roles}


def roles_required(*roles: str | Role) -> Callable:
    """Decorator: 401 when not logged in, 403 when the account lacks every one of `roles`.
    No roles given: any logged-in account."""

    def wrap(view: Callable) -> Callable:
        @wraps(view)
        def inner(*args: Any, **kwargs: Any) -> Any:
            staff = actor()
            if roles and not has_role(staff, *roles):
                abort(403)
            return view(*args, **kwargs)

        inner.qz_roles = tuple(str(r) for r in roles)  # for the permission-matrix tests
        return inner

    return wrap


# --- times as staff read them -----------------------------------------------------------


def _shanghai(at: datetime | str) -> datetime:
    """`at` in Asia/Shanghai: aware times are converted, naive ones are UTC (the database's
    store form), ISO text (e.g. an audit row's "2026-11-27T10:00:00+08:00") is parsed first."""
    if isinstance(at, str):
        at = datetime.fromisoformat(at)
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(SHANGHAI)


def cn_time(at: datetime | str | None, empty: str = "—") -> str:
    """A time as staff read it: Asia/Shanghai "2026-11-27 10:00" (`empty` for no time)."""
    if at is None or at == "":
        return empty
    return _shanghai(at).strftime("%Y-%m-%d %H:%M")


def iso_time(at: datetime | str | None) -> str:
    """The same instant for machines (`<time datetime=...>`): ISO 8601, seconds, +08:00."""
    if at is None or at == "":
        return ""
    return _shanghai(at).isoformat(timespec="seconds")
