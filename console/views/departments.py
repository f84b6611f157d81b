"""Console pages: departments and casework roles (admins; issue 10 item 5).

Departments cases go to (局各科室, 市道管处, 市水运处 ...): add, retire, restore. Beside each
account's console role (accounts pages), its casework roles -- registrar (登记员), handler
(承办人, who belongs to a department), head of the disclosure office (公开办负责人) -- and its
department are set here. cases/actions.py authorises and audits every change (admins only).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from bot.errors import CaseInvalid, NotFound, PermissionDenied
from bot.vocab import CASE_ROLE_LABELS, ROLE_LABELS, CaseRole, Role
from cases import actions
from console.web import actor, db, roles_required, rt
from push.staff import all_staff

bp = Blueprint("departments", __name__, url_prefix="/departments")


@bp.get("")
@roles_required(Role.ADMIN)
def index() -> tuple[str, int]:
    """Departments, and every account's casework roles and department."""
    session, me = db(), actor()
    departments = actions.list_departments(session, me)
    return render_template("departments/index.html", departments=departments,
                           staff=all_staff(session), me=me,
                           case_roles=[(r.value, CASE_ROLE_LABELS[r.value]) for r in CaseRole],
                           console_role=ROLE_LABELS,
                           names={d.id: d.name for d in departments}), 200


def _run(done: str, fn: Any, *args: Any) -> None:
    """Run a service call, commit and flash `done`, or roll back and flash the refusal."""
    session = db()
    try:
        fn(session, actor(), *args, rt().now())
    except CaseInvalid as exc:
        session.rollback()
        flash("；".join(exc.problems), "error")
        return
    except (PermissionDenied, NotFound) as exc:
        session.rollback()
        flash(str(exc), "error")
        return
    session.commit()
    flash(done, "success")


@bp.post("/new")
@roles_required(Role.ADMIN)
def add() -> BaseResponse:
    """A new department."""
    name = (request.form.get("name") or "").strip()
    _run(f"已新增部门：{name}", actions.add_department, name)
    return redirect(url_for("departments.index"), 303)


@bp.post("/<int(max=2147483647):department_id>/active")
@roles_required(Role.ADMIN)
def set_active(department_id: int) -> BaseResponse:
    """Retire (active=0) or restore (active=1) a department."""
    active = request.form.get("active") == "1"
    _run("部门已恢复。" if active else "部门已停用（已有办件不受影响，不能再转办给它）。",
         actions.set_department_active, department_id, active)
    return redirect(url_for("departments.index"), 303)


@bp.post("/staff/<name>")
@roles_required(Role.ADMIN)
def set_roles(name: str) -> BaseResponse:
    """An account's casework roles and department."""
    roles = tuple(r for r in request.form.getlist("case_roles") if r)
    raw = (request.form.get("department_id") or "").strip()
    if raw and not raw.isdigit():
        flash("部门无效。", "error")
        return redirect(url_for("departments.index"), 303)
    _run(f"已更新 {name} 的办案角色。", actions.set_case_roles, name, roles,
         int(raw) if raw else None)
    return redirect(url_for("departments.index", _anchor=f"staff-{name}"), 303)
