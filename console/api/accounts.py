"""/api/v1/me and /api/v1/staff: who is calling, and (admins) every account."""

from __future__ import annotations

from flask_smorest import Blueprint

from bot.vocab import Role
from console.api.auth import caller, requires, scopes, via
from console.api.common import documented, install_errors
from console.api.schemas import AccountList, MeOut
from console.web import db
from push import actions

bp = Blueprint("api_accounts", __name__, url_prefix="/api/v1",
               description="当前账号与账号列表")
install_errors(bp)


@bp.route("/me", methods=["GET"])
@requires()
@bp.response(200, MeOut)
@documented(403)
def me() -> dict:
    """The calling account, its role, how it authenticated and its scopes."""
    staff = caller()
    return {"name": staff.name, "role": staff.role, "via": via(), "scopes": sorted(scopes())}


@bp.route("/staff", methods=["GET"])
@requires(Role.ADMIN)
@bp.response(200, AccountList)
@documented(403)
def list_staff() -> dict:
    """Every staff account by name with its console state (admins)."""
    return {"items": actions.list_accounts(db(), caller())}
