"""Console pages: staff accounts (admins only).

List every account (role, active, TOTP on/off, last login) and act on one: add (shows a
one-time temporary password), disable / enable, reset the password (a new temporary one),
reset TOTP (lost phone), change the role. The service layer (push/actions.py, section
"console accounts") authorises, audits and ends the account's sessions where it must; the
last active admin can be neither disabled nor demoted. A temporary password is rendered in
the POST's own answer (never flashed: the flash would ride in the session cookie) and is
not stored anywhere but as its argon2 hash.
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response as BaseResponse
from wtforms import SelectChoice, SelectField, StringField
from wtforms.validators import DataRequired, Length

from bot.errors import NotFound, PermissionDenied
from bot.vocab import ROLE_LABELS, Role
from console.web import actor, db, roles_required, rt
from push import actions

bp = Blueprint("accounts", __name__, url_prefix="/accounts")
ROLE_NAMES = [(r.value, ROLE_LABELS.get(r.value, r.value)) for r in Role]


def _role_choices() -> list[SelectChoice]:
    return [SelectChoice(value, label) for value, label in ROLE_NAMES]


class AddForm(FlaskForm):
    name = StringField("账号名（字母、数字、汉字及 . _ -）",
                       validators=[DataRequired("请输入账号名"), Length(max=64)],
                       render_kw={"autocomplete": "off", "autocapitalize": "none",
                                  "spellcheck": "false"})
    role = SelectField("角色", choices=_role_choices, default=Role.EDITOR.value)


class RoleForm(FlaskForm):
    role = SelectField("角色", choices=_role_choices)


def _index(add_form: AddForm | None = None, status: int = 200) -> tuple[str, int]:
    me = actor()
    accounts = actions.list_accounts(db(), me)
    required = rt().settings.console.totp_required_roles
    return render_template("accounts/index.html", accounts=accounts, me=me,
                           add_form=add_form or AddForm(formdata=None), roles=ROLE_NAMES,
                           totp_required=required), status


@bp.get("")
@roles_required(Role.ADMIN)
def index() -> tuple[str, int]:
    """Every account."""
    return _index()


@bp.post("/new")
@roles_required(Role.ADMIN)
def add():  # noqa: ANN201
    """Create an account; its temporary password is shown once, here."""
    form = AddForm()
    if not form.validate_on_submit():
        return _index(form, 400)
    try:
        made = actions.add_account(db(), actor(), form.name.data, form.role.data, rt().now())
    except PermissionDenied as exc:
        db().rollback()
        form.name.errors = [str(exc)]
        return _index(form, 400)
    db().commit()
    return render_template("accounts/secret.html", account=made.account,
                           password=made.password, created=True,
                           totp_required=rt().settings.console.totp_required_roles)


def _act(name: str, done: str, fn, *args):  # noqa: ANN001, ANN202
    """Run a service call on account `name`, commit, flash `done` or the refusal."""
    try:
        result = fn(db(), actor(), name, *args, rt().now())
    except (PermissionDenied, NotFound) as exc:
        db().rollback()
        flash(str(exc), "error")
        return None
    db().commit()
    flash(done, "success")
    return result


@bp.post("/<name>/disable")
@roles_required(Role.ADMIN)
def disable(name: str) -> BaseResponse:
    """Disable an account (its sessions end)."""
    _act(name, f"账号 {name} 已停用，其登录已全部退出。", actions.disable_account)
    return _back(name)


@bp.post("/<name>/enable")
@roles_required(Role.ADMIN)
def enable(name: str) -> BaseResponse:
    """Enable a disabled account."""
    _act(name, f"账号 {name} 已启用。", actions.enable_staff)
    return _back(name)


@bp.post("/<name>/reset-password")
@roles_required(Role.ADMIN)
def reset_password(name: str):  # noqa: ANN201
    """A new temporary password (shown once); the account's sessions end."""
    try:
        made = actions.reset_password(db(), actor(), name, rt().now())
    except (PermissionDenied, NotFound) as exc:
        db().rollback()
        flash(str(exc), "error")
        return _back(name)
    db().commit()
    return render_template("accounts/secret.html", account=made.account,
                           password=made.password, created=False,
                           totp_required=rt().settings.console.totp_required_roles)


@bp.post("/<name>/reset-totp")
@roles_required(Role.ADMIN)
def reset_totp(name: str) -> BaseResponse:
    """Remove the account's TOTP (it enrols again at its next login)."""
    _act(name, f"账号 {name} 的双重验证已重置，下次登录时需重新绑定。", actions.reset_totp)
    return _back(name)


@bp.post("/<name>/role")
@roles_required(Role.ADMIN)
def role(name: str) -> BaseResponse:
    """Change the account's role (its sessions end)."""
    form = RoleForm()
    if not form.validate_on_submit():
        flash("请选择有效的角色。", "error")
        return _back(name)
    _act(name, f"账号 {name} 的角色已改为{ROLE_LABELS.get(form.role.data, form.role.data)}。",
         actions.change_role, form.role.data)
    return _back(name)


def _back(name: str) -> BaseResponse:
    """Back to the list at the account's row (an admin who just ended their own session,
    e.g. by demoting themselves, lands on the login page from there)."""
    return redirect(url_for("accounts.index", _anchor=f"acct-{name}"), 303)
