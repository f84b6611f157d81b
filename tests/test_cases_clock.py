"""cases.clock segments and cases.numbers on the working-day calendar (no database writes
beyond the calendar's seed): pause / resume, restart, extend, the case's due copy, tracking
numbers and 查询码 hashing."""

from __future__ import annotations

from datetime import date

from bot.store.models import Case, CaseClock
from cases import clock, numbers


def segment(start: date, days: int) -> CaseClock:
    return CaseClock(kind="answer", started_on=start, working_days=days, paused_days=0,
                     status="running")


def test_segments_on_the_calendar(runtime):
    with runtime.sessions() as s:
        cal = clock.work_calendar(s, runtime.now())
    c = segment(date(2026, 1, 29), 20)
    clock.refresh(c, cal)
    assert c.due_on == date(2026, 3, 4) and not c.provisional
    clock.pause(c, date(2026, 2, 2))
    assert c.status == "paused" and c.paused_on == date(2026, 2, 2)
    assert clock.resume(c, cal, date(2026, 2, 5)) == 3  # 02-03, 02-04, 02-05
    assert c.status == "running" and c.due_on == cal.add(date(2026, 1, 29), 23).on
    clock.restart(c, cal, date(2026, 9, 21))
    assert (c.paused_days, c.due_on) == (0, date(2026, 10, 26))
    clock.extend(c, cal, 20)
    assert c.working_days == 40 and c.due_on == cal.add(date(2026, 9, 21), 40).on
    late = segment(date(2026, 12, 20), 20)
    clock.refresh(late, cal)
    assert late.provisional and late.due_on.year == 2027  # crosses a provisional year


def test_case_due_copies_the_main_clock():
    case = Case(kind="application")
    answer = segment(date(2026, 1, 5), 20)
    answer.due_on, answer.provisional = date(2026, 2, 2), False
    other = CaseClock(kind="consultation", due_on=date(2026, 1, 20), status="running",
                      provisional=True)
    clock.sync_case_due(case, [answer, other])
    assert case.due_on == date(2026, 2, 2)
    answer.status = "paused"
    clock.sync_case_due(case, [answer, other])
    assert case.due_on == date(2026, 1, 20) and case.due_provisional
    other.status = "done"
    clock.sync_case_due(case, [answer, other])
    assert case.due_on is None


def test_numbers_and_codes(runtime):
    with runtime.sessions() as s:
        first = numbers.next_number(s, "application", 2026)
        second = numbers.next_number(s, "application", 2026)
        other = numbers.next_number(s, "message", 2027)
    assert (first, second, other) == ("YSQ-2026-000001", "YSQ-2026-000002", "LY-2027-000001")
    assert numbers.normalise("ysq 2026 123") == "YSQ-2026-000123"
    assert numbers.normalise("ABC-2026-1") == "" and numbers.kind_of("LY-2026-000001") == "message"
    code = numbers.new_query_code()
    assert len(code) == 6 and not set(code) & set("01OIL")
    stored = numbers.hash_query_code(first, code)
    assert numbers.query_code_matches(first, code.lower(), stored)
    assert not numbers.query_code_matches(second, code, stored)  # bound to the number
    assert not numbers.query_code_matches(first, None, stored)
