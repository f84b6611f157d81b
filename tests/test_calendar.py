"""The working-day calendar (issue 10 item 1): reference deadlines, the seeded official years
against chinesecalendar, provisional years, `import` with its diff and the recompute of open
deadlines, bad files, and the `qzbot calendar` commands; on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, timedelta

import chinese_calendar
import pytest
from sqlalchemy import func, select

from bot.errors import PermissionDenied
from bot.store.models import (
    AuditEntry,
    CalendarDay,
    CalendarYear,
    Case,
    CaseClock,
    CaseEvent,
    Staff,
)
from cases import calendar as workcal
from push import actions

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED_2026 = os.path.join(ROOT, "cases", "calendar_data", "2026.toml")

# Test data, not a real notice: a 2027 schedule in the shape the State Council's notices take.
FAKE_2027 = """
year = 2027
source = "https://www.gov.cn/zhengce/example-2027"
holidays = [
  { name = "元旦", from = 2027-01-01, to = 2027-01-03 },
  { name = "春节", from = 2027-02-05, to = 2027-02-13 },
  { name = "国庆节", from = 2027-10-01, to = 2027-10-07 },
]
workdays = [
  { date = 2027-02-14, name = "春节调休上班" },
  "2027-09-26",
]
"""

# chinesecalendar 1.11 is wrong here: the 2006 notice (元旦 2006-01-01..03) made Saturday
# 2005-12-31 a working day; `holidays` and our table have it so.
KNOWN_CHINESECALENDAR_ERRORS = {date(2005, 12, 31)}


def calendar_of(runtime) -> workcal.WorkCalendar:
    with runtime.sessions() as session:
        cal = workcal.load(session, runtime.now())
        session.commit()
    return cal


def admin_and_editor(runtime) -> tuple[str, str]:
    with runtime.sessions() as session:
        admin = actions.add_staff(session, None, "root", "admin", runtime.now()).account
        actions.add_staff(session, admin, "ed", "editor", runtime.now())
        session.commit()
    return "root", "ed"


def staff(session, name: str) -> Staff:
    return session.scalar(select(Staff).where(Staff.name == name))


def add_clock(session, runtime, number: str, started: date, days: int, status: str = "running",
              kind: str = "answer", due: date | None = None, paused_days: int = 0) -> CaseClock:
    """A case with one clock, written directly (the casework service is another module's)."""
    now = runtime.now().replace(tzinfo=None)
    case = session.scalar(select(Case).where(Case.number == number))
    if case is None:
        case = Case(number=number, kind="application", state="handling", channel="letter",
                    query_code_hash="0" * 64, applicant={"name": "张三"}, subject="s",
                    submitted_at=now, received_on=started, due_provisional=False,
                    created_at=now, updated_at=now)
        session.add(case)
        session.flush()
    clock = CaseClock(case_id=case.id, kind=kind, started_on=started, working_days=days,
                      paused_days=paused_days, due_on=due or started, provisional=False,
                      status=status)
    session.add(clock)
    session.flush()
    return clock


# --- counting ------------------------------------------------------------------------------


@pytest.mark.parametrize("start, n, expected", [
    (date(2026, 1, 29), 20, date(2026, 3, 4)),  # across the Spring Festival (and 2-14/2-28 班)
    (date(2026, 9, 21), 20, date(2026, 10, 26)),  # across National Day and 中秋
    (date(2026, 4, 28), 20, date(2026, 5, 28)),  # across 劳动节 (and 5-9 班)
    (date(2026, 2, 13), 1, date(2026, 2, 14)),  # a make-up Saturday is a working day
    (date(2026, 11, 28), 0, date(2026, 11, 28)),  # day 0 is the day of receipt
    (date(2026, 11, 28), 1, date(2026, 11, 30)),  # received on a Saturday: Monday is day 1
])
def test_reference_deadlines(runtime, start, n, expected):
    cal = calendar_of(runtime)
    due = cal.add(start, n)
    assert due == workcal.Due(expected, False, None)
    assert str(due) == expected.isoformat()
    assert cal.working_days_between(start, expected) == n
    assert cal.working_days_between(expected, start) == -n


def test_seeded_years_agree_with_chinesecalendar(runtime):
    cal = calendar_of(runtime)
    differences = set()
    for year in workcal.SEED_YEARS:
        assert cal.is_official(year)
        d = date(year, 1, 1)
        while d.year == year:
            if cal.is_working_day(d) != chinese_calendar.is_workday(d):
                differences.add(d)
            d += timedelta(days=1)
    assert differences == KNOWN_CHINESECALENDAR_ERRORS
    assert cal.is_working_day(date(2005, 12, 31))  # 调休上班 in the 2006 notice
    assert not cal.is_working_day(date(2026, 10, 7)) and cal.is_working_day(date(2026, 10, 10))
    with pytest.raises(NotImplementedError):  # why 2027 must be provisional until imported
        chinese_calendar.is_workday(date(2027, 3, 1))


def test_seed_is_lazy_idempotent_and_spares_imported_years(runtime):
    with runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(CalendarYear)) == 0
        workcal.load(session, runtime.now())
        session.commit()
        years = session.scalar(select(func.count()).select_from(CalendarYear))
        days = session.scalar(select(func.count()).select_from(CalendarDay))
        assert years == len(workcal.SEED_YEARS) and days > 20 * len(workcal.SEED_YEARS)
        row = session.get(CalendarYear, 2026)
        row.source = "https://example.gov.cn/imported"
        assert workcal.seed(session, runtime.now()) == []  # nothing added a second time
        session.commit()
        assert session.scalar(select(func.count()).select_from(CalendarDay)) == days
        assert session.get(CalendarYear, 2026).source == "https://example.gov.cn/imported"


def test_load_is_cached_by_revision(runtime):
    with runtime.sessions() as session:
        first = workcal.load(session, runtime.now())
        session.commit()
        assert workcal.load(session) is first
        workcal.bump_revision(session)
        session.commit()
        again = workcal.load(session)
        assert again is not first and again.revision != first.revision


# --- provisional years ---------------------------------------------------------------------


def test_provisional_year_uses_statutory_holidays_only(runtime):
    cal = calendar_of(runtime)
    assert not cal.is_official(2027)
    status, source = cal.status(2027)
    assert status == workcal.PROVISIONAL and "795" in source
    days = cal.year_days(2027)
    assert all(kind == workcal.HOLIDAY for _, kind, _ in days)  # no make-up working days
    off = {d for d, _, _ in days}
    assert {date(2027, 1, 1), date(2027, 2, 5), date(2027, 2, 8), date(2027, 10, 1)} <= off
    assert sum(1 for d in off if d.weekday() < 5) == 13  # article 2: 13 days, article 6: 补假
    assert not cal.is_working_day(date(2027, 2, 8))
    assert cal.is_working_day(date(2027, 2, 11))


def test_deadline_crossing_a_provisional_day_is_provisional(runtime):
    cal = calendar_of(runtime)
    inside = cal.add(date(2026, 11, 2), 20)
    assert not inside.provisional and inside.weekday_on is None
    crossing = cal.add(date(2026, 12, 20), 20)
    assert crossing.provisional and crossing.on.year == 2027
    assert str(crossing) == crossing.on.isoformat() + " provisional"
    assert cal.add(date(2027, 3, 1), 1).provisional


def test_alert_uses_the_earlier_of_estimate_and_weekday_count(runtime):
    cal = calendar_of(runtime)
    due = cal.add(date(2027, 1, 29), 20)  # the estimate skips 4 statutory weekdays of 春节
    assert due.provisional and due.weekday_on == date(2027, 2, 26)
    assert due.on == date(2027, 3, 4)
    assert cal.alert_on(due, 2) == date(2027, 2, 24)  # two weekdays before the weekday count
    assert cal.alert_on(due, 0) == date(2027, 2, 26)
    official = cal.add(date(2026, 1, 29), 20)
    assert cal.alert_on(official, 5) == date(2026, 2, 26)  # 2-28 (Sat) is a working day
    assert cal.alert_on(official, 0) == date(2026, 3, 4)


# --- import --------------------------------------------------------------------------------


def test_import_diffs_flips_and_recomputes_open_deadlines(runtime):
    admin, _ = admin_and_editor(runtime)
    with runtime.sessions() as session:
        cal = workcal.load(session, runtime.now())
        estimate = cal.add(date(2027, 1, 25), 20)
        running = add_clock(session, runtime, "YSQ-2027-000001", date(2027, 1, 25), 20,
                            due=estimate.on)
        running.provisional = True
        session.get(Case, running.case_id).due_on = estimate.on
        paused = add_clock(session, runtime, "YSQ-2027-000002", date(2026, 12, 28), 15,
                           status="paused", kind="consultation", paused_days=2,
                           due=date(2027, 1, 1))
        done = add_clock(session, runtime, "YSQ-2027-000003", date(2027, 1, 25), 20,
                         status="done", due=date(2027, 1, 1))
        session.commit()
        ids = running.id, paused.id, done.id

    with runtime.sessions() as session:
        parsed = workcal.parse_year_file(FAKE_2027, "2027.toml")
        result = workcal.import_year(session, staff(session, admin), parsed, runtime.now())
        session.commit()

    diff = result.diff
    assert diff.old_status == workcal.PROVISIONAL and diff.year == 2027
    by_day = {c.day: c for c in diff.days}
    assert by_day[date(2027, 2, 11)].working_changed  # Thursday off: new in the notice
    assert by_day[date(2027, 2, 14)].new == (workcal.WORKDAY, "春节调休上班")
    assert by_day[date(2027, 9, 26)].new == (workcal.WORKDAY, "调休上班")
    assert by_day[date(2027, 4, 5)].new is None  # estimated 清明 not in the (test) file
    assert any("2027-02-11" in line for line in diff.lines())
    with runtime.sessions() as session:
        cal = workcal.load(session)
        assert cal.is_official(2027) and cal.revision == result.revision
        assert cal.status(2027) == (workcal.OFFICIAL, "https://www.gov.cn/zhengce/example-2027")
        expected = cal.add(date(2027, 1, 25), 20)
        assert not expected.provisional and expected.on != estimate.on
        r, p, d = (session.get(CaseClock, i) for i in ids)
        assert (r.due_on, r.provisional) == (expected.on, False)
        assert p.due_on == cal.add(date(2026, 12, 28), 17).on  # paused days count too
        assert d.due_on == date(2027, 1, 1)  # a finished clock is history
        case = session.get(Case, r.case_id)
        assert (case.due_on, case.due_provisional) == (expected.on, False)
        assert {c.clock_id for c in result.changes} == {ids[0], ids[1]}
        events = session.scalars(select(CaseEvent).where(CaseEvent.action == "due_recomputed"))
        assert {e.detail["clock_id"] for e in events} == {ids[0], ids[1]}
        audits = list(session.scalars(select(AuditEntry).order_by(AuditEntry.id)))
        recomputed = [a for a in audits if a.action == "case_due_recomputed"]
        assert {(a.object_type, a.object_id, a.actor) for a in recomputed} == {
            ("case", "YSQ-2027-000001", "root"), ("case", "YSQ-2027-000002", "root")}
        imported = [a for a in audits if a.action == "calendar_import"]
        assert len(imported) == 1 and imported[0].object_id == "2027"
        assert "2027-02-11" in imported[0].detail["working_changes"]

    with runtime.sessions() as session:  # the same file again: nothing to do, nothing written
        again = workcal.import_year(session, staff(session, admin), parsed, runtime.now())
        session.commit()
        assert again.unchanged and again.changes == []
        assert session.scalar(select(func.count()).select_from(AuditEntry)
                              .where(AuditEntry.action == "calendar_import")) == 1


def test_import_shipped_2026_changes_no_working_day(runtime):
    admin, _ = admin_and_editor(runtime)
    with open(SHIPPED_2026, encoding="utf-8") as fh:
        parsed = workcal.parse_year_file(fh.read(), SHIPPED_2026)
    with runtime.sessions() as session:
        result = workcal.import_year(session, staff(session, admin), parsed, runtime.now())
        session.commit()
    assert result.diff.days and result.diff.working_changes == []
    cal = calendar_of(runtime)
    assert cal.add(date(2026, 1, 29), 20).on == date(2026, 3, 4)
    assert cal.year_days(2026)[0] == (date(2026, 1, 1), workcal.HOLIDAY, "元旦")


def test_import_needs_an_admin(runtime):
    _, editor = admin_and_editor(runtime)
    before = calendar_of(runtime).revision
    with runtime.sessions() as session:
        parsed = workcal.parse_year_file(FAKE_2027)
        with pytest.raises(PermissionDenied):
            workcal.import_year(session, staff(session, editor), parsed, runtime.now())
        session.rollback()
    cal = calendar_of(runtime)
    assert cal.revision == before and not cal.is_official(2027)


@pytest.mark.parametrize("text, problems", [
    ("year = 2027\nholidays = [", ["not valid TOML"]),
    ('source = "x"\nextra = 1\nholidays = []\nworkdays = 3',
     ["unknown key 'extra'", "year: needs a year", "source: needs the URL",
      "holidays: needs a list", "workdays: needs a list"]),
    ('year = 2027\nsource = "https://gov.cn/n"\nholidays = [\n'
     '  { name = "春节", from = 2027-02-10, to = 2027-02-05 },\n'
     '  { date = "2027-02-30" },\n'
     '  { name = "国庆节", from = 2027-10-01, to = 2027-10-07 },\n'
     '  { name = "又一个", date = 2027-10-03 },\n'
     '  { name = "明年", date = 2028-03-01 },\n'
     '  { name = "两样", date = 2027-05-01, from = 2027-05-01, to = 2027-05-02 },\n'
     '  { name = "太长", from = 2027-01-01, to = 2027-03-01 },\n'
     '  { name = "时刻", date = 2027-06-01T08:00:00 },\n'
     ']\nworkdays = [ 2027-02-15, { date = 2027-10-09, when = 1 }, "nope", 2027-10-02 ]\n',
     ["holidays[0]: to 2027-02-05 is before from 2027-02-10", "holidays[1]: needs a name",
      "holidays[1]: '2027-02-30' is not a date", "holidays[3]: 2027-10-03 is already listed",
      "holidays[4]: 2028-03-01 is not in 2027", "holidays[5]: give either date or from/to",
      "holidays[6]: a holiday block of 60 days", "holidays[7]: ", "is a date-time",
      "workdays[0]: 2027-02-15 is a Monday", "workdays[1]: unknown key 'when'",
      "workdays[2]: 'nope' is not a date", "workdays[3]: 2027-10-02 is already listed"]),
])
def test_bad_files_name_every_problem_and_change_nothing(runtime, text, problems):
    before = calendar_of(runtime).revision
    with pytest.raises(workcal.CalendarInvalid) as caught:
        workcal.parse_year_file(text, "bad.toml")
    message = str(caught.value)
    for problem in problems:
        assert problem in message, (problem, message)
    assert "nothing imported" in message
    assert calendar_of(runtime).revision == before


# --- the command line ----------------------------------------------------------------------


def qzbot(db_url: str, *args: str, key: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, QZBOT_CONFIG=os.path.join(ROOT, "config.example.toml"),
               QZBOT_DATABASE__URL=db_url, QZBOT_NOW="2026-11-27T10:00:00")
    env.pop("QZBOT_STAFF_KEY", None)
    if key:
        env["QZBOT_STAFF_KEY"] = key
    return subprocess.run([sys.executable, "-c", "from bot.cli import main; main()", *args],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)


def test_cli_due_and_show(runtime, db_url):
    for start, n, out in [("2026-01-29", "20", "2026-03-04"), ("2026-09-21", "20", "2026-10-26"),
                          ("2026-04-28", "20", "2026-05-28")]:
        result = qzbot(db_url, "calendar", "due", start, n)
        assert result.returncode == 0 and result.stdout == out + "\n", result.stderr
    later = qzbot(db_url, "calendar", "due", "2027-01-29", "20")
    assert later.stdout == "2027-03-04 provisional\n"
    bad = qzbot(db_url, "calendar", "due", "2027-02-30", "20")
    assert bad.returncode == 2 and "2027-02-30" in bad.stderr
    shown = qzbot(db_url, "calendar", "show", "2026").stdout
    assert shown.startswith("2026 official (正式) source: holidays ")
    assert "2026-10-10 Sat 班" in shown and "2026-10-07 Wed 休" in shown
    assert "make-up working days: 6" in shown
    provisional = qzbot(db_url, "calendar", "show", "2027").stdout
    assert provisional.startswith("2027 provisional (暂定)")
    assert "make-up working days: 0" in provisional and "qzbot calendar import" in provisional


def test_cli_import(runtime, db_url, tmp_path):
    with runtime.sessions() as session:
        admin = actions.add_staff(session, None, "root", "admin", runtime.now())
        editor = actions.add_staff(session, admin.account, "ed", "editor", runtime.now())
        add_clock(session, runtime, "YSQ-2027-000009", date(2027, 1, 25), 20,
                  due=date(2027, 2, 26))  # the provisional estimate; the notice makes it 3-1
        session.commit()
    good = tmp_path / "2027.toml"
    good.write_text(FAKE_2027, encoding="utf-8")
    bad = tmp_path / "bad.toml"
    bad.write_text('year = 1\nsource = "x"\nholidays = [1]\n', encoding="utf-8")

    refused = qzbot(db_url, "calendar", "import", str(bad), "--as", "root", key=admin.key)
    assert refused.returncode == 4
    for part in ("3 problem(s), nothing imported", "year: needs a year", "source:",
                 "holidays[0]"):
        assert part in refused.stderr
    not_admin = qzbot(db_url, "calendar", "import", str(good), "--as", "ed", key=editor.key)
    assert not_admin.returncode == 1 and "admin" in not_admin.stderr
    no_key = qzbot(db_url, "calendar", "import", str(good), "--as", "root")
    assert no_key.returncode == 1 and "key" in no_key.stderr

    dry = qzbot(db_url, "calendar", "import", str(good), "--as", "root", "--dry-run",
                key=admin.key)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("2027: provisional -> official; source https://www.gov.cn/")
    assert "+ 2027-02-11 休 春节  [working day changes]" in dry.stdout
    assert "open deadlines would move: 1" in dry.stdout
    assert "  YSQ-2027-000009 answer: 2027-02-26 -> 2027-03-01" in dry.stdout
    assert dry.stdout.rstrip().endswith("dry run: nothing changed")
    assert qzbot(db_url, "calendar", "due", "2027-01-25", "20").stdout.endswith("provisional\n")

    done = qzbot(db_url, "calendar", "import", str(good), "--as", "root", key=admin.key)
    assert done.returncode == 0 and "2027 is official now" in done.stdout
    assert "open deadlines moved: 1" in done.stdout
    assert "provisional" not in qzbot(db_url, "calendar", "due", "2027-01-25", "20").stdout
    assert qzbot(db_url, "calendar", "show", "2027").stdout.startswith(
        "2027 official (正式) source: https://www.gov.cn/zhengce/example-2027")
    again = qzbot(db_url, "calendar", "import", str(good), "--as", "root", key=admin.key)
    assert "nothing changed" in again.stdout
