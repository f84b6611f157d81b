"""A case's legal clock as segments (CaseClock rows), counted in working days.

due = calendar.add(started_on, working_days + paused_days): the day of receipt (or of the
segment's start) is day 0 and counting starts the next working day. What the law does to the
answer period is done to the one answer clock of an application (the reply clock of a 留言):
- 补正 (art. 30): the clock is paused while the applicant corrects, then restarts from the
  day the correction arrives (started_on = that day, paused_days = 0);
- third-party consultation (art. 32/33): paused; the working days it took are added to
  paused_days when it ends (not counted);
- extension (art. 33): working_days += the extra days.
Case.due_on / due_provisional copy the running answer (reply) clock, else the earliest other
open clock, so queues sort by one column.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.store.models import Case, CaseClock
from bot.vocab import CaseKind, ClockKind, ClockStatus
from cases import calendar as workcal
from cases.calendar import WorkCalendar

OPEN = (ClockStatus.RUNNING.value, ClockStatus.PAUSED.value)


def work_calendar(session: Session, now: datetime | None = None) -> WorkCalendar:
    """The working-day calendar (seeded on first use, cached per process by revision)."""
    return workcal.load(session, now)


def main_kind(case: Case) -> str:
    """The clock that is the case's answer deadline."""
    return ClockKind.ANSWER.value if case.kind == CaseKind.APPLICATION else ClockKind.REPLY.value


def refresh(clock: CaseClock, cal: WorkCalendar) -> None:
    """Recompute a clock's due date from its segment."""
    due = cal.add(clock.started_on, clock.working_days + (clock.paused_days or 0))
    clock.due_on, clock.provisional = due.on, bool(due.provisional)


def start(session: Session, cal: WorkCalendar, case: Case, kind: str, started_on: date,
          working_days: int) -> CaseClock:
    """A new running segment."""
    clock = CaseClock(case_id=case.id, kind=kind, started_on=started_on,
                      working_days=working_days, paused_days=0,
                      status=ClockStatus.RUNNING.value)
    refresh(clock, cal)
    session.add(clock)
    return clock


def clocks_of(session: Session, case: Case) -> list[CaseClock]:
    """Every clock of a case, oldest first (locked FOR UPDATE: the case is changing)."""
    return list(session.scalars(select(CaseClock).where(CaseClock.case_id == case.id)
                                .order_by(CaseClock.id).with_for_update()))


def current(clocks: list[CaseClock], kind: str) -> CaseClock | None:
    """The open clock of a kind (the newest), or None."""
    return next((c for c in reversed(clocks) if c.kind == kind and c.status in OPEN), None)


def pause(clock: CaseClock, on: date) -> None:
    """Stop counting from `on` (a consultation or a 补正 begins)."""
    clock.status, clock.paused_on = ClockStatus.PAUSED.value, on


def resume(clock: CaseClock, cal: WorkCalendar, on: date) -> int:
    """Count again from `on`: the working days since the pause are not counted (added to
    paused_days). Returns the days added."""
    added = cal.working_days_between(clock.paused_on, on) if clock.paused_on else 0
    added = max(added, 0)
    clock.paused_days = (clock.paused_days or 0) + added
    clock.status, clock.paused_on = ClockStatus.RUNNING.value, None
    refresh(clock, cal)
    return added


def restart(clock: CaseClock, cal: WorkCalendar, on: date) -> None:
    """The period starts again from `on` (a correction arrived, art. 30)."""
    clock.started_on, clock.paused_days, clock.paused_on = on, 0, None
    clock.status = ClockStatus.RUNNING.value
    refresh(clock, cal)


def extend(clock: CaseClock, cal: WorkCalendar, days: int) -> None:
    """Add working days to the period (an approved extension)."""
    clock.working_days += days
    refresh(clock, cal)


def finish(clock: CaseClock, on: date, status: str = ClockStatus.DONE.value) -> None:
    """End a segment (done, or lapsed when its time ran out)."""
    clock.status, clock.ended_on, clock.paused_on = status, on, None


def finish_all(clocks: list[CaseClock], on: date) -> None:
    """End every open segment (the case is closed)."""
    for clock in clocks:
        if clock.status in OPEN:
            finish(clock, on)


def sync_case_due(case: Case, clocks: list[CaseClock]) -> None:
    """Copy the deadline that matters now onto the case (see the module docstring)."""
    main = [c for c in clocks if c.kind == main_kind(case)
            and c.status == ClockStatus.RUNNING.value]
    others = sorted((c for c in clocks if c.status == ClockStatus.RUNNING.value),
                    key=lambda c: c.due_on)
    chosen = main[-1] if main else (others[0] if others else None)
    case.due_on = chosen.due_on if chosen else None
    case.due_provisional = bool(chosen.provisional) if chosen else False
