"""The casework alert job: T-5 / T-2 / T-0 / overdue once each per clock and due date, to
the handler and the office, idempotent when run again; a 补正 limit that ran out closes the
application as 其他处理 / 逾期不补正; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select

from bot.store.db import transaction
from bot.store.models import CaseAlert, CaseEvent
from cases import actions, jobs
from tests.test_cases_applications import at, cw  # noqa: F401 - the fixture

__all__ = ["cw"]


def run(cw, day: str):
    with transaction(cw.rt.sessions) as s:
        return jobs.run_alerts(s, cw.settings, at(day, 8))


def alerts(cw) -> list[tuple[str, date]]:
    with cw.rt.sessions() as s:
        return list(s.execute(select(CaseAlert.level, CaseAlert.due_on).order_by(CaseAlert.id)))


def test_levels_once_each_and_idempotent(cw):
    number = cw.to_handling("2026-04-28")  # due 2026-05-28
    assert run(cw, "2026-05-20").total == 0  # 6 working days before
    first = run(cw, "2026-05-21")  # T-5
    assert first.sent == {"T-5": 1} and first.checked == 1
    assert run(cw, "2026-05-21").total == 0  # the same day again: nothing
    assert run(cw, "2026-05-22").total == 0  # still T-5: already sent
    assert run(cw, "2026-05-26").sent == {"T-2": 1}
    assert run(cw, "2026-05-28").sent == {"T-0": 1}
    assert run(cw, "2026-05-29").sent == {"overdue": 1}
    assert run(cw, "2026-06-01").total == 0
    assert [level for level, _ in alerts(cw)] == ["T-5", "T-2", "T-0", "overdue"]
    events = [e for e in cw.events(number) if e.action == "alert"]
    assert len(events) == 4 and events[0].detail["to"] == [f"department:{cw.depts['A']}",
                                                           "office"]


def test_a_late_first_run_sends_only_the_most_urgent_level(cw):
    cw.to_handling("2026-04-28")
    assert run(cw, "2026-06-03").sent == {"overdue": 1}
    assert len(alerts(cw)) == 1


def test_moved_due_date_alerts_afresh(cw):
    number = cw.to_handling("2026-04-28")
    cw.do("han", actions.draft_answer, number, at("2026-05-06"), answer_type="予以公开")
    assert run(cw, "2026-05-26").sent == {"T-2": 1}
    cw.do("han", actions.request_extension, number, at("2026-05-26"), reason="r")
    cw.do("head", actions.decide_extension, number, at("2026-05-26"), approve=True)
    assert run(cw, "2026-05-26").total == 0  # the new due date is 20 working days away
    assert cw.case(number).due_on == date(2026, 6, 26)


def test_paused_and_finished_clocks_are_quiet(cw):
    number = cw.to_handling("2026-04-28")
    cw.do("han", actions.start_consultation, number, at("2026-05-06"), third_party="X")
    # the answer clock is paused; only the consultation (due 05-26, T-5 on 05-19) counts
    result = run(cw, "2026-05-18")
    assert result.checked == 1 and result.total == 0
    assert run(cw, "2026-05-28").sent == {"overdue": 1}
    assert [e.detail["clock"] for e in cw.events(number) if e.action == "alert"] == [
        "consultation"]


def test_lapsed_correction_closes_the_application(cw):
    number = cw.register("2026-04-28")
    cw.do("reg", actions.request_correction, number, at("2026-04-29"), what="写明文号",
          limit_days=5)
    due = cw.case(number).due_on
    assert run(cw, due.isoformat()).lapsed == ()
    later = run(cw, "2026-06-01")
    assert later.lapsed == (number,) and len(later.notices) == 1
    case = cw.case(number)
    assert case.state == "closed" and (case.answer_type, case.answer_reason) == (
        "其他处理", "逾期不补正")
    assert {c.kind: c.status for c in cw.clocks(number)}["correction"] == "lapsed"
    assert run(cw, "2026-06-02").lapsed == ()
    with cw.rt.sessions() as s:
        assert s.scalar(select(func.count()).select_from(CaseEvent).where(
            CaseEvent.action == "correction_lapsed")) == 1
