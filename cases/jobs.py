"""The casework alert job: due-soon and overdue alerts, and 补正 limits that ran out.

For every running clock it picks the most urgent level that applies today -- T-5, T-2, T-0
working days before the due date ([cases] alert_levels; for a provisional deadline, by the
earlier of the estimate and a Monday-Friday count: WorkCalendar.alert_on), or overdue -- and
records it once: CaseAlert is unique on (clock, level, due date), so running the job again
sends nothing, and a moved due date (extension, recomputed calendar) alerts afresh. An
alert is a CaseEvent "alert" on the case's timeline, addressed to the case's handler (or its
department) and the disclosure office; the console shows them. A correction clock past its
limit closes the application as 其他处理 / 逾期不补正 (art. 30) instead.

`run_alerts(session, settings, now)` is the domain function (never commits); `alerts_job()`
is the RQ entry point (its own transaction). Three queries whatever the number of cases, plus
one FOR UPDATE load per lapsed correction.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from bot.clock import SHANGHAI, to_utc_naive
from bot.jobs import job_runtime
from bot.settings import Settings
from bot.store.db import transaction
from bot.store.models import Case, CaseAlert, CaseClock, CaseEvent
from bot.vocab import ClockKind, ClockStatus
from cases import actions, clock
from cases.calendar import Due, WorkCalendar
from push.audit import SYSTEM, audit

OVERDUE = "overdue"


@dataclass(frozen=True)
class AlertRun:
    """What one run did: clocks checked, alerts recorded per level, applications closed for
    a lapsed correction, and the CaseEvent ids to hand to cases.notify after the commit."""

    checked: int
    sent: dict[str, int] = field(default_factory=dict)
    lapsed: tuple[str, ...] = ()
    notices: tuple[int, ...] = ()

    @property
    def total(self) -> int:
        """Alerts recorded in this run."""
        return sum(self.sent.values())


def level_for(cal: WorkCalendar, due: Due, today: date, levels: tuple[int, ...]) -> str | None:
    """The most urgent alert level that applies today, or None."""
    if today > due.on:
        return OVERDUE
    for n in sorted(levels):
        if today >= cal.alert_on(due, n):
            return f"T-{n}"
    return None


def run_alerts(session: Session, settings: Settings, now: datetime) -> AlertRun:
    """Record today's alerts for every running clock (see the module docstring)."""
    today = now.astimezone(SHANGHAI).date()
    cal = clock.work_calendar(session, now)
    levels = tuple(int(x) for x in settings.cases.alert_levels)
    rows = session.execute(
        select(CaseClock.id, CaseClock.case_id, CaseClock.kind, CaseClock.started_on,
               CaseClock.working_days, CaseClock.paused_days, CaseClock.due_on,
               CaseClock.provisional, Case.department_id, Case.handler)
        .join(Case, Case.id == CaseClock.case_id)
        .where(CaseClock.status == ClockStatus.RUNNING.value)).all()
    sent_before = set(session.execute(
        select(CaseAlert.clock_id, CaseAlert.level, CaseAlert.due_on)
        .join(CaseClock, CaseClock.id == CaseAlert.clock_id)
        .where(CaseClock.status == ClockStatus.RUNNING.value)).all())
    at = to_utc_naive(now)
    alerts, events, lapsed_ids = [], [], []
    counts: Counter[str] = Counter()
    due_cache: dict[tuple[date, int, date, bool], Due] = {}
    for (clock_id, case_id, kind, started_on, working_days, paused_days, due_on, provisional,
         department_id, handler) in rows:
        if kind == ClockKind.CORRECTION:
            if today > due_on:
                lapsed_ids.append(case_id)
            continue
        key = (started_on, working_days + (paused_days or 0), due_on, bool(provisional))
        due = due_cache.get(key)
        if due is None:
            due = cal.add(started_on, key[1]) if provisional else Due(due_on, False)
            if due.on != due_on:  # a stale row (calendar not yet recomputed): trust the row
                due = Due(due_on, bool(provisional), due.weekday_on)
            due_cache[key] = due
        level = level_for(cal, due, today, levels)
        if level is None or (clock_id, level, due_on) in sent_before:
            continue
        counts[level] += 1
        alerts.append({"case_id": case_id, "clock_id": clock_id, "level": level,
                       "due_on": due_on, "sent_at": at})
        to = [f"handler:{handler}" if handler else
              (f"department:{department_id}" if department_id else "registrar"), "office"]
        events.append({"case_id": case_id, "at": at, "actor": SYSTEM, "action": "alert",
                       "from_state": None, "to_state": None,
                       "detail": {"level": level, "clock": kind, "due_on": due_on.isoformat(),
                                  "provisional": bool(provisional), "to": to}})
    if alerts:
        session.execute(insert(CaseAlert), alerts)
        session.execute(insert(CaseEvent), events)
    lapsed, notices = [], []
    for case_id in lapsed_ids:
        case = session.scalar(select(Case).where(Case.id == case_id).with_for_update())
        if case is None or case.state != "correction":
            continue
        event = actions.lapse_correction(session, case, now)
        lapsed.append(case.number)
        notices.append(event.id)
    if alerts or lapsed:
        audit(session, SYSTEM, "case.alerts", now, checked=len(rows), sent=dict(counts),
              lapsed=lapsed)
    return AlertRun(checked=len(rows), sent=dict(counts), lapsed=tuple(lapsed),
                    notices=tuple(notices))


def alerts_job() -> dict:
    """RQ entry point (scheduled, e.g. hourly on working days): run the alerts and commit.
    Returns the counts and the notice event ids (cases.notify sends them)."""
    rt = job_runtime()
    with transaction(rt.sessions) as session:
        result = run_alerts(session, rt.settings, rt.now())
    return {"checked": result.checked, "sent": result.sent, "lapsed": list(result.lapsed),
            "notices": list(result.notices)}
