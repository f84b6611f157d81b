"""Console login: name + password, then (if due) a TOTP code, a forced password change or a
forced TOTP enrolment; logout; the account's own page (password, TOTP).

A login goes through steps. After the password the account is only *half* logged in: the
session holds `_qz_pending` (account id, session epoch, expiry five minutes ahead, whether
the TOTP code was given) and Flask-Login knows nobody, so every other page stays closed.
The next step is derived from the account each time (`_next_step`):
  1. TOTP enabled -> /login/totp (a code; each 30 s step accepted once, push/accounts.py)
  2. must_change_password (a temporary password from an admin) -> /account/password
  3. role in [console] totp_required_roles without TOTP -> /account/totp (enrolment)
then `login_user`. The session is cleared when the password is accepted and again when the
login completes (no session fixation; a fresh CSRF token).

Failures (unknown name or wrong password: one message, "账号或密码错误"; wrong TOTP code)
are counted per account name and per client address in Redis (push.accounts.LoginThrottle);
at [console] login_max_failures within lockout_minutes the name or the address is refused
for lockout_minutes, with the same message whether the account exists or not. If Redis
cannot be reached the login fails closed (503 with a clear message), never a 500. Every
success, failure, lockout, TOTP failure and logout is audited (never a password or code).
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user
from flask_wtf import FlaskForm
from redis.exceptions import RedisError
from werkzeug.wrappers import Response as BaseResponse
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length

from bot.errors import PermissionDenied
from bot.store.models import Staff
from console.auth import SEEN, ConsoleUser
from console.web import actor, db, roles_required, rt
from push import actions
from push.accounts import LoginThrottle, PasswordRefused

bp = Blueprint("auth", __name__)
log = logging.getLogger("qzbot.console.auth")

PENDING = "_qz_pending"
PENDING_SECONDS = 300
BAD_LOGIN = "账号或密码错误"
BAD_CODE = "验证码错误或已经用过，请输入验证器上当前的 6 位数字"
REDIS_DOWN = "登录服务暂时不可用（无法连接 Redis），请稍后再试或联系系统管理员。"
EXPIRED = "登录已超时，请重新登录。"


def locked_message() -> str:
    """The lockout notice (the same whether the account exists or not)."""
    return f"登录失败次数过多，已暂时锁定，请 {rt().settings.console.lockout_minutes} 分钟后再试。"


# --- forms ---------------------------------------------------------------------------


class LoginForm(FlaskForm):
    name = StringField("账号", validators=[DataRequired("请输入账号"), Length(max=64)],
                       render_kw={"autocomplete": "username", "autocapitalize": "none",
                                  "spellcheck": "false"})
    password = PasswordField("密码", validators=[DataRequired("请输入密码"), Length(max=256)],
                             render_kw={"autocomplete": "current-password"})


class CodeForm(FlaskForm):
    code = StringField("验证码（6 位数字）", validators=[DataRequired("请输入验证码"),
                                                  Length(max=12)],
                       render_kw={"autocomplete": "one-time-code", "inputmode": "numeric",
                                  "pattern": "[0-9 ]*"})


class PasswordForm(FlaskForm):
    old_password = PasswordField("当前密码", validators=[DataRequired("请输入当前密码"),
                                                     Length(max=256)],
                                 render_kw={"autocomplete": "current-password"})
    new_password = PasswordField("新密码（至少 12 个字符，不含账号名，混合两类以上字符）",
                                 validators=[DataRequired("请输入新密码"), Length(max=256)],
                                 render_kw={"autocomplete": "new-password"})
    confirm = PasswordField("再次输入新密码",
                            validators=[DataRequired("请再次输入新密码"),
                                        EqualTo("new_password", "两次输入的新密码不一致")],
                            render_kw={"autocomplete": "new-password"})


# --- helpers -------------------------------------------------------------------------


def _address() -> str:
    return request.remote_addr or "unknown"


def _now():  # noqa: ANN202 - aware datetime
    return rt().now()


def _throttle() -> LoginThrottle:
    cfg = rt().settings.console
    return LoginThrottle(rt().redis, cfg.login_max_failures, cfg.lockout_minutes)


def _safe_next(target: str | None) -> str | None:
    """A local path to go to after the login (never another host)."""
    if not target:
        return None
    # browsers drop tabs and newlines inside URLs ("/\t/evil.example" becomes
    # "//evil.example"): refuse any whitespace or control character outright
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7f for c in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") \
            or "\\" in target:
        return None
    return target


def _pending() -> tuple[dict[str, Any], Staff] | None:
    """The half-finished login and its account, if it is still valid (else it is dropped)."""
    data = session.get(PENDING)
    if not isinstance(data, dict):
        return None
    staff = None
    if float(data.get("exp", 0)) > _now().timestamp():
        staff = actions.pending_account(db(), int(data.get("sid", 0)), int(data.get("epoch", -1)))
    if staff is None:
        session.pop(PENDING, None)
        return None
    return data, staff


def _next_step(staff: Staff, data: dict[str, Any]) -> str | None:
    """The login step still due for `staff`: "totp", "password", "enrol" or None (done)."""
    if staff.totp_enabled and not data.get("totp"):
        return "totp"
    if staff.must_change_password:
        return "password"
    if staff.role in rt().settings.console.totp_required_roles and not staff.totp_enabled:
        return "enrol"
    return None


STEP_ENDPOINT = {"totp": "auth.login_totp", "password": "auth.password", "enrol": "auth.totp"}


def _advance(staff: Staff, data: dict[str, Any]) -> BaseResponse:
    """Go to the next step of the login, or finish it."""
    step = _next_step(staff, data)
    if step is not None:
        session[PENDING] = data
        return redirect(url_for(STEP_ENDPOINT[step]))
    return _complete(staff, data)


def _complete(staff: Staff, data: dict[str, Any]) -> BaseResponse:
    """The login is complete: audit, a fresh session, Flask-Login's identity."""
    actions.login_succeeded(db(), staff, _now(), _address(), totp=bool(staff.totp_enabled))
    db().commit()
    try:
        _throttle().succeeded(staff.name)
    except RedisError:  # the count expires by itself
        log.warning("console: could not clear the failure count (Redis down)")
    user = ConsoleUser.of(staff)
    target = _safe_next(data.get("next"))
    session.clear()  # no session fixation: nothing from before the login survives
    login_user(user, fresh=True)
    session[SEEN] = time.time()
    return redirect(target or url_for("home.index"))


def _login_page(form: LoginForm, error: str | None = None, status: int = 200):  # noqa: ANN202
    return render_template("auth/login.html", form=form, error=error), status


# --- login ---------------------------------------------------------------------------


@bp.route("/login", methods=["GET", "POST"])
def login():  # noqa: ANN201
    """Step 1: account name and password."""
    if current_user.is_authenticated:
        return redirect(url_for("home.index"))
    form = LoginForm()
    if not form.validate_on_submit():
        if request.method == "POST":
            return _login_page(form, status=400)
        return _login_page(form)
    name, password, address = form.name.data.strip(), form.password.data, _address()
    now = _now()
    try:
        throttle = _throttle()
        if throttle.locked(name, address):
            actions.login_refused(db(), name, now, address, "console_login_locked")
            db().commit()
            return _login_page(form, locked_message(), 429)
        staff = actions.password_login(db(), name, password, now, address)
        if staff is None:
            started = throttle.failed(name, address)
            if started:
                actions.login_refused(db(), name, now, address, "console_lockout")
            db().commit()
            return _login_page(form, locked_message() if started else BAD_LOGIN,
                               429 if started else 401)
    except RedisError:
        db().rollback()
        log.error("console: login refused, Redis unreachable (fail closed)")
        return _login_page(form, REDIS_DOWN, 503)
    db().commit()  # a re-hashed password
    data = {"sid": staff.id, "epoch": staff.session_epoch or 0, "totp": False,
            "exp": now.timestamp() + PENDING_SECONDS,
            "next": _safe_next(request.args.get("next"))}
    session.clear()
    return _advance(staff, data)


@bp.route("/login/totp", methods=["GET", "POST"])
def login_totp():  # noqa: ANN201
    """Step 2: the TOTP code of an account that has TOTP on."""
    pending = _pending()
    if pending is None:
        flash(EXPIRED, "error")
        return redirect(url_for("auth.login"))
    data, staff = pending
    if _next_step(staff, data) != "totp":
        return _advance(staff, data)
    form = CodeForm()
    if not form.validate_on_submit():
        return render_template("auth/totp.html", form=form, error=None), \
            400 if request.method == "POST" else 200
    address, now = _address(), _now()
    try:
        throttle = _throttle()
        if throttle.locked(staff.name, address):
            actions.login_refused(db(), staff.name, now, address, "console_login_locked")
            db().commit()
            session.pop(PENDING, None)
            flash(locked_message(), "error")
            return redirect(url_for("auth.login"))
        if not actions.totp_login(db(), rt().settings, rt().redis, staff, form.code.data, now,
                                  address):
            started = throttle.failed(staff.name, address)
            if started:
                actions.login_refused(db(), staff.name, now, address, "console_lockout")
                session.pop(PENDING, None)
            db().commit()
            if started:
                flash(locked_message(), "error")
                return redirect(url_for("auth.login"))
            return render_template("auth/totp.html", form=form, error=BAD_CODE), 401
    except RedisError:
        db().rollback()
        log.error("console: TOTP check refused, Redis unreachable (fail closed)")
        return render_template("auth/totp.html", form=form, error=REDIS_DOWN), 503
    data["totp"] = True
    return _advance(staff, data)


@bp.post("/logout")
def logout() -> BaseResponse:
    """End the session (audited when someone was logged in)."""
    if current_user.is_authenticated:
        staff = db().get(Staff, current_user.staff_id)
        if staff is not None:
            actions.logout(db(), staff, _now(), _address())
            db().commit()
    logout_user()
    session.clear()
    flash("已退出登录。", "success")
    return redirect(url_for("auth.login"))


# --- the account's own page -------------------------------------------------------------


@bp.get("/account")
@roles_required()
def account() -> str:
    """The logged-in account: role, TOTP status, last login; links to change them."""
    me = actions.account_view(db(), actor())
    return render_template("auth/account.html", me=me,
                           last_login=me.last_login_at,
                           totp_required=me.role in rt().settings.console.totp_required_roles)


def _who() -> tuple[Staff, dict[str, Any] | None] | None:
    """The account acting on /account/*: the logged-in one (pending None), or the one of a
    half-finished login whose due step is `step`."""
    if current_user.is_authenticated:
        return actor(), None
    pending = _pending()
    if pending is None:
        return None
    data, staff = pending
    return staff, data


def _account_step(step: str) -> tuple[Staff, dict[str, Any] | None] | BaseResponse:
    """The account acting on an /account/* step page, or where it must go instead: the login
    page (nobody, or an expired half-login), or the half-login's due step if not this one."""
    who = _who()
    if who is None:
        flash(EXPIRED if PENDING in session else "请先登录。", "error")
        return redirect(url_for("auth.login"))
    staff, data = who
    if data is not None and _next_step(staff, data) != step:
        return _advance(staff, data)
    return staff, data


@bp.route("/account/password", methods=["GET", "POST"])
def password():  # noqa: ANN201
    """Change one's own password (also the forced step after an admin's reset)."""
    who = _account_step("password")
    if isinstance(who, BaseResponse):
        return who
    staff, data = who
    form = PasswordForm()
    forced = data is not None
    if not form.validate_on_submit():
        return render_template("auth/password.html", form=form, forced=forced, errors=[]), \
            400 if request.method == "POST" else 200
    # the current password is a password guess like a login's: a stolen session must not
    # guess it at leisure, so wrong ones count in the login throttle (name and address)
    try:
        throttle = _throttle()
        if throttle.locked(staff.name, _address()):
            return render_template("auth/password.html", form=form, forced=forced,
                                   errors=[locked_message()]), 429
        actions.change_own_password(db(), staff, form.old_password.data,
                                    form.new_password.data, _now())
    except PasswordRefused as exc:
        db().rollback()
        return render_template("auth/password.html", form=form, forced=forced,
                               errors=exc.problems), 400
    except PermissionDenied as exc:
        db().commit()  # the audited failure
        try:
            started = throttle.failed(staff.name, _address())
        except RedisError:
            started = False
        if started:
            actions.login_refused(db(), staff.name, _now(), _address(), "console_lockout")
            db().commit()
        return render_template("auth/password.html", form=form, forced=forced,
                               errors=[locked_message() if started else str(exc)]), \
            429 if started else 400
    except RedisError:
        db().rollback()
        log.error("console: password change refused, Redis unreachable (fail closed)")
        return render_template("auth/password.html", form=form, forced=forced,
                               errors=[REDIS_DOWN]), 503
    db().commit()
    if data is not None:
        data["epoch"] = staff.session_epoch
        return _advance(staff, data)
    # the epoch moved on: other sessions end, this one continues on the new epoch
    login_user(ConsoleUser.of(staff), fresh=True)
    flash("密码已修改，其他设备上的登录已退出。", "success")
    return redirect(url_for("auth.account"))


@bp.route("/account/totp", methods=["GET", "POST"])
def totp():  # noqa: ANN201
    """Enrol an authenticator app (QR code + a first code), or see that TOTP is on."""
    who = _account_step("enrol")
    if isinstance(who, BaseResponse):
        return who
    staff, data = who
    forced = data is not None
    if staff.totp_enabled:
        return render_template("auth/totp_on.html")
    form = CodeForm()
    error = None
    status = 200
    if form.validate_on_submit():
        try:
            ok = actions.confirm_totp(db(), rt().settings, rt().redis, staff, form.code.data,
                                      _now())
        except RedisError:
            db().rollback()
            return _enrol_page(staff, form, forced, REDIS_DOWN, 503)
        db().commit()
        if ok:
            if data is not None:
                data["totp"] = True
                return _advance(staff, data)
            flash("双重验证已启用。", "success")
            return redirect(url_for("auth.account"))
        error, status = BAD_CODE, 400
    elif request.method == "POST":
        status = 400
    return _enrol_page(staff, form, forced, error, status)


def _enrol_page(staff: Staff, form: CodeForm, forced: bool, error: str | None,
                status: int) -> tuple[str, int]:
    enrolment = actions.enrol_totp(db(), rt().settings, staff, _now())
    db().commit()  # the new (not yet enabled) secret
    grouped = " ".join(enrolment.secret[i:i + 4] for i in range(0, len(enrolment.secret), 4))
    return render_template("auth/enrol.html", form=form, forced=forced, error=error,
                           enrolment=enrolment, grouped=grouped, name=staff.name), status

