"""THE service layer for casework (issue 10): 依申请公开 applications and 网民留言.

Every use-case is one function taking the session, the settings, the acting staff account
(`actor`, a bot.store.models.Staff loaded in the same session) or, for citizens, their openid,
plain arguments and `now` (aware). It authorises by casework role (Staff.case_roles:
registrar, handler, office_head; a handler only for his department's cases), refuses what
the workflow forbids (bot.errors.InvalidTransition: wrong state; PermissionDenied: wrong role,
or the same person where two are required; CaseInvalid: bad input, `problems` lists every
one; NotFound: no such case), writes a CaseEvent on the case's timeline and an audit entry
(object_type="case", object_id=number), and returns a small frozen view. It never commits.

Citizen notices: a transition the citizen cares about writes its CaseEvent with
`detail["notify"]` = a bot.vocab.CaseNotice value; `CaseResult.notices` lists those event
ids. The edge commits, then hands each id to cases.notify (C3), which sends it through push's
channels and records the delivery. Nothing here sends or enqueues.

Dates: `received_on` etc. are Asia/Shanghai calendar dates; the day of receipt is day 0 and
deadlines are counted by cases.calendar.WorkCalendar (working days with 调休).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.clock import SHANGHAI, to_local_naive, to_utc_naive
from bot.errors import CaseInvalid, InvalidTransition, NotFound, PermissionDenied
from bot.settings import Settings
from bot.store.models import Case, CaseClock, CaseEvent, CaseFile, Department, Staff
from bot.vocab import (
    ANSWER_REASONS,
    APPLICATION_FINAL_STATES,
    DELIVERY_WAYS,
    MESSAGE_FINAL_STATES,
    STAFF_CHANNELS,
    ApplicationState,
    CaseKind,
    CaseNotice,
    CaseRole,
    ClockKind,
    ClockStatus,
    MessageState,
    Role,
    case_state_label,
)
from cases import applications, clock, messages, numbers, templates
from cases.calendar import WorkCalendar
from push.audit import audit

__all__ = [
    "CaseResult", "CaseView", "CitizenCaseView", "ClockView", "DepartmentView", "EventView",
    "QueueRow", "Upload",
    # applications
    "archive", "assign", "close_application", "confirm_receipt", "create_application",
    "decide_extension", "draft_answer", "end_consultation", "receive_correction",
    "record_delivery", "register_application", "request_correction", "request_extension",
    "review_answer", "start_consultation", "submit_answer", "submit_correction",
    # messages
    "accept_message", "close_message", "create_message", "draft_reply", "rate_case",
    "redo_message", "reject_message", "return_message", "review_reply", "sign_message",
    "submit_reply", "transfer_message", "convert_message_to_application",
    # reading
    "case_detail", "case_timeline", "cases_of_citizen", "find_for_citizen", "queue",
    "read_file",
    # departments and casework roles
    "add_department", "list_departments", "set_case_roles", "set_department_active",
]


# --- inputs and results --------------------------------------------------------------------


@dataclass(frozen=True)
class Upload:
    """A file as received (H5 form, console): checked here for type and size against
    [cases] max_upload_mb, stored under [cases] upload_dir with a random name."""

    filename: str
    content_type: str
    data: bytes
    purpose: str = "identity_proof"  # identity_proof | correction | answer | other


@dataclass(frozen=True)
class ClockView:
    """One clock segment (bot.vocab.ClockKind / ClockStatus values)."""

    kind: str
    started_on: date
    working_days: int
    paused_days: int
    due_on: date
    provisional: bool
    status: str
    ended_on: date | None


@dataclass(frozen=True)
class EventView:
    """One timeline entry; `at` aware UTC (show with push.audit.shown_at)."""

    id: int
    at: datetime
    actor: str
    action: str
    from_state: str | None
    to_state: str | None
    detail: dict[str, Any]
    notify: str | None  # the CaseNotice sent to the citizen for this event, if any


@dataclass(frozen=True)
class CaseView:
    """A case as staff see it. `applicant` is masked (name 张*, id 3505**********1234,
    phone 138****5678, address cut) unless the actor is a registrar or office head; `allowed`
    names the use-case functions the actor may call on it now (for buttons)."""

    number: str
    kind: str
    state: str
    state_label: str
    channel: str
    category: str | None
    subject: str
    document_no: str | None
    applicant: dict[str, Any]
    applicant_type: str | None
    delivery_form: str | None
    delivery_way: str | None
    submitted_at: datetime
    received_on: date | None
    due_on: date | None
    due_provisional: bool
    department_id: int | None
    department: str | None
    handler: str | None
    answer_type: str | None
    answer_reason: str | None
    answer_text: str | None
    answer_author: str | None
    answer_reviewer: str | None
    answered_on: date | None
    delivered_on: date | None
    delivered_how: str | None
    rating: str | None
    converted_from: str | None  # the 留言 number an application came from
    closed_at: datetime | None
    clocks: tuple[ClockView, ...]
    files: tuple[tuple[int, str, str], ...]  # (file id, purpose, filename)
    allowed: tuple[str, ...]


@dataclass(frozen=True)
class CaseResult:
    """A case after a use-case. `notices`: CaseEvent ids the edge hands to cases.notify after
    its commit. `query_code`: the 查询码, only from intake (shown once, stored hashed)."""

    case: CaseView
    notices: tuple[int, ...] = ()
    query_code: str | None = None


@dataclass(frozen=True)
class CitizenCaseView:
    """What a citizen may see of his case (no staff names, no personal data)."""

    number: str
    kind: str
    state: str
    state_label: str
    category: str | None
    subject: str
    submitted_at: datetime
    received_on: date | None
    due_on: date | None
    due_provisional: bool
    answer_type: str | None
    answer_text: str | None  # only once reviewed and delivered / replied
    rating: str | None
    can_rate: bool


@dataclass(frozen=True)
class QueueRow:
    """A case in a work queue: sorted by due date; `overdue` / `due_soon` (within 2 working
    days) flag it."""

    number: str
    kind: str
    state: str
    state_label: str
    category: str | None
    subject: str
    department: str | None
    handler: str | None
    received_on: date | None
    due_on: date | None
    due_provisional: bool
    overdue: bool
    due_soon: bool


@dataclass(frozen=True)
class DepartmentView:
    """A department and how many open cases it holds."""

    id: int
    name: str
    active: bool
    open_cases: int


CITIZEN = "citizen"  # the actor of a citizen's own steps (no openid in the audit log)
REGISTRARS = frozenset({CaseRole.REGISTRAR.value, CaseRole.OFFICE_HEAD.value})
HEADS = frozenset({CaseRole.OFFICE_HEAD.value})
HANDLERS = frozenset({CaseRole.HANDLER.value})
DUE_SOON_DAYS = 2
# a staff-given receipt date older than this is refused: a typo (last year) or a backdated
# case would get a nonsense deadline and move between the yearly report's years
RECEIPT_MAX_AGE_DAYS = 60

# use-case -> (roles that may call it, does a handler have to be the case's own)
RULES: dict[str, frozenset[str]] = {
    "confirm_receipt": REGISTRARS, "request_correction": REGISTRARS,
    "receive_correction": REGISTRARS, "assign": REGISTRARS,
    "start_consultation": HANDLERS | HEADS, "end_consultation": HANDLERS | HEADS,
    "request_extension": HANDLERS, "decide_extension": HEADS,
    "draft_answer": HANDLERS, "submit_answer": HANDLERS, "review_answer": HEADS,
    "record_delivery": REGISTRARS | HANDLERS, "archive": REGISTRARS, "close_application": HEADS,
    "accept_message": REGISTRARS, "reject_message": REGISTRARS,
    "convert_message_to_application": REGISTRARS, "transfer_message": REGISTRARS,
    "sign_message": HANDLERS, "return_message": HANDLERS, "draft_reply": HANDLERS,
    "submit_reply": HANDLERS, "review_reply": HEADS, "close_message": REGISTRARS,
    "redo_message": REGISTRARS,
}
# handler steps a department colleague may take before anyone is the case's handler
DEPARTMENT_STEPS = frozenset({"sign_message", "return_message", "start_consultation",
                              "request_extension", "draft_answer"})


# --- helpers --------------------------------------------------------------------------------


def _today(now: datetime) -> date:
    return now.astimezone(SHANGHAI).date() if now.tzinfo else now.date()


def _aware(at: datetime | None) -> datetime | None:
    return at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at


def _roles(actor: Staff) -> set[str]:
    if actor is None or not actor.active:
        return set()
    return {r for r in (actor.case_roles or []) if r in {c.value for c in CaseRole}}


def _read_roles(actor: Staff) -> set[str]:
    """The roles an account READS cases with: its casework roles, and for an active admin
    the office head's view (every case, unmasked, file reads audited). Steps never use this:
    an admin takes a step only with a casework role of its own."""
    roles = _roles(actor)
    if actor is not None and actor.active and actor.role == Role.ADMIN.value:
        roles = roles | {CaseRole.OFFICE_HEAD.value}
    return roles


def _allowed_from(case: Case) -> dict[str, frozenset[str]]:
    return (applications.ALLOWED_FROM if case.kind == CaseKind.APPLICATION
            else messages.ALLOWED_FROM)


def _may(actor: Staff, case: Case, step: str) -> bool:
    """May `actor` take `step` on `case` (role, department, own case, four eyes)?"""
    roles = _roles(actor) & RULES[step]
    if not roles:
        return False
    if roles <= HANDLERS:  # only as a handler: the department's, and the case's own
        if case.department_id is None or actor.department_id != case.department_id:
            return False
        if case.handler not in (None, actor.name):
            return False
        if case.handler is None and step not in DEPARTMENT_STEPS | {"record_delivery"}:
            return False
    if step in ("review_answer", "review_reply") and actor.name == case.answer_author:
        return False
    if step == "decide_extension" and actor.name == case.handler:
        return False
    return True


def _authorise(actor: Staff, case: Case, step: str) -> None:
    if not _may(actor, case, step):
        if step in ("review_answer", "review_reply") and actor.name == case.answer_author:
            raise PermissionDenied("答复须由拟稿人以外的人审核（先审查后发布）")
        if step == "decide_extension" and actor.name == case.handler:
            raise PermissionDenied("延期须由承办人以外的公开办负责人批准")
        raise PermissionDenied(f"{actor.name} 无权对 {case.number} 执行 {step}")


def _check_state(case: Case, step: str) -> None:
    if case.state not in _allowed_from(case)[step]:
        raise InvalidTransition(
            f"{case.number} 处于“{case_state_label(case.kind, case.state)}”，不能执行 {step}")


def _load(session: Session, number: str, kind: str | None = None) -> Case:
    """A case by number, locked FOR UPDATE; NotFound for a wrong number or kind."""
    wanted = numbers.normalise(number) or number
    case = session.scalar(select(Case).where(Case.number == wanted).with_for_update())
    if case is None or (kind is not None and case.kind != kind):
        raise NotFound(f"no case {number}")
    return case


def _step(session: Session, actor: Staff, number: str, step: str,
          kind: str | None = None) -> Case:
    """Load, authorise and check the state for one staff step."""
    case = _load(session, number, kind)
    _authorise(actor, case, step)
    _check_state(case, step)
    return case


def _event(session: Session, case: Case, actor: str, action: str, now: datetime,
           to_state: str | None = None, notify: str | None = None,
           **detail: Any) -> CaseEvent:
    """Record a step on the timeline and in the audit log (and move the case's state)."""
    from_state = case.state
    if to_state is not None:
        case.state = to_state
    case.updated_at = to_utc_naive(now)
    clean = {k: (v.isoformat() if isinstance(v, date) else v) for k, v in detail.items()
             if v is not None}
    if notify:
        clean["notify"] = notify
    event = CaseEvent(case_id=case.id, at=to_utc_naive(now), actor=actor, action=action,
                      from_state=from_state, to_state=case.state, detail=clean)
    session.add(event)
    # citizens' words and file names (often "<name>_<id number>.jpg") stay on the timeline,
    # which only casework roles read; the audit log (content reviewers too) gets a count
    audited = {k: v for k, v in clean.items() if k not in ("text", "what")}
    if "files" in audited:
        audited["files"] = len(audited["files"] or ())
    audit(session, actor, f"case.{action}", now, object_type="case", object_id=case.number,
          from_state=from_state, to_state=case.state, **audited)
    session.flush()
    return event


def _result(session: Session, actor: Staff | None, case: Case, events: list[CaseEvent],
            query_code: str | None = None) -> CaseResult:
    notices = tuple(e.id for e in events if e.detail.get("notify"))
    return CaseResult(case=_view(session, actor, case), notices=notices, query_code=query_code)


def _mask_name(name: str) -> str:
    return name[:1] + "*" * max(len(name) - 1, 1) if name else ""


def _mask_middle(value: str, keep_start: int, keep_end: int) -> str:
    if len(value) <= keep_start + keep_end:
        return "*" * len(value)
    return value[:keep_start] + "*" * (len(value) - keep_start - keep_end) + value[-keep_end:]


def mask_applicant(applicant: dict[str, Any]) -> dict[str, Any]:
    """Personal data as roles that do not need it see it."""
    masked = dict(applicant)
    for key in ("name", "contact_person"):
        if masked.get(key):
            masked[key] = _mask_name(str(masked[key]))
    if masked.get("id_number"):
        masked["id_number"] = _mask_middle(str(masked["id_number"]), 4, 4)
    if masked.get("phone"):
        masked["phone"] = _mask_middle(str(masked["phone"]), 3, 4)
    if masked.get("email"):
        user, _, domain = str(masked["email"]).partition("@")
        masked["email"] = f"{user[:1]}***@{domain}"
    if masked.get("address"):
        masked["address"] = str(masked["address"])[:6] + "****"
    return masked


def _clock_view(c: CaseClock) -> ClockView:
    return ClockView(kind=c.kind, started_on=c.started_on, working_days=c.working_days,
                     paused_days=c.paused_days or 0, due_on=c.due_on,
                     provisional=bool(c.provisional), status=c.status, ended_on=c.ended_on)


def _view(session: Session, actor: Staff | None, case: Case) -> CaseView:
    clocks = session.scalars(select(CaseClock).where(CaseClock.case_id == case.id)
                             .order_by(CaseClock.id))
    files = session.execute(select(CaseFile.id, CaseFile.purpose, CaseFile.filename)
                            .where(CaseFile.case_id == case.id).order_by(CaseFile.id))
    department = (session.get(Department, case.department_id)
                  if case.department_id is not None else None)
    converted = (session.scalar(select(Case.number).where(Case.id == case.converted_from))
                 if case.converted_from else None)
    # unmasked for registrars, office heads, admins and the case's own handler
    full = actor is not None and (bool(_read_roles(actor) & REGISTRARS) or (
        bool(_roles(actor) & HANDLERS) and case.handler == actor.name
        and case.department_id is not None and actor.department_id == case.department_id))
    allowed = tuple(step for step, states in _allowed_from(case).items()
                    if step in RULES and case.state in states and actor is not None
                    and _may(actor, case, step))
    return CaseView(
        number=case.number, kind=case.kind, state=case.state,
        state_label=case_state_label(case.kind, case.state), channel=case.channel,
        category=case.category, subject=case.subject, document_no=case.document_no,
        applicant=dict(case.applicant or {}) if full else mask_applicant(case.applicant or {}),
        applicant_type=case.applicant_type, delivery_form=case.delivery_form,
        delivery_way=case.delivery_way, submitted_at=_aware(case.submitted_at),
        received_on=case.received_on, due_on=case.due_on,
        due_provisional=bool(case.due_provisional), department_id=case.department_id,
        department=department.name if department else None, handler=case.handler,
        answer_type=case.answer_type, answer_reason=case.answer_reason,
        answer_text=case.answer_text, answer_author=case.answer_author,
        answer_reviewer=case.answer_reviewer, answered_on=case.answered_on,
        delivered_on=case.delivered_on, delivered_how=case.delivered_how, rating=case.rating,
        converted_from=converted, closed_at=_aware(case.closed_at),
        clocks=tuple(_clock_view(c) for c in clocks),
        files=tuple((fid, purpose, name) for fid, purpose, name in files), allowed=allowed)


def _new_case(session: Session, now: datetime, *, kind: str, state: str, channel: str,
              openid: str | None, applicant: dict[str, Any], subject: str,
              **fields: Any) -> tuple[Case, str]:
    today = _today(now)
    number = numbers.next_number(session, kind, today.year)
    code = numbers.new_query_code()
    at = to_utc_naive(now)
    case = Case(number=number, kind=kind, state=state, channel=channel, openid=openid or None,
                query_code_hash=numbers.hash_query_code(number, code), applicant=applicant,
                subject=subject, submitted_at=at, created_at=at, updated_at=at,
                due_provisional=False, **fields)
    session.add(case)
    session.flush()
    return case, code


def _store_files(session: Session, settings: Settings, case: Case, files: tuple[Upload, ...],
                 now: datetime) -> list[str]:
    problems = [p for f in files for p in applications.check_upload(
        settings, f.filename, f.content_type, f.data, f.purpose)]
    if problems:
        raise CaseInvalid(problems)
    stored = []
    for f in files:
        row = applications.store_upload(settings, case.id, f.filename, f.content_type, f.data,
                                        f.purpose, now)
        session.add(row)
        stored.append(row.filename)
    return stored


def _open_answer_clock(session: Session, settings: Settings, cal: WorkCalendar, case: Case,
                       received_on: date) -> None:
    case.received_on = received_on
    clocks = clock.clocks_of(session, case)
    answer = clock.current(clocks, ClockKind.ANSWER)
    if answer is None:
        clocks.append(clock.start(session, cal, case, ClockKind.ANSWER.value, received_on,
                                  settings.cases.application_days))
    else:
        clock.restart(answer, cal, received_on)
    clock.sync_case_due(case, clocks)


def _check_receipt_date(received_on: date, today: date) -> None:
    if received_on > today:
        raise CaseInvalid(["received_on: cannot be in the future"])
    if received_on < today - timedelta(days=RECEIPT_MAX_AGE_DAYS):
        raise CaseInvalid([f"received_on: more than {RECEIPT_MAX_AGE_DAYS} days ago "
                           "(a wrong year?)"])


def _check_daily_limit(session: Session, settings: Settings, openid: str | None,
                       now: datetime) -> None:
    """A citizen files at most [cases] max_new_per_day cases (留言 and applications together)
    per Asia/Shanghai day: each takes a tracking number and a place in the staff queues, and
    one chat link or account must not flood them. Counted in the database (exact)."""
    if not openid or settings.cases.max_new_per_day <= 0:
        return
    start = datetime.combine(_today(now), datetime.min.time(), tzinfo=SHANGHAI)
    filed = session.scalar(select(func.count()).select_from(Case).where(
        Case.openid == openid, Case.submitted_at >= to_utc_naive(start))) or 0
    if filed >= settings.cases.max_new_per_day:
        raise CaseInvalid([f"limit: at most {settings.cases.max_new_per_day} submissions a "
                           "day; please try again tomorrow or call 12345"])


# --- 依申请公开: intake ----------------------------------------------------------------------


def create_application(session: Session, settings: Settings, now: datetime, *, channel: str,
                       openid: str | None, applicant: dict[str, Any], applicant_type: str,
                       subject: str, document_no: str | None, delivery_form: str,
                       delivery_way: str, files: tuple[Upload, ...] = ()) -> CaseResult:
    """A citizen's online application (H5 form, channel "h5"). `applicant` holds the art.-29
    fields: name (or organisation), id_type, id_number, phone, address, email (optional).
    State registered, received_on None: the receipt date is set when a registrar confirms
    receipt (art. 31), which starts the answer clock. Returns the number and the 查询码."""
    if channel in STAFF_CHANNELS:
        raise CaseInvalid([f"channel: {channel} applications are registered by staff"])
    clean = applications.check_intake(applicant, applicant_type, subject, document_no,
                                      delivery_form, delivery_way)
    if not any(f.purpose == "identity_proof" for f in files):
        raise CaseInvalid(["files: a proof of identity is required (art. 29)"])
    _check_daily_limit(session, settings, openid, now)
    case, code = _new_case(session, now, kind=CaseKind.APPLICATION.value,
                           state=ApplicationState.REGISTERED.value, channel=channel,
                           openid=openid, applicant=clean, subject=(subject or "").strip(),
                           applicant_type=applicant_type, document_no=document_no or None,
                           delivery_form=delivery_form, delivery_way=delivery_way)
    stored = _store_files(session, settings, case, files, now)
    event = _event(session, case, CITIZEN, "submitted", now, channel=channel, files=stored)
    event.from_state = None
    return _result(session, None, case, [], query_code=code)


def register_application(session: Session, settings: Settings, actor: Staff, now: datetime, *,
                         channel: str, received_on: date, applicant: dict[str, Any],
                         applicant_type: str, subject: str, document_no: str | None,
                         delivery_form: str, delivery_way: str, openid: str | None = None,
                         files: tuple[Upload, ...] = ()) -> CaseResult:
    """Registrar: a letter, fax, e-mail or in-person application (bot.vocab.STAFF_CHANNELS)
    with its art.-31 receipt date (in person: that day; post: the day signed for; fax /
    e-mail: the day both sides confirmed). State reviewing, answer clock running from
    received_on. The 查询码 is returned for the receipt slip."""
    if not _roles(actor) & REGISTRARS:
        raise PermissionDenied(f"{actor.name} 不是登记员")
    if channel not in STAFF_CHANNELS:
        raise CaseInvalid([f"channel: one of {', '.join(STAFF_CHANNELS)}"])
    _check_receipt_date(received_on, _today(now))
    clean = applications.check_intake(applicant, applicant_type, subject, document_no,
                                      delivery_form, delivery_way)
    cal = clock.work_calendar(session, now)
    case, code = _new_case(session, now, kind=CaseKind.APPLICATION.value,
                           state=ApplicationState.REGISTERED.value, channel=channel,
                           openid=openid, applicant=clean, subject=(subject or "").strip(),
                           applicant_type=applicant_type, document_no=document_no or None,
                           delivery_form=delivery_form, delivery_way=delivery_way)
    stored = _store_files(session, settings, case, files, now)
    _open_answer_clock(session, settings, cal, case, received_on)
    event = _event(session, case, actor.name, "registered", now,
                   ApplicationState.REVIEWING.value, notify=CaseNotice.RECEIVED.value,
                   channel=channel, received_on=received_on, due_on=case.due_on, files=stored)
    event.from_state = None
    return _result(session, actor, case, [event], query_code=code)


def confirm_receipt(session: Session, settings: Settings, actor: Staff, number: str,
                    now: datetime, received_on: date | None = None) -> CaseResult:
    """Registrar: confirm an online application's receipt (registered -> reviewing); the
    receipt date defaults to today, starts the answer clock; notice "received"."""
    case = _step(session, actor, number, "confirm_receipt", CaseKind.APPLICATION)
    received_on = received_on or _today(now)
    _check_receipt_date(received_on, _today(now))
    if received_on < to_local_naive(case.submitted_at).date():
        raise CaseInvalid(["received_on: before the application was submitted"])
    _open_answer_clock(session, settings, clock.work_calendar(session, now), case, received_on)
    event = _event(session, case, actor.name, "receipt_confirmed", now,
                   ApplicationState.REVIEWING.value, notify=CaseNotice.RECEIVED.value,
                   received_on=received_on, due_on=case.due_on)
    return _result(session, actor, case, [event])


def request_correction(session: Session, settings: Settings, actor: Staff, number: str,
                       now: datetime, *, what: str, limit_days: int | None = None) -> CaseResult:
    """Registrar or office head: the 补正 notice (art. 30) -- once per case, within
    [cases] correction_notice_days working days of receipt (refused after). reviewing ->
    correction; the answer clock pauses; a correction clock of `limit_days` (default
    [cases] correction_limit_days) starts; notice "correction" with `what` and the date."""
    case = _step(session, actor, number, "request_correction", CaseKind.APPLICATION)
    today = _today(now)
    if not (what or "").strip():
        raise CaseInvalid(["what: say everything the applicant must correct (art. 30)"])
    days = limit_days if limit_days is not None else settings.cases.correction_limit_days
    if not 1 <= days <= 60:
        raise CaseInvalid(["limit_days: 1..60 working days"])
    clocks = clock.clocks_of(session, case)
    if any(c.kind == ClockKind.CORRECTION for c in clocks):
        raise InvalidTransition(f"{case.number}: 补正只能告知一次（条例第三十条）")
    cal = clock.work_calendar(session, now)
    notice_by = cal.add(case.received_on, settings.cases.correction_notice_days).on
    if today > notice_by:
        raise InvalidTransition(f"{case.number}: 补正告知期限 {notice_by.isoformat()} 已过")
    answer = clock.current(clocks, ClockKind.ANSWER)
    if answer is not None:
        clock.pause(answer, today)
    clocks.append(clock.start(session, cal, case, ClockKind.CORRECTION.value, today, days))
    clock.sync_case_due(case, clocks)
    event = _event(session, case, actor.name, "correction_requested", now,
                   ApplicationState.CORRECTION.value, notify=CaseNotice.CORRECTION.value,
                   what=what.strip(), limit_days=days, due_on=case.due_on)
    return _result(session, actor, case, [event])


def submit_correction(session: Session, settings: Settings, openid: str, number: str,
                      now: datetime, *, text: str, files: tuple[Upload, ...] = ()) -> CaseResult:
    """Citizen (own openid): send the correction online; recorded on the timeline for the
    registrar, who confirms its receipt with receive_correction (art. 31)."""
    case = _load(session, number, CaseKind.APPLICATION)
    if not openid or case.openid != openid:
        raise NotFound(f"no case {number}")
    _check_state(case, "submit_correction")
    if not (text or "").strip() and not files:
        raise CaseInvalid(["text: say what is corrected, or attach a file"])
    files = tuple(Upload(f.filename, f.content_type, f.data, "correction") for f in files)
    stored = _store_files(session, settings, case, files, now)
    _event(session, case, CITIZEN, "correction_submitted", now, text=(text or "").strip()[:2000],
           files=stored)
    return _result(session, None, case, [])


def receive_correction(session: Session, settings: Settings, actor: Staff, number: str,
                       now: datetime, *, received_on: date | None = None,
                       note: str = "") -> CaseResult:
    """Registrar: the correction arrived (default today): correction -> reviewing; the
    correction clock is done and the answer period restarts from `received_on` (20 days)."""
    case = _step(session, actor, number, "receive_correction", CaseKind.APPLICATION)
    received_on = received_on or _today(now)
    _check_receipt_date(received_on, _today(now))
    cal = clock.work_calendar(session, now)
    clocks = clock.clocks_of(session, case)
    correction = clock.current(clocks, ClockKind.CORRECTION)
    if correction is not None:
        if received_on < correction.started_on:
            raise CaseInvalid(["received_on: before the correction was asked for"])
        clock.finish(correction, received_on)
    answer = clock.current(clocks, ClockKind.ANSWER)
    if answer is not None:
        clock.restart(answer, cal, received_on)
    clock.sync_case_due(case, clocks)
    event = _event(session, case, actor.name, "correction_received", now,
                   ApplicationState.REVIEWING.value, received_on=received_on,
                   due_on=case.due_on, note=note or None)
    return _result(session, actor, case, [event])


# --- 依申请公开: handling ---------------------------------------------------------------------


def _department(session: Session, department_id: int) -> Department:
    department = session.get(Department, department_id)
    if department is None or not department.active:
        raise NotFound(f"no active department {department_id}")
    return department


def _handler_of(session: Session, name: str, department_id: int) -> Staff:
    staff = session.scalar(select(Staff).where(Staff.name == name))
    if (staff is None or not staff.active or CaseRole.HANDLER.value not in (staff.case_roles or [])
            or staff.department_id != department_id):
        raise CaseInvalid([f"handler: {name} is not a handler of that department"])
    return staff


def assign(session: Session, settings: Settings, actor: Staff, number: str, now: datetime, *,
           department_id: int, handler: str | None = None) -> CaseResult:
    """Registrar or office head: an application under review goes to a department
    (reviewing -> handling), optionally to a named handler of that department; also
    reassigns a case in handling. Without a handler, the first handler of the department who
    acts on it becomes its handler."""
    case = _step(session, actor, number, "assign", CaseKind.APPLICATION)
    department = _department(session, department_id)
    if handler:
        _handler_of(session, handler, department.id)
    if case.received_on is None:
        raise InvalidTransition(f"{case.number}: 尚未确认收到")
    case.department_id, case.handler = department.id, handler or None
    event = _event(session, case, actor.name, "assigned", now, ApplicationState.HANDLING.value,
                   department=department.name, handler=handler or None)
    return _result(session, actor, case, [event])


def _claim(case: Case, actor: Staff) -> None:
    """A department handler's first step makes him the case's handler."""
    if case.handler is None and CaseRole.HANDLER.value in _roles(actor) \
            and actor.department_id == case.department_id:
        case.handler = actor.name


def start_consultation(session: Session, settings: Settings, actor: Staff, number: str,
                       now: datetime, *, third_party: str, note: str = "") -> CaseResult:
    """Handler (or office head): ask a third party (art. 32): handling -> consultation; the
    answer clock pauses; a consultation clock of [cases] consultation_days starts."""
    case = _step(session, actor, number, "start_consultation", CaseKind.APPLICATION)
    if not (third_party or "").strip():
        raise CaseInvalid(["third_party: name the third party asked"])
    _claim(case, actor)
    today = _today(now)
    cal = clock.work_calendar(session, now)
    clocks = clock.clocks_of(session, case)
    answer = clock.current(clocks, ClockKind.ANSWER)
    if answer is not None:
        clock.pause(answer, today)
    clocks.append(clock.start(session, cal, case, ClockKind.CONSULTATION.value, today,
                              settings.cases.consultation_days))
    clock.sync_case_due(case, clocks)
    event = _event(session, case, actor.name, "consultation_started", now,
                   ApplicationState.CONSULTATION.value, third_party=third_party.strip(),
                   note=note or None, due_on=case.due_on)
    return _result(session, actor, case, [event])


def end_consultation(session: Session, settings: Settings, actor: Staff, number: str,
                     now: datetime, *, outcome: str) -> CaseResult:
    """Handler (or office head): the third party answered (or its time ran out): back to
    handling; the working days the consultation took are added to the answer clock's
    paused_days (not counted, art. 33)."""
    case = _step(session, actor, number, "end_consultation", CaseKind.APPLICATION)
    today = _today(now)
    cal = clock.work_calendar(session, now)
    clocks = clock.clocks_of(session, case)
    consultation = clock.current(clocks, ClockKind.CONSULTATION)
    if consultation is not None:
        clock.finish(consultation, today)
    answer = clock.current(clocks, ClockKind.ANSWER)
    added = clock.resume(answer, cal, today) if answer is not None else 0
    clock.sync_case_due(case, clocks)
    event = _event(session, case, actor.name, "consultation_ended", now,
                   ApplicationState.HANDLING.value, outcome=(outcome or "").strip() or None,
                   paused_days=added, due_on=case.due_on)
    return _result(session, actor, case, [event])


def _extension_events(session: Session, case: Case) -> list[CaseEvent]:
    return list(session.scalars(select(CaseEvent).where(
        CaseEvent.case_id == case.id, CaseEvent.action.in_(
            ("extension_requested", "extension_approved", "extension_refused")))
        .order_by(CaseEvent.id)))


def request_extension(session: Session, settings: Settings, actor: Staff, number: str,
                      now: datetime, *, reason: str) -> CaseResult:
    """Handler: ask for an extension (applications: [cases] extension_days, once; 留言: the
    category's limit again, once). Recorded as pending for an office head's decision."""
    case = _step(session, actor, number, "request_extension")
    if not (reason or "").strip():
        raise CaseInvalid(["reason: say why the extension is needed"])
    history = _extension_events(session, case)
    if any(e.action == "extension_approved" for e in history):
        raise InvalidTransition(f"{case.number}: 已延期一次，不能再次延期")
    if history and history[-1].action == "extension_requested":
        raise InvalidTransition(f"{case.number}: 已有待批准的延期申请")
    _claim(case, actor)
    days = (settings.cases.extension_days if case.kind == CaseKind.APPLICATION
            else messages.reply_days(settings, case.category))
    event = _event(session, case, actor.name, "extension_requested", now,
                   reason=reason.strip(), days=days)
    return _result(session, actor, case, [event])


def decide_extension(session: Session, settings: Settings, actor: Staff, number: str,
                     now: datetime, *, approve: bool, note: str = "") -> CaseResult:
    """Office head who is not the case's handler: approve (the answer / reply clock gets the
    extra working days; notice "extended" with the new due date) or refuse the pending
    request."""
    case = _step(session, actor, number, "decide_extension")
    history = _extension_events(session, case)
    if not history or history[-1].action != "extension_requested":
        raise InvalidTransition(f"{case.number}: 没有待批准的延期申请")
    request = history[-1]
    if request.actor == actor.name:
        raise PermissionDenied("延期须由申请人以外的公开办负责人批准")
    if not approve:
        event = _event(session, case, actor.name, "extension_refused", now, note=note or None)
        return _result(session, actor, case, [event])
    days = int(request.detail.get("days") or settings.cases.extension_days)
    cal = clock.work_calendar(session, now)
    clocks = clock.clocks_of(session, case)
    main = clock.current(clocks, clock.main_kind(case))
    if main is None:
        raise InvalidTransition(f"{case.number}: 没有在计的答复期限")
    clock.extend(main, cal, days)
    clock.sync_case_due(case, clocks)
    event = _event(session, case, actor.name, "extension_approved", now,
                   notify=CaseNotice.EXTENDED.value, days=days, due_on=main.due_on,
                   reason=request.detail.get("reason"), note=note or None)
    return _result(session, actor, case, [event])


def _template_fields(case: Case, today: date) -> dict[str, str]:
    received = case.received_on or today
    return {"applicant": str((case.applicant or {}).get("name") or "申请人"),
            "received": f"{received.year}年{received.month}月{received.day}日",
            "number": case.number, "subject": case.subject or case.document_no or "",
            "date": f"{today.year}年{today.month}月{today.day}日"}


def draft_answer(session: Session, settings: Settings, actor: Staff, number: str, now: datetime,
                 *, answer_type: str, reason: str | None = None,
                 text: str | None = None) -> CaseResult:
    """Handler: draft (or redraft) the answer: handling | answer_drafted -> answer_drafted.
    `answer_type` one of bot.vocab.ANSWER_TYPES, `reason` one of its ANSWER_REASONS (required
    where the type has reasons); `text` defaults to cases.templates' document for the type."""
    case = _step(session, actor, number, "draft_answer", CaseKind.APPLICATION)
    applications.check_answer(answer_type, reason)
    _claim(case, actor)
    body = (text or "").strip() or templates.render(answer_type, reason,
                                                     _template_fields(case, _today(now)))
    case.answer_type, case.answer_reason, case.answer_text = answer_type, reason or None, body
    case.answer_author, case.answer_reviewer = actor.name, None
    event = _event(session, case, actor.name, "answer_drafted", now,
                   ApplicationState.ANSWER_DRAFTED.value, answer_type=answer_type,
                   reason=reason or None)
    return _result(session, actor, case, [event])


def submit_answer(session: Session, settings: Settings, actor: Staff, number: str,
                  now: datetime) -> CaseResult:
    """Handler: answer_drafted -> answer_review."""
    case = _step(session, actor, number, "submit_answer", CaseKind.APPLICATION)
    event = _event(session, case, actor.name, "answer_submitted", now,
                   ApplicationState.ANSWER_REVIEW.value)
    return _result(session, actor, case, [event])


def _send_back(session: Session, actor: Staff, case: Case, action: str, state: str,
               note: str, now: datetime) -> CaseResult:
    """A reviewer returns a draft answer or reply to its author, saying what to change."""
    if not (note or "").strip():
        raise CaseInvalid(["note: say what to change"])
    event = _event(session, case, actor.name, action, now, state, note=note.strip())
    return _result(session, actor, case, [event])


def review_answer(session: Session, settings: Settings, actor: Staff, number: str, now: datetime,
                  *, approve: bool, note: str = "") -> CaseResult:
    """Office head who did not draft it (先审查后发布): approve (answer_review -> delivering,
    answered_on today) or send back (-> answer_drafted, with the note)."""
    case = _step(session, actor, number, "review_answer", CaseKind.APPLICATION)
    if not approve:
        return _send_back(session, actor, case, "answer_returned",
                          ApplicationState.ANSWER_DRAFTED.value, note, now)
    case.answer_reviewer, case.answered_on = actor.name, _today(now)
    event = _event(session, case, actor.name, "answer_approved", now,
                   ApplicationState.DELIVERING.value, note=note or None)
    return _result(session, actor, case, [event])


def record_delivery(session: Session, settings: Settings, actor: Staff, number: str,
                    now: datetime, *, how: str, delivered_on: date | None = None) -> CaseResult:
    """Registrar or handler: 送达 -- how (bot.vocab.DELIVERY_WAYS) and when (default today);
    the answer clock is done; notice "answered" (with the answer when it goes by WeChat)."""
    case = _step(session, actor, number, "record_delivery", CaseKind.APPLICATION)
    if case.delivered_on is not None:
        raise InvalidTransition(f"{case.number}: 已送达")
    if how not in DELIVERY_WAYS:
        raise CaseInvalid([f"how: one of {'、'.join(DELIVERY_WAYS)}"])
    today = _today(now)
    delivered_on = delivered_on or today
    if delivered_on > today or (case.answered_on and delivered_on < case.answered_on):
        raise CaseInvalid(["delivered_on: between the answer's approval and today"])
    case.delivered_on, case.delivered_how = delivered_on, how
    clocks = clock.clocks_of(session, case)
    answer = clock.current(clocks, ClockKind.ANSWER)
    late = bool(answer and delivered_on > answer.due_on)
    clock.finish_all(clocks, delivered_on)
    clock.sync_case_due(case, clocks)
    event = _event(session, case, actor.name, "delivered", now,
                   notify=CaseNotice.ANSWERED.value, how=how, delivered_on=delivered_on,
                   late=late or None)
    return _result(session, actor, case, [event])


def archive(session: Session, settings: Settings, actor: Staff, number: str,
            now: datetime) -> CaseResult:
    """Registrar: a delivered application is archived (delivering -> archived)."""
    case = _step(session, actor, number, "archive", CaseKind.APPLICATION)
    if case.delivered_on is None:
        raise InvalidTransition(f"{case.number}: 尚未送达，不能归档")
    case.closed_at = to_utc_naive(now)
    event = _event(session, case, actor.name, "archived", now, ApplicationState.ARCHIVED.value)
    return _result(session, actor, case, [event])


def _close_as_other(session: Session, case: Case, actor: str, now: datetime, reason: str,
                    note: str | None, action: str) -> CaseEvent:
    today = _today(now)
    clocks = clock.clocks_of(session, case)
    for c in clocks:
        if c.status in clock.OPEN:
            lapsed = c.kind == ClockKind.CORRECTION and reason == "逾期不补正"
            clock.finish(c, today, ClockStatus.LAPSED.value if lapsed else ClockStatus.DONE.value)
    clock.sync_case_due(case, clocks)
    case.answer_type, case.answer_reason = "其他处理", reason
    case.answered_on, case.closed_at = today, to_utc_naive(now)
    return _event(session, case, actor, action, now, ApplicationState.CLOSED.value,
                  notify=CaseNotice.CLOSED.value, answer_type="其他处理", reason=reason,
                  note=note)


def close_application(session: Session, settings: Settings, actor: Staff, number: str,
                      now: datetime, *, reason: str, note: str = "") -> CaseResult:
    """Office head: end an open application as 其他处理 with one of its reasons (逾期不缴费,
    其他 ...); every clock ends; notice "closed". (逾期不补正 is done by cases.jobs.)"""
    case = _step(session, actor, number, "close_application", CaseKind.APPLICATION)
    if reason not in ANSWER_REASONS["其他处理"]:
        raise CaseInvalid([f"reason: one of {'、'.join(ANSWER_REASONS['其他处理'])}"])
    if reason == "其他" and not (note or "").strip():
        raise CaseInvalid(["note: say why (其他)"])
    event = _close_as_other(session, case, actor.name, now, reason, note or None, "closed")
    return _result(session, actor, case, [event])


def lapse_correction(session: Session, case: Case, now: datetime) -> CaseEvent:
    """The alert job: no correction by its limit (art. 30) -- closed as 其他处理/逾期不补正."""
    return _close_as_other(session, case, "system", now, "逾期不补正", None,
                           "correction_lapsed")


# --- 网民留言 --------------------------------------------------------------------------------


def create_message(session: Session, settings: Settings, now: datetime, *, channel: str,
                   openid: str | None, category: str, content: str,
                   contact: dict[str, Any] | None = None) -> CaseResult:
    """A citizen's 留言 (chat "留言 <内容>" with category 咨询 by default, or the H5 form):
    state submitted, received_on today; notice "received" with the number."""
    if channel not in ("chat", "h5"):
        raise CaseInvalid(["channel: chat or h5"])
    text, clean = messages.check_message(settings, category, content, contact)
    _check_daily_limit(session, settings, openid, now)
    case, code = _new_case(session, now, kind=CaseKind.MESSAGE.value,
                           state=MessageState.SUBMITTED.value, channel=channel, openid=openid,
                           applicant=clean, subject=text, category=category,
                           received_on=_today(now))
    event = _event(session, case, CITIZEN, "submitted", now, notify=CaseNotice.RECEIVED.value,
                   channel=channel, category=category)
    event.from_state = None
    return _result(session, None, case, [event], query_code=code)


def accept_message(session: Session, settings: Settings, actor: Staff, number: str,
                   now: datetime, *, category: str | None = None) -> CaseResult:
    """Registrar: submitted -> accepted (optionally correcting the category); the reply clock
    ([cases] message_limits[category]) starts today; notice "accepted"."""
    case = _step(session, actor, number, "accept_message", CaseKind.MESSAGE)
    if category is not None:
        if category not in messages.limits(settings):
            raise CaseInvalid([f"category: one of {'、'.join(messages.limits(settings))}"])
        case.category = category
    cal = clock.work_calendar(session, now)
    clocks = clock.clocks_of(session, case)
    clocks.append(clock.start(session, cal, case, ClockKind.REPLY.value, _today(now),
                              messages.reply_days(settings, case.category)))
    clock.sync_case_due(case, clocks)
    event = _event(session, case, actor.name, "accepted", now, MessageState.ACCEPTED.value,
                   notify=CaseNotice.ACCEPTED.value, category=case.category, due_on=case.due_on)
    return _result(session, actor, case, [event])


def reject_message(session: Session, settings: Settings, actor: Staff, number: str,
                   now: datetime, *, reason: str) -> CaseResult:
    """Registrar: submitted -> rejected (不予受理) with the reason; notice "rejected"."""
    case = _step(session, actor, number, "reject_message", CaseKind.MESSAGE)
    if not (reason or "").strip():
        raise CaseInvalid(["reason: required (不予受理 must say why)"])
    case.closed_at = to_utc_naive(now)
    event = _event(session, case, actor.name, "rejected", now, MessageState.REJECTED.value,
                   notify=CaseNotice.REJECTED.value, reason=reason.strip())
    return _result(session, actor, case, [event])


def transfer_message(session: Session, settings: Settings, actor: Staff, number: str,
                     now: datetime, *, department_id: int) -> CaseResult:
    """Registrar: accepted | returned -> transferred to a department; a sign-for clock of
    [cases] sign_for_days starts."""
    case = _step(session, actor, number, "transfer_message", CaseKind.MESSAGE)
    department = _department(session, department_id)
    case.department_id, case.handler = department.id, None
    cal = clock.work_calendar(session, now)
    clocks = clock.clocks_of(session, case)
    clocks.append(clock.start(session, cal, case, ClockKind.SIGN_FOR.value, _today(now),
                              settings.cases.sign_for_days))
    clock.sync_case_due(case, clocks)
    event = _event(session, case, actor.name, "transferred", now, MessageState.TRANSFERRED.value,
                   department=department.name, sign_by=clocks[-1].due_on)
    return _result(session, actor, case, [event])


def _end_sign_for(session: Session, case: Case, today: date) -> None:
    clocks = clock.clocks_of(session, case)
    sign_for = clock.current(clocks, ClockKind.SIGN_FOR)
    if sign_for is not None:
        clock.finish(sign_for, today)
    clock.sync_case_due(case, clocks)


def sign_message(session: Session, settings: Settings, actor: Staff, number: str,
                 now: datetime) -> CaseResult:
    """Handler of the department: transferred -> signed; he becomes the case's handler."""
    case = _step(session, actor, number, "sign_message", CaseKind.MESSAGE)
    case.handler = actor.name
    _end_sign_for(session, case, _today(now))
    event = _event(session, case, actor.name, "signed", now, MessageState.SIGNED.value)
    return _result(session, actor, case, [event])


def return_message(session: Session, settings: Settings, actor: Staff, number: str,
                   now: datetime, *, reason: str) -> CaseResult:
    """Handler of the department: transferred -> returned (not ours), for the registrar to
    transfer again."""
    case = _step(session, actor, number, "return_message", CaseKind.MESSAGE)
    if not (reason or "").strip():
        raise CaseInvalid(["reason: say why it is not this department's"])
    department_id = case.department_id
    _end_sign_for(session, case, _today(now))
    case.handler = None
    event = _event(session, case, actor.name, "returned", now, MessageState.RETURNED.value,
                   reason=reason.strip(), department_id=department_id)
    return _result(session, actor, case, [event])


def draft_reply(session: Session, settings: Settings, actor: Staff, number: str, now: datetime,
                *, text: str) -> CaseResult:
    """The case's handler: signed | handling | redo -> handling with the reply drafted."""
    case = _step(session, actor, number, "draft_reply", CaseKind.MESSAGE)
    body = (text or "").strip()
    if not body:
        raise CaseInvalid(["text: the reply is empty"])
    if len(body) > 4000:
        raise CaseInvalid(["text: at most 4000 characters"])
    case.answer_text, case.answer_author, case.answer_reviewer = body, actor.name, None
    event = _event(session, case, actor.name, "reply_drafted", now, MessageState.HANDLING.value)
    return _result(session, actor, case, [event])


def submit_reply(session: Session, settings: Settings, actor: Staff, number: str,
                 now: datetime) -> CaseResult:
    """The case's handler: handling (with a draft) -> reply_review."""
    case = _step(session, actor, number, "submit_reply", CaseKind.MESSAGE)
    if not case.answer_text or case.answer_author is None:
        raise InvalidTransition(f"{case.number}: 尚未拟写答复")
    event = _event(session, case, actor.name, "reply_submitted", now,
                   MessageState.REPLY_REVIEW.value)
    return _result(session, actor, case, [event])


def review_reply(session: Session, settings: Settings, actor: Staff, number: str, now: datetime,
                 *, approve: bool, note: str = "") -> CaseResult:
    """Office head who did not write it: approve (reply_review -> replied; the reply clock is
    done; notices "answered" and "visit") or send back (-> handling)."""
    case = _step(session, actor, number, "review_reply", CaseKind.MESSAGE)
    if not approve:
        return _send_back(session, actor, case, "reply_returned",
                          MessageState.HANDLING.value, note, now)
    today = _today(now)
    case.answer_reviewer, case.answered_on = actor.name, today
    clocks = clock.clocks_of(session, case)
    reply = clock.current(clocks, ClockKind.REPLY)
    late = bool(reply and today > reply.due_on)
    clock.finish_all(clocks, today)
    clock.sync_case_due(case, clocks)
    event = _event(session, case, actor.name, "replied", now, MessageState.REPLIED.value,
                   notify=CaseNotice.ANSWERED.value, late=late or None, note=note or None)
    visit = _event(session, case, "system", "visit", now, notify=CaseNotice.VISIT.value)
    return _result(session, actor, case, [event, visit])


def _citizen_view(case: Case, openid: str | None = None) -> CitizenCaseView:
    shown = (case.kind == CaseKind.APPLICATION and case.delivered_on is not None) or (
        case.kind == CaseKind.MESSAGE and case.answer_reviewer is not None
        and case.state in (MessageState.REPLIED, MessageState.VISITED, MessageState.CLOSED))
    closed = case.state == ApplicationState.CLOSED and case.kind == CaseKind.APPLICATION
    return CitizenCaseView(
        number=case.number, kind=case.kind, state=case.state,
        state_label=case_state_label(case.kind, case.state), category=case.category,
        subject=case.subject, submitted_at=_aware(case.submitted_at),
        received_on=case.received_on, due_on=case.due_on,
        due_provisional=bool(case.due_provisional),
        answer_type=case.answer_type if (shown or closed) else None,
        answer_text=case.answer_text if shown else None, rating=case.rating,
        can_rate=bool(openid and case.openid == openid and case.kind == CaseKind.MESSAGE
                      and case.state == MessageState.REPLIED))


def rate_case(session: Session, openid: str, number: str, rating: str,
              now: datetime) -> CitizenCaseView:
    """Citizen (own openid, a replied 留言): 回访 rating 满意 / 基本满意 / 不满意:
    replied -> visited. Raises NotFound for another's case, InvalidTransition when not
    awaiting a rating, CaseInvalid for another word."""
    case = _load(session, number, CaseKind.MESSAGE)
    if not openid or case.openid != openid:
        raise NotFound(f"no case {number}")
    word = messages.check_rating(rating)
    _check_state(case, "rate_case")
    case.rating = word
    _event(session, case, CITIZEN, "rated", now, MessageState.VISITED.value, rating=word)
    return _citizen_view(case, openid)


def close_message(session: Session, settings: Settings, actor: Staff, number: str,
                  now: datetime, *, note: str = "") -> CaseResult:
    """Registrar or office head: replied | visited -> closed (办结)."""
    case = _step(session, actor, number, "close_message", CaseKind.MESSAGE)
    case.closed_at = to_utc_naive(now)
    event = _event(session, case, actor.name, "closed", now, MessageState.CLOSED.value,
                   note=note or None, rating=case.rating)
    return _result(session, actor, case, [event])


def redo_message(session: Session, settings: Settings, actor: Staff, number: str,
                 now: datetime, *, reason: str) -> CaseResult:
    """Registrar or office head (e.g. after 不满意): replied | visited -> redo; the handler
    drafts a new reply (draft_reply); a new reply clock starts today."""
    case = _step(session, actor, number, "redo_message", CaseKind.MESSAGE)
    if not (reason or "").strip():
        raise CaseInvalid(["reason: say why the case is redone"])
    cal = clock.work_calendar(session, now)
    clocks = clock.clocks_of(session, case)
    clocks.append(clock.start(session, cal, case, ClockKind.REPLY.value, _today(now),
                              messages.reply_days(settings, case.category)))
    clock.sync_case_due(case, clocks)
    case.answer_reviewer, case.answered_on = None, None
    event = _event(session, case, actor.name, "redo", now, MessageState.REDO.value,
                   reason=reason.strip(), due_on=case.due_on, rating=case.rating)
    return _result(session, actor, case, [event])


def convert_message_to_application(session: Session, settings: Settings, actor: Staff,
                                   number: str, now: datetime, *,
                                   applicant_type: str = "自然人") -> CaseResult:
    """Registrar: a 留言 that is really a disclosure application (submitted | accepted |
    returned) becomes one, keeping its dates: the new application (state reviewing) has the
    message's submitted_at and received_on, its answer clock runs from that received_on; the
    message is closed with a note naming the new number. Returns the new application with a
    new 查询码 (hashes are per number; the citizen's own openid needs none); notice
    "received" on the application."""
    message = _step(session, actor, number, "convert_message_to_application", CaseKind.MESSAGE)
    cal = clock.work_calendar(session, now)
    delivery_way = "微信" if message.openid else "邮寄"
    app, code = _new_case(session, now, kind=CaseKind.APPLICATION.value,
                          state=ApplicationState.REGISTERED.value, channel=message.channel,
                          openid=message.openid, applicant=dict(message.applicant or {}),
                          subject=message.subject, applicant_type=applicant_type,
                          delivery_form="电子", delivery_way=delivery_way,
                          converted_from=message.id)
    app.submitted_at = message.submitted_at
    _open_answer_clock(session, settings, cal, app, message.received_on)
    event = _event(session, app, actor.name, "converted", now,
                   ApplicationState.REVIEWING.value, notify=CaseNotice.RECEIVED.value,
                   source=message.number, received_on=app.received_on, due_on=app.due_on)
    event.from_state = None
    message_clocks = clock.clocks_of(session, message)
    clock.finish_all(message_clocks, _today(now))
    clock.sync_case_due(message, message_clocks)
    message.closed_at = to_utc_naive(now)
    _event(session, message, actor.name, "converted_out", now, MessageState.CLOSED.value,
           application=app.number)
    return _result(session, actor, app, [event], query_code=code)


# --- reading -------------------------------------------------------------------------------


def find_for_citizen(session: Session, number: str, openid: str | None,
                     query_code: str | None = None) -> CitizenCaseView | None:
    """A case for 查询 <编号>: shown to its own openid, or to anyone with its 查询码; None
    otherwise (an unknown number and a refused one look the same)."""
    wanted = numbers.normalise(number)
    if not wanted:
        return None
    case = session.scalar(select(Case).where(Case.number == wanted))
    if case is None:
        return None
    own = bool(openid) and case.openid == openid
    if not own and not numbers.query_code_matches(case.number, query_code,
                                                  case.query_code_hash):
        return None
    return _citizen_view(case, openid if own else None)


def cases_of_citizen(session: Session, openid: str, limit: int = 5) -> list[CitizenCaseView]:
    """A citizen's newest cases (查询 without a number)."""
    if not openid:
        return []
    rows = session.scalars(select(Case).where(Case.openid == openid)
                           .order_by(Case.id.desc()).limit(limit))
    return [_citizen_view(c, openid) for c in rows]


def _readable(session: Session, actor: Staff, number: str) -> Case:
    roles = _read_roles(actor)
    wanted = numbers.normalise(number) or number
    case = session.scalar(select(Case).where(Case.number == wanted))
    if case is None:
        raise NotFound(f"no case {number}")
    if roles & REGISTRARS:
        return case
    if HANDLERS & roles and actor.department_id is not None \
            and case.department_id == actor.department_id:
        return case
    raise PermissionDenied(f"{actor.name} 无权查看 {case.number}")


def case_detail(session: Session, actor: Staff, number: str) -> CaseView:
    """A case for a staff member with a casework role (handlers: their department's only) or
    an admin; personal data masked unless registrar, office head, admin or the case's own
    handler."""
    return _view(session, actor, _readable(session, actor, number))


def case_timeline(session: Session, actor: Staff, number: str) -> list[EventView]:
    """A case's events, oldest first (same access rule as case_detail)."""
    case = _readable(session, actor, number)
    events = session.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id)
                             .order_by(CaseEvent.id))
    return [EventView(id=e.id, at=_aware(e.at), actor=e.actor, action=e.action,
                      from_state=e.from_state, to_state=e.to_state, detail=dict(e.detail or {}),
                      notify=(e.detail or {}).get("notify")) for e in events]


def queue(session: Session, actor: Staff, *, kind: str | None = None,
          state: str | None = None, department_id: int | None = None,
          overdue: bool = False, due_soon: bool = False, open_only: bool = True,
          today: date | None = None, limit: int = 200) -> list[QueueRow]:
    """Cases by state and due date (earliest first, no due date last); handlers see their
    department's only. `today` defaults to the Shanghai date now."""
    roles = _read_roles(actor)
    if not roles:
        raise PermissionDenied(f"{actor.name} 没有办案角色")
    stmt = select(Case)
    if not roles & REGISTRARS:
        if actor.department_id is None:
            return []
        stmt = stmt.where(Case.department_id == actor.department_id)
    elif department_id is not None:
        stmt = stmt.where(Case.department_id == department_id)
    if kind is not None:
        stmt = stmt.where(Case.kind == kind)
    if state is not None:
        stmt = stmt.where(Case.state == state)
    if open_only:
        stmt = stmt.where(Case.state.not_in(APPLICATION_FINAL_STATES | MESSAGE_FINAL_STATES))
    today = today or datetime.now(SHANGHAI).date()
    if overdue:
        stmt = stmt.where(Case.due_on < today)
    elif due_soon:
        stmt = stmt.where(Case.due_on >= today)
    stmt = stmt.order_by(Case.due_on.is_(None), Case.due_on, Case.id).limit(limit * 4
                                                                           if due_soon else limit)
    cal = clock.work_calendar(session)
    departments = dict(session.execute(select(Department.id, Department.name)).all())
    rows = []
    for c in session.scalars(stmt):
        late = c.due_on is not None and c.due_on < today
        soon = (c.due_on is not None and not late
                and cal.working_days_between(today, c.due_on) <= DUE_SOON_DAYS)
        if due_soon and not soon:
            continue
        rows.append(QueueRow(
            number=c.number, kind=c.kind, state=c.state,
            state_label=case_state_label(c.kind, c.state), category=c.category,
            subject=c.subject, department=departments.get(c.department_id), handler=c.handler,
            received_on=c.received_on, due_on=c.due_on, due_provisional=bool(c.due_provisional),
            overdue=late, due_soon=soon))
    return rows[:limit]


def read_file(session: Session, settings: Settings, actor: Staff, file_id: int,
              now: datetime) -> tuple[str, str, bytes]:
    """An uploaded file's (filename, content_type, data) for a registrar or office head (or
    the case's handler for answer documents); the read is audited."""
    row = session.get(CaseFile, file_id)
    if row is None or row.case_id is None:
        raise NotFound(f"no file {file_id}")
    case = session.get(Case, row.case_id)
    roles = _read_roles(actor)
    handler_ok = (HANDLERS & roles and row.purpose == "answer"
                  and actor.department_id == case.department_id)
    if not (roles & REGISTRARS or handler_ok):
        raise PermissionDenied(f"{actor.name} 无权查看该文件")
    audit(session, actor.name, "case.file_read", now, object_type="case",
          object_id=case.number, file_id=row.id, purpose=row.purpose)
    return row.filename, row.content_type, applications.load_upload(settings, row.stored_name)


# --- departments and casework roles --------------------------------------------------------


def _require_admin(actor: Staff) -> None:
    if actor is None or not actor.active or actor.role != "admin":
        raise PermissionDenied("only an admin manages departments and casework roles")


def _department_view(session: Session, d: Department) -> DepartmentView:
    open_cases = session.scalar(select(func.count()).select_from(Case).where(
        Case.department_id == d.id,
        Case.state.not_in(APPLICATION_FINAL_STATES | MESSAGE_FINAL_STATES))) or 0
    return DepartmentView(id=d.id, name=d.name, active=bool(d.active), open_cases=open_cases)


def list_departments(session: Session, actor: Staff) -> list[DepartmentView]:
    """Every department (any active staff member)."""
    if actor is None or not actor.active:
        raise PermissionDenied("an active staff account is required")
    return [_department_view(session, d)
            for d in session.scalars(select(Department).order_by(Department.id))]


def add_department(session: Session, actor: Staff, name: str, now: datetime) -> DepartmentView:
    """Admin: a new department (unique name)."""
    _require_admin(actor)
    name = (name or "").strip()
    if not name or len(name) > 64:
        raise CaseInvalid(["name: 1..64 characters"])
    if session.scalar(select(Department).where(Department.name == name)) is not None:
        raise CaseInvalid([f"name: {name} exists"])
    department = Department(name=name, active=True, created_at=to_utc_naive(now))
    session.add(department)
    session.flush()
    audit(session, actor.name, "department.add", now, object_type="department",
          object_id=str(department.id), name=name)
    return _department_view(session, department)


def set_department_active(session: Session, actor: Staff, department_id: int, active: bool,
                          now: datetime) -> DepartmentView:
    """Admin: retire or restore a department (cases keep it; no new transfers to it)."""
    _require_admin(actor)
    department = session.get(Department, department_id)
    if department is None:
        raise NotFound(f"no department {department_id}")
    department.active = bool(active)
    audit(session, actor.name, "department.active" if active else "department.retire", now,
          object_type="department", object_id=str(department.id), name=department.name)
    return _department_view(session, department)


def set_case_roles(session: Session, actor: Staff, name: str, roles: tuple[str, ...],
                   department_id: int | None, now: datetime) -> tuple[str, ...]:
    """Admin: a staff account's casework roles (bot.vocab.CaseRole values) and department
    (required for handlers); returns the roles set."""
    _require_admin(actor)
    staff = session.scalar(select(Staff).where(Staff.name == name))
    if staff is None:
        raise NotFound(f"no staff account {name}")
    known = [r.value for r in CaseRole]
    unknown = [r for r in roles if r not in known]
    if unknown:
        raise CaseInvalid([f"roles: unknown {', '.join(unknown)} (one of {', '.join(known)})"])
    chosen = tuple(r for r in known if r in roles)
    if department_id is not None:
        _department(session, department_id)
    if CaseRole.HANDLER.value in chosen and department_id is None:
        raise CaseInvalid(["department_id: a handler belongs to a department"])
    staff.case_roles, staff.department_id = list(chosen) or None, department_id
    audit(session, actor.name, "staff.case_roles", now, object_type="staff", object_id=name,
          roles=list(chosen), department_id=department_id)
    return chosen
