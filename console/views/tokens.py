"""/account/tokens: an account's API tokens for /api/v1 — create (shown once), list, revoke.

Any logged-in account manages its own tokens (a token acts with its account's role); admins
also see and may revoke everyone's. The secret is shown on the page answering the create POST
only (never stored, never in a redirect or the session). Every form carries the CSRF token.
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from bot.errors import InvalidTransition, NotFound
from console.web import actor, db, roles_required, rt
from push import actions
from push.apitokens import SCOPES, TokenInvalid

bp = Blueprint("tokens", __name__, url_prefix="/account/tokens")


def _page(new=None, errors: list[str] | None = None, status: int = 200,
          form: dict | None = None) -> tuple[str, int]:
    session, staff, now = db(), actor(), rt().now()
    admin = staff.role == "admin"
    return render_template(
        "tokens/index.html", tokens=actions.list_api_tokens(session, staff, now,
                                                            everyone=admin),
        admin=admin, me=staff.name, new=new, errors=errors or [], scopes=SCOPES,
        days=rt().settings.console.api_token_days, form=form or {}), status


@bp.get("")
@roles_required()
def index() -> tuple[str, int]:
    """The account's tokens (admins: everyone's) and the create form."""
    return _page()


@bp.post("")
@roles_required()
def create() -> tuple[str, int]:
    """Create a token; the answer shows its secret once."""
    session, runtime = db(), rt()
    name, scopes = request.form.get("name", ""), request.form.getlist("scopes")
    try:
        new = actions.create_api_token(session, runtime.settings, actor(), runtime.now(),
                                       name, scopes)
    except TokenInvalid as exc:
        session.rollback()
        return _page(errors=exc.problems, status=422, form={"name": name, "scopes": scopes})
    session.commit()
    return _page(new=new)


@bp.post("/<int:token_id>/revoke")
@roles_required()
def revoke(token_id: int) -> Response:
    """Revoke one's own token (admins: anyone's)."""
    session = db()
    try:
        token = actions.revoke_api_token(session, actor(), token_id, rt().now())
    except NotFound:
        session.rollback()
        flash("没有找到该令牌。", "error")
        return redirect(url_for("tokens.index"), 303)
    except InvalidTransition:
        session.rollback()
        flash("该令牌已吊销。", "error")
        return redirect(url_for("tokens.index"), 303)
    session.commit()
    flash(f"已吊销令牌“{token.name}”（{token.prefix}…）。", "success")
    return redirect(url_for("tokens.index"), 303)
