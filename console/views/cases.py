"""Console pages: casework (issue 10 item 5) -- queues, a case's page, its steps, registration.

An adapter over cases/actions.py exactly as the campaign pages are over push/actions.py: a
page runs one use-case in the request's session, commits, and only then hands the citizen
notices the result names (`CaseResult.notices`, CaseEvent ids) to cases.notify. Authorisation
is the service layer's (casework roles: registrar, handler of the case's department, head of
the disclosure office; four eyes on answers and extensions); a refusal is shown on the case's
page with the status that says why (403 not allowed, 409 wrong state, 400 bad input).

- Queues (`/cases/`): open cases by due date, with views overdue, due within T-0 / T-2 / T-5
  working days, mine (I am the handler), my department; filters by kind and state.
- A case (`/cases/<number>`): facts, clocks ("暂定" when a deadline crosses a provisional
  calendar year), the applicant (masked unless the service says the account may see it), its
  files (download for those the service lets read them; every read audited), the timeline
  (CaseEvent) and one form per step the account may take now (`CaseView.allowed`).
- Registration (`/cases/register`): a letter, fax, e-mail or in-person application (registrar);
  the 查询码 is shown once, in the POST's own answer (never flashed, never stored in clear).

STEPS describes every step's inputs once; the JSON API (console/api/cases.py) and the CLI
(bot/cli/cases.py) parse their arguments with the same table.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from functools import wraps
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, send_file, url_for
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.wrappers import Response as BaseResponse

from bot.clock import SHANGHAI
from bot.errors import CaseInvalid, InvalidTransition, NotFound, PermissionDenied
from bot.runtime import Runtime
from bot.store.models import Staff
from bot.vocab import (
    ALERT_LEVEL_LABELS,
    ANSWER_REASON_LABELS,
    ANSWER_REASONS,
    ANSWER_TYPES,
    APPLICANT_TYPES,
    APPLICATION_STATE_LABELS,
    CASE_CHANNELS,
    CASE_KIND_LABELS,
    CASE_NOTICE_LABELS,
    CASE_ROLE_LABELS,
    CLOCK_KIND_LABELS,
    DELIVERY_FORMS,
    DELIVERY_WAYS,
    MESSAGE_CATEGORIES,
    MESSAGE_STATE_LABELS,
    STAFF_CHANNELS,
    CaseKind,
    CaseRole,
    Role,
    case_state_label,
)
from cases import actions
from cases import clock as case_clock
from cases import notify as case_notify
from console.web import actor, db, rt

log = logging.getLogger("qzbot.console.cases")
bp = Blueprint("cases", __name__, url_prefix="/cases")
CASEWORK = "casework"  # the pseudo-role of the permission tables: any casework role (or admin)

# --- who may open the casework pages ---------------------------------------------------------


def case_roles(staff: Staff) -> set[str]:
    """The account's casework roles (known values only)."""
    known = {r.value for r in CaseRole}
    return {r for r in (staff.case_roles or []) if r in known}


def may_open(staff: Staff) -> bool:
    """Casework pages: any account with a casework role, and admins."""
    return bool(staff.active) and (bool(case_roles(staff)) or staff.role == Role.ADMIN.value)


def nav_casework() -> bool:
    """For the navigation: does the logged-in account hold a casework role? (False rather
    than an error while an error page renders after a failed transaction.)"""
    try:
        return bool(case_roles(actor()))
    except SQLAlchemyError:
        return False


def reader(staff: Staff) -> Staff:
    """The account the read functions see: the account itself (cases.actions lets an active
    admin read every case, unmasked, and take no step without a casework role)."""
    return staff


def casework_required(view: Callable) -> Callable:
    """Page decorator: 401 when not logged in, 403 without a casework role (admins pass)."""

    @wraps(view)
    def inner(*args: Any, **kwargs: Any) -> Any:
        if not may_open(actor()):
            abort(403)
        return view(*args, **kwargs)

    inner.qz_roles = (CASEWORK,)
    return inner


# --- the steps and their inputs --------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    """One input of a step: kind text | textarea | date | int | department | choice | approve."""

    name: str
    label: str
    kind: str = "text"
    required: bool = False
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Step:
    """A use-case of cases/actions.py as the adapters offer it."""

    label: str
    fields: tuple[Field, ...] = ()
    danger: bool = False
    note: str = ""


APPROVE = Field("approve", "决定", "approve", True)
NOTE = Field("note", "说明")
STEPS: dict[str, Step] = {
    # 依申请公开
    "confirm_receipt": Step("确认收到", (Field("received_on", "收到日期（默认今天）", "date"),),
                            note="确认收到后开始计算20个工作日答复期限（条例第三十一条）。"),
    "request_correction": Step("告知补正", (
        Field("what", "需要补正的内容（一次性告知）", "textarea", True),
        Field("limit_days", "补正期限（工作日，默认按配置）", "int"))),
    "receive_correction": Step("收到补正", (
        Field("received_on", "收到补正日期（默认今天）", "date"), NOTE),
        note="答复期限自收到补正之日起重新计算。"),
    "assign": Step("分办", (Field("department_id", "承办部门", "department", True),
                            Field("handler", "承办人账号（可不填）"))),
    "start_consultation": Step("征求第三方意见", (Field("third_party", "第三方", "text", True),
                                                  NOTE), note="征求意见期间不计入答复期限。"),
    "end_consultation": Step("第三方意见已回复", (Field("outcome", "第三方意见"),)),
    "request_extension": Step("申请延期", (Field("reason", "延期理由", "textarea", True),)),
    "decide_extension": Step("审批延期", (APPROVE, NOTE),
                             note="须由承办人以外的公开办负责人批准。"),
    "draft_answer": Step("拟写答复", (
        Field("answer_type", "答复类型", "choice", True, ANSWER_TYPES),
        Field("reason", "理由（不予公开、无法提供、不予处理、其他处理须选）", "reason"),
        Field("text", "答复书正文（留空则按答复类型的模板生成）", "textarea"))),
    "submit_answer": Step("提交审核"),
    "review_answer": Step("审核答复", (APPROVE, Field("note", "意见（退回时必填）")),
                          note="先审查后发布：须由拟稿人以外的公开办负责人审核。"),
    "record_delivery": Step("登记送达", (
        Field("how", "送达方式", "choice", True, DELIVERY_WAYS),
        Field("delivered_on", "送达日期（默认今天）", "date"))),
    "archive": Step("归档"),
    "close_application": Step("终止办理（其他处理）", (
        Field("reason", "理由", "choice", True, ANSWER_REASONS["其他处理"]), NOTE), danger=True),
    # 网民留言
    "accept_message": Step("受理", (
        Field("category", "类别（可改）", "choice", False, MESSAGE_CATEGORIES),)),
    "reject_message": Step("不予受理", (Field("reason", "理由", "textarea", True),), danger=True),
    "convert_message_to_application": Step("转为依申请公开", (
        Field("applicant_type", "申请人类型", "choice", True, APPLICANT_TYPES),),
        note="保留原提交和收到日期。"),
    "transfer_message": Step("转办", (Field("department_id", "承办部门", "department", True),)),
    "sign_message": Step("签收"),
    "return_message": Step("退回（非本部门事项）", (Field("reason", "理由", "textarea", True),)),
    "draft_reply": Step("拟写答复", (Field("text", "答复内容", "textarea", True),)),
    "submit_reply": Step("提交审核"),
    "review_reply": Step("审核答复", (APPROVE, Field("note", "意见（退回时必填）")),
                         note="须由拟稿人以外的公开办负责人审核。"),
    "close_message": Step("办结", (NOTE,)),
    "redo_message": Step("重办", (Field("reason", "理由", "textarea", True),)),
}
assert all(callable(getattr(actions, name, None)) for name in STEPS)


def parse_step(step: Step, raw: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A step's keyword arguments from form / CLI strings or JSON values; problems listed.
    Empty optional inputs are left out (the service's defaults apply)."""
    kwargs: dict[str, Any] = {}
    problems: list[str] = []
    for f in step.fields:
        value = raw.get(f.name)
        if isinstance(value, str):
            value = value.strip()
        if value is None or value == "":
            if f.kind == "approve":
                problems.append(f"{f.label}：请选择通过或退回")
            elif f.required:
                problems.append(f"{f.label}：必填")
            continue
        try:
            kwargs[f.name] = _convert(f, value)
        except ValueError:
            problems.append(f"{f.label}：格式不对（{value}）")
    return kwargs, problems


def _convert(f: Field, value: Any) -> Any:
    if f.kind == "date":
        return value if isinstance(value, date) else date.fromisoformat(str(value))
    if f.kind in ("int", "department"):
        if isinstance(value, bool):
            raise ValueError(value)
        return int(value)
    if f.kind == "approve":
        if isinstance(value, bool):
            return value
        text = str(value).lower()
        if text in ("1", "true", "yes", "approve"):
            return True
        if text in ("0", "false", "no", "return", "refuse"):
            return False
        raise ValueError(value)
    if f.kind == "choice" and str(value) not in f.choices:
        raise ValueError(value)
    return str(value)


def run_step(runtime: Runtime, session: Any, staff: Staff, number: str, name: str,
             kwargs: dict[str, Any]) -> actions.CaseResult:
    """Run one step (the caller commits, then calls `send_notices`)."""
    use_case = getattr(actions, name)
    return use_case(session, runtime.settings, staff, number, runtime.now(), **kwargs)


def send_notices(runtime: Runtime, notices: tuple[int, ...]) -> None:
    """After the commit: queue the citizen notices (cases.notify; with Redis down it logs,
    and its sweep finds the unsent notices again: the step stands)."""
    if notices:
        case_notify.enqueue_notices(runtime, list(notices))


# --- queues ----------------------------------------------------------------------------------

VIEWS = {"open": "全部在办", "overdue": "已超期", "t0": "今日到期", "t2": "2个工作日内到期",
         "t5": "5个工作日内到期", "mine": "我承办的", "department": "本部门"}
DUE_WITHIN = {"t0": 0, "t2": 2, "t5": 5}


def today_shanghai(now: datetime) -> date:
    """The date staff live in."""
    return now.astimezone(SHANGHAI).date()


def level_of(row: actions.QueueRow, cal: Any, today: date) -> str | None:
    """The alert level a queue row is at today: overdue, T-0, T-2, T-5 or None."""
    if row.due_on is None:
        return None
    if row.due_on < today:
        return "overdue"
    left = cal.working_days_between(today, row.due_on)
    for n in (0, 2, 5):
        if left <= n:
            return f"T-{n}"
    return None


def find_queue(session: Any, runtime: Runtime, staff: Staff, view: str, *,
               kind: str | None = None, state: str | None = None,
               limit: int = 200) -> list[tuple[actions.QueueRow, str | None]]:
    """A queue view's rows with their alert levels (see VIEWS)."""
    today = today_shanghai(runtime.now())
    who = reader(staff)
    department_id = None
    if view == "department":
        if staff.department_id is None:
            return []
        department_id = staff.department_id
    rows = actions.queue(session, who, kind=kind, state=state, department_id=department_id,
                         overdue=view == "overdue", today=today,
                         limit=limit if view in ("open", "overdue", "department") else 2000)
    if view == "department":  # a registrar's filter; a handler's queue is his department's
        rows = [r for r in rows if r.department is not None]
    cal = case_clock.work_calendar(session, runtime.now())
    out = [(r, level_of(r, cal, today)) for r in rows]
    if view in DUE_WITHIN:
        out = [(r, lv) for r, lv in out
               if lv is not None and lv != "overdue" and int(lv[2:]) <= DUE_WITHIN[view]]
    elif view == "mine":
        out = [(r, lv) for r, lv in out if r.handler == staff.name]
    return out[:limit]


def _choice(value: str | None, allowed: dict[str, Any] | tuple[str, ...]) -> str | None:
    return value if value and value in allowed else None


@bp.context_processor
def _labels() -> dict[str, Any]:
    return {"kind_label": CASE_KIND_LABELS, "channel_label": CASE_CHANNELS,
            "clock_label": CLOCK_KIND_LABELS, "level_label": ALERT_LEVEL_LABELS,
            "notice_label": CASE_NOTICE_LABELS, "case_role_label": CASE_ROLE_LABELS,
            "state_label": case_state_label, "reason_label": ANSWER_REASON_LABELS,
            "event_label": EVENT_LABELS, "applicant_label": APPLICANT_LABELS,
            "file_purpose_label": FILE_PURPOSE_LABELS}


@bp.get("/")
@casework_required
def index() -> tuple[str, int]:
    """The work queues."""
    me = actor()
    view = _choice(request.args.get("view"), VIEWS) or "open"
    kind = _choice(request.args.get("kind"), CASE_KIND_LABELS)
    states = (APPLICATION_STATE_LABELS if kind == CaseKind.APPLICATION else
              MESSAGE_STATE_LABELS if kind == CaseKind.MESSAGE else
              {**APPLICATION_STATE_LABELS, **MESSAGE_STATE_LABELS})
    state = _choice(request.args.get("state"), states)
    rows = find_queue(db(), rt(), me, view, kind=kind, state=state)
    return render_template("cases/index.html", rows=rows, view=view, views=VIEWS, kind=kind,
                           state=state, states=states, me=me, roles=sorted(case_roles(me)),
                           can_register=bool(case_roles(me) & actions.REGISTRARS),
                           reading_only=not case_roles(me)), 200


# --- one case --------------------------------------------------------------------------------

EVENT_LABELS = {
    "submitted": "提交", "registered": "登记", "receipt_confirmed": "确认收到",
    "correction_requested": "告知补正", "correction_submitted": "申请人提交补正",
    "correction_received": "收到补正", "correction_lapsed": "逾期未补正，终止办理",
    "assigned": "分办", "consultation_started": "征求第三方意见",
    "consultation_ended": "第三方意见已回复", "extension_requested": "申请延期",
    "extension_approved": "批准延期", "extension_refused": "不批准延期",
    "answer_drafted": "拟写答复", "answer_submitted": "提交答复审核",
    "answer_returned": "答复退回修改", "answer_approved": "答复审核通过", "delivered": "送达",
    "archived": "归档", "closed": "终止/办结", "accepted": "受理", "rejected": "不予受理",
    "transferred": "转办", "signed": "签收", "returned": "退回", "reply_drafted": "拟写答复",
    "reply_submitted": "提交答复审核", "reply_returned": "答复退回修改", "replied": "已答复",
    "visit": "请群众评价", "rated": "群众评价", "redo": "重办",
    "converted": "由网民留言转为依申请公开", "converted_out": "转为依申请公开",
    "alert": "期限提醒", "notified": "已通知群众",
}
APPLICANT_LABELS = {"name": "姓名/名称", "id_type": "证件类型", "id_number": "证件号码",
                    "phone": "联系电话", "address": "通信地址", "email": "电子邮箱",
                    "organisation_code": "统一社会信用代码", "contact_person": "联系人"}
FILE_PURPOSE_LABELS = {"identity_proof": "身份证明", "correction": "补正材料",
                       "answer": "答复文书", "other": "其他"}
DETAIL_SHOWN = ("received_on", "due_on", "department", "handler", "reason", "what",
                "third_party", "outcome", "days", "how", "delivered_on", "category",
                "answer_type", "rating", "note", "sign_by", "limit_days", "paused_days",
                "application", "source", "channel", "level", "late", "text")
DETAIL_LABELS = {"received_on": "收到日期", "due_on": "期限", "department": "部门",
                 "handler": "承办人", "reason": "理由", "what": "补正内容",
                 "third_party": "第三方", "outcome": "意见", "days": "工作日",
                 "how": "方式", "delivered_on": "送达日期", "category": "类别",
                 "answer_type": "答复类型", "rating": "评价", "note": "说明",
                 "sign_by": "签收期限", "limit_days": "补正期限（工作日）",
                 "paused_days": "不计入的工作日", "application": "新申请编号",
                 "source": "原留言编号", "channel": "渠道", "level": "提醒级别",
                 "late": "超期", "text": "内容"}


def file_readable(staff: Staff, view: actions.CaseView, purpose: str) -> bool:
    """Whether the download link is shown (the service decides again, and audits the read)."""
    roles = set(staff.case_roles or [])
    if roles & actions.REGISTRARS or (staff.role == Role.ADMIN.value and staff.active):
        return True
    return (CaseRole.HANDLER.value in roles and purpose == "answer"
            and staff.department_id == view.department_id)


def _case_page(number: str, *, error: str | None = None, problems: list[str] | None = None,
               code: int = 200, query_code: str | None = None) -> tuple[str, int]:
    me = actor()
    session = db()
    who = reader(me)
    try:
        view = actions.case_detail(session, who, number)
        timeline = actions.case_timeline(session, who, number)
    except NotFound:
        abort(404)
    except PermissionDenied:
        abort(403)
    allowed = [s for s in view.allowed if s in STEPS]
    departments = ([d for d in actions.list_departments(session, me) if d.active]
                   if any(f.kind == "department" for s in allowed for f in STEPS[s].fields)
                   else [])
    return render_template(
        "cases/detail.html", c=view, timeline=timeline, steps=STEPS, allowed=allowed,
        departments=departments, me=me, error=error, problems=problems or [],
        query_code=query_code, reasons=ANSWER_REASONS, detail_shown=DETAIL_SHOWN,
        detail_labels=DETAIL_LABELS, today=today_shanghai(rt().now()),
        files=[(fid, purpose, name, file_readable(who, view, purpose))
               for fid, purpose, name in view.files],
        reading_only=not case_roles(me)), code


@bp.get("/<number>")
@casework_required
def detail(number: str) -> tuple[str, int]:
    """A case: facts, clocks, applicant, files, timeline and the steps allowed now."""
    return _case_page(number)


@bp.post("/<number>/do/<step>")
@casework_required
def act(number: str, step: str) -> Any:
    """Run one step from its form; commit; send the notices; back to the case."""
    spec = STEPS.get(step)
    if spec is None:
        abort(404)
    kwargs, problems = parse_step(spec, request.form)
    if problems:
        return _case_page(number, error=f"{spec.label}：输入有误", problems=problems, code=400)
    session, runtime = db(), rt()
    try:
        result = run_step(runtime, session, actor(), number, step, kwargs)
    except NotFound:
        session.rollback()
        abort(404)
    except PermissionDenied as exc:
        session.rollback()
        return _case_page(number, error=f"{spec.label}：{exc}", code=403)
    except InvalidTransition as exc:
        session.rollback()
        return _case_page(number, error=f"{spec.label}：{exc}", code=409)
    except CaseInvalid as exc:
        session.rollback()
        return _case_page(number, error=f"{spec.label}：输入有误", problems=exc.problems,
                          code=400)
    session.commit()
    send_notices(runtime, result.notices)
    if result.query_code:  # a conversion: the new application's 查询码, shown once
        return _case_page(result.case.number, query_code=result.query_code)
    flash(f"{result.case.number}：{spec.label}完成，当前状态：{result.case.state_label}。",
          "success")
    return redirect(url_for("cases.detail", number=result.case.number), 303)


@bp.get("/files/<int(max=2147483647):file_id>")
@casework_required
def download(file_id: int) -> BaseResponse:
    """An uploaded file, as an attachment (the read is audited, then committed)."""
    session, runtime = db(), rt()
    try:
        filename, content_type, data = actions.read_file(session, runtime.settings,
                                                         reader(actor()), file_id,
                                                         runtime.now())
    except NotFound:
        abort(404)
    except PermissionDenied:
        abort(403)
    except (OSError, CaseInvalid):
        session.rollback()
        log.exception("cases: stored file %s unreadable", file_id)
        abort(404)
    session.commit()
    resp = send_file(io.BytesIO(data), mimetype=content_type, as_attachment=True,
                     download_name=filename)
    resp.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return resp


# --- staff registration of letter / fax / e-mail / in-person applications -------------------

APPLICANT_FIELDS = ("name", "id_type", "id_number", "phone", "address", "email",
                    "organisation_code", "contact_person")


def registration_args(form: Any, runtime: Runtime) -> tuple[dict[str, Any], list[str]]:
    """register_application's keyword arguments from a form (or a JSON document)."""
    problems: list[str] = []
    received: date | None = None
    raw = form.get("received_on")
    if isinstance(raw, date):
        received = raw
    elif (raw or "").strip():
        try:
            received = date.fromisoformat(raw.strip())
        except ValueError:
            problems.append(f"收到日期格式不对（{raw}）")
    else:
        received = today_shanghai(runtime.now())
    applicant = form.get("applicant") if isinstance(form.get("applicant"), dict) else {
        key: (form.get(f"applicant_{key}") or "").strip() for key in APPLICANT_FIELDS}
    args = {"channel": (form.get("channel") or "").strip(), "received_on": received,
            "applicant": {k: v for k, v in applicant.items() if v},
            "applicant_type": (form.get("applicant_type") or "").strip(),
            "subject": (form.get("subject") or "").strip(),
            "document_no": (form.get("document_no") or "").strip() or None,
            "delivery_form": (form.get("delivery_form") or "").strip(),
            "delivery_way": (form.get("delivery_way") or "").strip()}
    return args, problems


def _register_form(form: Any, problems: list[str] | None = None,
                   code: int = 200) -> tuple[str, int]:
    return render_template("cases/register.html", form=form, problems=problems or [],
                           channels=STAFF_CHANNELS, applicant_types=APPLICANT_TYPES,
                           delivery_forms=DELIVERY_FORMS, delivery_ways=DELIVERY_WAYS,
                           today=today_shanghai(rt().now())), code


def _registrar_only() -> Staff:
    me = actor()
    if not case_roles(me) & actions.REGISTRARS:
        abort(403)
    return me


@bp.get("/register")
@casework_required
def register_form() -> tuple[str, int]:
    """The registration form (registrars and the office head)."""
    _registrar_only()
    return _register_form({})


@bp.post("/register")
@casework_required
def register() -> tuple[str, int]:
    """Register an application received by letter, fax, e-mail or in person."""
    me = _registrar_only()
    runtime, session = rt(), db()
    args, problems = registration_args(request.form, runtime)
    if problems:
        return _register_form(request.form, problems, 400)
    files = tuple(actions.Upload(f.filename or "upload", f.mimetype or "", f.read(),
                                 "identity_proof")
                  for f in request.files.getlist("files") if f and f.filename)
    try:
        result = actions.register_application(session, runtime.settings, me, runtime.now(),
                                              files=files, **args)
    except CaseInvalid as exc:
        session.rollback()
        return _register_form(request.form, exc.problems, 400)
    except PermissionDenied:
        session.rollback()
        abort(403)
    session.commit()
    send_notices(runtime, result.notices)
    return _case_page(result.case.number, query_code=result.query_code, code=201)
