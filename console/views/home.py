"""Console home: what needs the staff member's attention."""

from __future__ import annotations

from flask import Blueprint, render_template

from console.web import actor, roles_required

bp = Blueprint("home", __name__)


@bp.get("/")
@roles_required()
def index() -> str:
    return render_template("home.html", me=actor())
