"""Who calls /api/v1, and may they: bearer tokens, the console session, roles, scopes, rate.

Two ways in:
- `Authorization: Bearer qzt_...` (scripts): the token is looked up by its sha256
  (push/apitokens.py); a revoked or expired token or a disabled account is refused. GET needs
  scope "read", anything else "write". Bearer requests carry no cookie authority, so they are
  exempt from CSRF. A request with an Authorization header is judged by it alone, even if a
  console cookie comes along.
- The console session cookie (the console's own pages, e.g. the delivery charts): like a
  page, and a non-GET request must carry the session's CSRF token in `X-CSRFToken`.
Roles are the pages' roles (`console.web.has_role`, admins pass everything), checked by
`requires(...)` before the body is parsed; the service functions check again.
Each caller may make RATE_PER_MINUTE requests a minute (Redis counter; if Redis is down the
limit is not applied and a warning is logged: reading must not stop with it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import g, request
from flask_login import current_user
from flask_wtf.csrf import validate_csrf
from redis.exceptions import RedisError
from wtforms.validators import ValidationError

from bot.store.models import Staff
from bot.vocab import Role
from console.api.errors import MESSAGES, ApiError
from console.web import db, has_role, rt
from push import actions

log = logging.getLogger("qzbot.console.api")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
RATE_PER_MINUTE = 600
REFUSED = {"unknown": "API 令牌无效。", "revoked": "API 令牌已被吊销。",
           "expired": "API 令牌已过期，请新建一个。", "inactive": "该令牌所属账号已停用。"}


def authenticate() -> None:
    """before_request of every API blueprint: set the caller or raise 401/403/429."""
    header = request.headers.get("Authorization")
    if header is not None:
        _bearer(header)
    else:
        _session()
    _rate_limit()


def _bearer(header: str) -> None:
    scheme, _, secret = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise ApiError(401, "unauthorized", "Authorization 头应为 “Bearer qzt_...”。")
    session = db()
    check = actions.token_login(session, secret.strip(), rt().now())
    if check.staff is None:
        log.info("api: token refused (%s) for %s %s", check.refused, request.method,
                 request.path)
        raise ApiError(401, "unauthorized", REFUSED.get(check.refused or "", REFUSED["unknown"]))
    if session.dirty:
        session.commit()  # last_used_at (at most once a minute), before the endpoint runs
    needed = "read" if request.method in SAFE_METHODS else "write"
    if needed not in check.scopes:
        raise ApiError(403, "insufficient_scope",
                       f"该令牌没有“{needed}”权限（令牌权限：{'、'.join(sorted(check.scopes))}）。")
    g.api_staff_id, g.api_via, g.api_scopes = check.staff.id, "token", check.scopes


def _session() -> None:
    if not current_user.is_authenticated:
        raise ApiError(401, "unauthorized", MESSAGES[401])
    staff = db().get(Staff, current_user.staff_id)
    if staff is None or not staff.active:
        raise ApiError(401, "unauthorized", "账号已停用或不存在。")
    if request.method not in SAFE_METHODS:
        try:
            validate_csrf(request.headers.get("X-CSRFToken"))
        except ValidationError:
            raise ApiError(403, "csrf_failed",
                           "缺少或无效的 CSRF 令牌（X-CSRFToken 头）。") from None
    g.api_staff_id, g.api_via, g.api_scopes = staff.id, "session", frozenset({"read", "write"})


def _rate_limit() -> None:
    runtime = rt()
    minute = int(runtime.now().timestamp() // 60)
    key = f"qzbot:api:rate:{g.api_via}:{g.api_staff_id}:{minute}"
    try:
        pipe = runtime.redis.pipeline()
        pipe.incr(key)
        pipe.expire(key, 120)
        count = int(pipe.execute()[0])
    except RedisError as exc:
        log.warning("api: rate limit not applied, Redis unavailable (%s)", exc)
        return
    if count > RATE_PER_MINUTE:
        raise ApiError(429, "rate_limited", f"每分钟最多 {RATE_PER_MINUTE} 次请求，请稍后再试。")


def caller() -> Staff:
    """The calling account (loaded in this request's session)."""
    staff = db().get(Staff, g.api_staff_id)
    if staff is None:
        raise ApiError(401, "unauthorized", "账号已停用或不存在。")
    return staff


def via() -> str:
    """"token" or "session"."""
    return g.api_via


def scopes() -> frozenset[str]:
    return g.api_scopes


def is_admin() -> bool:
    return caller().role == Role.ADMIN.value


def requires(*roles: str | Role) -> Callable:
    """Endpoint decorator: 403 unless the caller holds one of `roles` (admins always pass; no
    roles: any authenticated caller). Marks the function for the permission-matrix tests."""

    def wrap(view: Callable) -> Callable:
        @wraps(view)
        def inner(*args: Any, **kwargs: Any) -> Any:
            if roles and not has_role(caller(), *roles):
                raise ApiError(403, "forbidden", "当前账号的角色无权执行此操作。")
            return view(*args, **kwargs)

        inner.qz_roles = tuple(str(r) for r in roles)
        return inner

    return wrap
