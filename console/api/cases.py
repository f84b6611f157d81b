"""/api/v1/cases: casework over JSON (issue 10 item 5) -- queues, a case, its steps, registration.

The same use-cases as the console pages (console/views/cases.py), with the same permissions:
any account with a casework role may call these (admins read every case and act only with
casework roles of their own); cases/actions.py decides what each may see and do (handlers:
their department's cases; four eyes on answers and extensions). A step is
`POST /cases/{number}/{step}` with the step's fields (the table in GET /cases/steps); it
commits, then hands the citizen notices to cases.notify. Personal data is masked for the
roles that do not need it, exactly as on the pages.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

import marshmallow as ma
from flask_smorest import Blueprint
from marshmallow import fields, validate

from bot.errors import CaseInvalid, NotFound, PermissionDenied
from bot.vocab import (
    ANSWER_TYPES,
    APPLICANT_TYPES,
    DELIVERY_FORMS,
    DELIVERY_WAYS,
    MESSAGE_CATEGORIES,
    STAFF_CHANNELS,
)
from cases import actions
from console.api.auth import caller
from console.api.common import documented, install_errors
from console.api.errors import ApiError
from console.api.schemas import Text
from console.views.cases import (
    CASEWORK,
    STEPS,
    VIEWS,
    case_roles,
    find_queue,
    may_open,
    parse_step,
    reader,
    registration_args,
    run_step,
    send_notices,
)
from console.web import db, rt

bp = Blueprint("api_cases", __name__, url_prefix="/api/v1/cases",
               description="办件：依申请公开与网民留言的队列、详情、办理步骤和登记")
install_errors(bp)
NUMBER = "<string(maxlength=24):number>"


def requires_casework(view: Callable) -> Callable:
    """403 unless the caller has a casework role (or is an admin); marked for the tests."""

    @wraps(view)
    def inner(*args: Any, **kwargs: Any) -> Any:
        if not may_open(caller()):
            raise ApiError(403, "forbidden", "当前账号没有办案角色。")
        return view(*args, **kwargs)

    inner.qz_roles = (CASEWORK,)
    return inner


# --- schemas ---------------------------------------------------------------------------------


class QueueFilter(ma.Schema):
    view = fields.String(load_default="open", validate=validate.OneOf(list(VIEWS)), metadata={
        "description": "open, overdue, t0 / t2 / t5 (due within that many working days), "
                       "mine (I am the handler), department (my department)"})
    kind = fields.String(validate=validate.OneOf(["application", "message"]))
    state = fields.String(validate=validate.Length(max=24))
    limit = fields.Integer(load_default=200, validate=validate.Range(min=1, max=1000))


class QueueRowOut(ma.Schema):
    number = fields.String(required=True)
    kind = fields.String(required=True)
    state = fields.String(required=True)
    state_label = fields.String(required=True)
    category = fields.String(allow_none=True)
    subject = fields.String(required=True)
    department = fields.String(allow_none=True)
    handler = fields.String(allow_none=True)
    received_on = fields.Date(allow_none=True)
    due_on = fields.Date(allow_none=True)
    due_provisional = fields.Boolean(required=True, metadata={
        "description": "the deadline crosses a provisional calendar year (暂定)"})
    overdue = fields.Boolean(required=True)
    level = fields.String(allow_none=True, metadata={"description": "overdue, T-0, T-2, T-5"})


class QueueOut(ma.Schema):
    items = fields.List(fields.Nested(QueueRowOut), required=True)


class ClockOut(ma.Schema):
    kind = fields.String(required=True)
    started_on = fields.Date(required=True)
    working_days = fields.Integer(required=True)
    paused_days = fields.Integer(required=True)
    due_on = fields.Date(required=True)
    provisional = fields.Boolean(required=True)
    status = fields.String(required=True)
    ended_on = fields.Date(allow_none=True)


class FileOut(ma.Schema):
    id = fields.Integer(required=True)
    purpose = fields.String(required=True)
    filename = fields.String(required=True)


class CaseOut(ma.Schema):
    number = fields.String(required=True)
    kind = fields.String(required=True)
    state = fields.String(required=True)
    state_label = fields.String(required=True)
    channel = fields.String(required=True)
    category = fields.String(allow_none=True)
    subject = fields.String(required=True)
    document_no = fields.String(allow_none=True)
    applicant = fields.Dict(required=True, metadata={
        "description": "art.-29 fields; masked unless your casework role needs them"})
    applicant_type = fields.String(allow_none=True)
    delivery_form = fields.String(allow_none=True)
    delivery_way = fields.String(allow_none=True)
    submitted_at = fields.DateTime(required=True)
    received_on = fields.Date(allow_none=True)
    due_on = fields.Date(allow_none=True)
    due_provisional = fields.Boolean(required=True)
    department_id = fields.Integer(allow_none=True)
    department = fields.String(allow_none=True)
    handler = fields.String(allow_none=True)
    answer_type = fields.String(allow_none=True)
    answer_reason = fields.String(allow_none=True)
    answer_text = fields.String(allow_none=True)
    answer_author = fields.String(allow_none=True)
    answer_reviewer = fields.String(allow_none=True)
    answered_on = fields.Date(allow_none=True)
    delivered_on = fields.Date(allow_none=True)
    delivered_how = fields.String(allow_none=True)
    rating = fields.String(allow_none=True)
    converted_from = fields.String(allow_none=True)
    closed_at = fields.DateTime(allow_none=True)
    clocks = fields.List(fields.Nested(ClockOut), required=True)
    files = fields.List(fields.Nested(FileOut), required=True)
    allowed = fields.List(fields.String(), required=True, metadata={
        "description": "the steps you may take now (POST /cases/{number}/{step})"})


class EventOut(ma.Schema):
    id = fields.Integer(required=True)
    at = fields.DateTime(required=True)
    actor = fields.String(required=True)
    action = fields.String(required=True)
    from_state = fields.String(allow_none=True)
    to_state = fields.String(allow_none=True)
    detail = fields.Dict(required=True)
    notify = fields.String(allow_none=True)


class CaseDetailOut(ma.Schema):
    case = fields.Nested(CaseOut, required=True)
    timeline = fields.List(fields.Nested(EventOut), required=True)


class StepResultOut(ma.Schema):
    case = fields.Nested(CaseOut, required=True)
    notices = fields.Integer(required=True, metadata={
        "description": "citizen notices handed to the push channels"})
    query_code = fields.String(allow_none=True, metadata={
        "description": "the 查询码 of a new case (registration, conversion): shown once"})


class StepIn(ma.Schema):
    """Every step's fields (each step takes the ones GET /cases/steps names)."""

    received_on = fields.Date()
    what = Text(max_length=2000)
    limit_days = fields.Integer(validate=validate.Range(min=1, max=60))
    note = Text(max_length=2000)
    department_id = fields.Integer(validate=validate.Range(min=1, max=2147483647))
    handler = Text(max_length=64)
    third_party = Text(max_length=200)
    outcome = Text(max_length=2000)
    reason = Text(max_length=2000)
    approve = fields.Boolean()
    answer_type = fields.String(validate=validate.OneOf(ANSWER_TYPES))
    text = Text(max_length=8000)
    how = fields.String(validate=validate.OneOf(DELIVERY_WAYS))
    delivered_on = fields.Date()
    category = fields.String(validate=validate.OneOf(MESSAGE_CATEGORIES))
    applicant_type = fields.String(validate=validate.OneOf(APPLICANT_TYPES))


class ApplicantIn(ma.Schema):
    name = Text(max_length=60)
    id_type = Text(max_length=20)
    id_number = Text(max_length=40)
    phone = Text(max_length=30)
    address = Text(max_length=200)
    email = Text(max_length=120)
    organisation_code = Text(max_length=40)
    contact_person = Text(max_length=60)


class RegisterIn(ma.Schema):
    """A letter, fax, e-mail or in-person application (identity proofs: on the page)."""

    channel = fields.String(required=True, validate=validate.OneOf(STAFF_CHANNELS))
    received_on = fields.Date(load_default=None, metadata={
        "description": "art. 31 receipt date (default today, Asia/Shanghai)"})
    applicant = fields.Nested(ApplicantIn, required=True)
    applicant_type = fields.String(required=True, validate=validate.OneOf(APPLICANT_TYPES))
    subject = Text(load_default="", max_length=2000)
    document_no = Text(load_default=None, allow_none=True, max_length=64)
    delivery_form = fields.String(required=True, validate=validate.OneOf(DELIVERY_FORMS))
    delivery_way = fields.String(required=True, validate=validate.OneOf(DELIVERY_WAYS))


class StepFieldOut(ma.Schema):
    name = fields.String(required=True)
    label = fields.String(required=True)
    kind = fields.String(required=True)
    required = fields.Boolean(required=True)
    choices = fields.List(fields.String(), required=True)


class StepOut(ma.Schema):
    name = fields.String(required=True)
    label = fields.String(required=True)
    fields_ = fields.List(fields.Nested(StepFieldOut), required=True, data_key="fields")


class StepsOut(ma.Schema):
    items = fields.List(fields.Nested(StepOut), required=True)


class DepartmentOut(ma.Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    active = fields.Boolean(required=True)
    open_cases = fields.Integer(required=True)


class DepartmentList(ma.Schema):
    items = fields.List(fields.Nested(DepartmentOut), required=True)


# --- endpoints -------------------------------------------------------------------------------


def _case_out(view: actions.CaseView) -> dict[str, Any]:
    out = {name: getattr(view, name) for name in CaseOut._declared_fields}
    out["clocks"] = list(view.clocks)
    out["files"] = [{"id": i, "purpose": p, "filename": f} for i, p, f in view.files]
    return out


@bp.route("", methods=["GET"])
@requires_casework
@bp.arguments(QueueFilter, location="query")
@bp.response(200, QueueOut)
@documented(403, 422)
def list_cases(args: dict) -> dict:
    """Open cases by due date in one queue view (handlers: their department's only)."""
    rows = find_queue(db(), rt(), caller(), args["view"], kind=args.get("kind"),
                      state=args.get("state"), limit=args["limit"])
    return {"items": [{**{k: getattr(r, k) for k in QueueRowOut._declared_fields
                          if k != "level"}, "level": level} for r, level in rows]}


@bp.route("/steps", methods=["GET"])
@requires_casework
@bp.response(200, StepsOut)
@documented(403)
def list_steps() -> dict:
    """Every step and its fields (a case's `allowed` names those you may take now)."""
    return {"items": [{"name": name, "label": s.label,
                       "fields_": [{"name": f.name, "label": f.label, "kind": f.kind,
                                    "required": f.required or f.kind == "approve",
                                    "choices": list(f.choices)} for f in s.fields]}
                      for name, s in STEPS.items()]}


@bp.route("/departments", methods=["GET"])
@requires_casework
@bp.response(200, DepartmentList)
@documented(403)
def list_departments() -> dict:
    """Departments (ids for assign / transfer_message)."""
    return {"items": actions.list_departments(db(), caller())}


@bp.route(f"/{NUMBER}", methods=["GET"])
@requires_casework
@bp.response(200, CaseDetailOut)
@documented(403, 404)
def get_case(number: str) -> dict:
    """A case (applicant masked unless your role needs it) with its timeline."""
    session, who = db(), reader(caller())
    view = actions.case_detail(session, who, number)
    timeline = actions.case_timeline(session, who, number)
    out = _case_out(view)
    if who is not caller():
        out["allowed"] = []  # an admin without casework roles only reads
    return {"case": out, "timeline": timeline}


@bp.route(f"/{NUMBER}/<string(maxlength=40):step>", methods=["POST"])
@requires_casework
@bp.arguments(StepIn)
@bp.response(200, StepResultOut)
@documented(403, 404, 409, 422)
def take_step(args: dict, number: str, step: str) -> dict:
    """Take one step on a case: 404 for an unknown step or case, 403 when your role may
    not, 409 in the wrong state, 422 for missing or wrong fields."""
    spec = STEPS.get(step)
    if spec is None:
        raise NotFound(f"no step {step}")
    allowed = {f.name for f in spec.fields}
    extra = sorted(set(args) - allowed)
    kwargs, problems = parse_step(spec, args)
    if extra:
        problems.append(f"{step} takes no {', '.join(extra)}")
    if problems:
        raise CaseInvalid(problems)
    session, runtime = db(), rt()
    result = run_step(runtime, session, caller(), number, step, kwargs)
    session.commit()
    send_notices(runtime, result.notices)
    return {"case": _case_out(result.case), "notices": len(result.notices),
            "query_code": result.query_code}


@bp.route("/applications", methods=["POST"])
@requires_casework
@bp.arguments(RegisterIn)
@bp.response(201, StepResultOut)
@documented(403, 422)
def register_application(args: dict) -> dict:
    """Register a letter, fax, e-mail or in-person application (registrars and the office
    head): the answer clock runs from the receipt date; the 查询码 is in the answer, once."""
    me = caller()
    if not case_roles(me) & actions.REGISTRARS:
        raise PermissionDenied(f"{me.name} 不是登记员")
    session, runtime = db(), rt()
    kwargs, problems = registration_args(args, runtime)
    if problems:
        raise CaseInvalid(problems)
    result = actions.register_application(session, runtime.settings, me, runtime.now(),
                                          **kwargs)
    session.commit()
    send_notices(runtime, result.notices)
    return {"case": _case_out(result.case), "notices": len(result.notices),
            "query_code": result.query_code}
