"""The working-day calendar of mainland China (issue 10 item 1): every legal clock counts on it.

Why our own table: the State Council publishes each year's holidays and make-up working days
(调休上班) in a notice in October-December; no package knows a year before that, and the law's
20 working days must follow the notice exactly. So:

- `calendar_years` holds each known year, `official` (from the notice, with its source) and
  `calendar_days` the days that differ from Monday-Friday: holidays (weekends inside a holiday
  block included, for display) and make-up working days.
- Official years 2004-2026 are seeded from the `holidays` package (it has China's make-up days
  through 2026), lazily on first use (`load`), idempotently; the test suite cross-checks every
  day of them against `chinesecalendar` (they agree except 2005-12-31, a Saturday that the
  2006 notice made a working day: `chinesecalendar` 1.11 wrongly has it off).
- A year absent from the table is **provisional**: the statutory holidays of the 全国年节及
  纪念日放假办法 (State Council order 795, 2024 revision: article 2's 13 days - 元旦 1, 春节 4
  from 除夕, 清明 1, 劳动节 2, 端午 1, 中秋 1, 国庆 3 - and article 6's 补假 on the next
  working day for one that falls on a weekend), dated by the `holidays` package's lunar
  calendar; no make-up working days, which only the notice can give.
- `qzbot calendar import FILE` (`import_year`) loads a year's notice: validated (every problem
  named), diffed against the table, the year flipped to official, the revision bumped, and every
  open deadline recomputed (`recompute_open_clocks`, each change audited).

Counting (the common reading of articles 30-33): the day of receipt is day 0, counting starts
with the next working day; `add(start, n)` is the n-th working day after `start`. A deadline
that crosses a day of a provisional year is provisional, and its alerts fire at the earlier of
the estimate and a Monday-Friday count of the provisional part (`Due.weekday_on`), so an
official notice with fewer days off than estimated cannot make an alert late.

A `WorkCalendar` is immutable and cached per process by database and calendar revision (Meta
"calendar_revision", a fresh value on every change): one small query per `load`.
"""

from __future__ import annotations

import secrets
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any

import holidays
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from bot.clock import to_utc_naive
from bot.errors import QzbotError
from bot.store.models import CalendarDay, CalendarYear, Case, CaseClock, CaseEvent, Meta, Staff
from bot.vocab import Role
from push.audit import audit
from push.staff import require_role

OFFICIAL = "official"
PROVISIONAL = "provisional"
HOLIDAY = "holiday"
WORKDAY = "workday"
KIND_LABELS = {HOLIDAY: "休", WORKDAY: "班"}
STATUS_LABELS = {OFFICIAL: "正式", PROVISIONAL: "暂定"}

REVISION_KEY = "calendar_revision"
SEED_YEARS = range(2004, 2027)  # the years both packages know (chinesecalendar 1.11: 2004-2026)
SEED_SOURCE = f"holidays {holidays.__version__} (国务院办公厅部分节假日安排的通知)"
STATUTORY_SOURCE = ("全国年节及纪念日放假办法 (国务院令第795号, 2024) 第二条、第六条; "
                    "no make-up working days")
OPEN_CLOCK_STATUSES = ("running", "paused")
ANSWER_CLOCK_KINDS = ("answer", "reply")  # the clock whose due date Case.due_on copies
MAX_COUNT = 1000  # working days; a longer clock is a bug, not a deadline
BOUNDARY_DAYS = 14  # a notice may name days just across the year's edge (2005-12-31 for 2006)
NAME_MAX = 32  # calendar_days.name
YEAR_RANGE = (2000, 2100)

_ONE = timedelta(days=1)


class CalendarInvalid(QzbotError):
    """A calendar file that cannot be imported; `problems` lists every one; nothing changed."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = list(problems)
        lines = "\n  - ".join(self.problems)
        super().__init__(f"{source}: {len(self.problems)} problem(s), nothing imported:\n"
                         f"  - {lines}")


@dataclass(frozen=True)
class Due:
    """A deadline: `on`, whether it is `provisional` (its count crosses a day of a provisional
    year) and then `weekday_on`, the same count with the provisional part taken as plain
    Monday-Friday (no holidays): `alert_on` alerts by the earlier of the two."""

    on: date
    provisional: bool = False
    weekday_on: date | None = None

    def __str__(self) -> str:
        return self.on.isoformat() + (" provisional" if self.provisional else "")


# --- the calendar --------------------------------------------------------------------------------


@lru_cache(maxsize=64)
def statutory_holidays(year: int) -> dict[date, str]:
    """The statutory holidays of `year` by rule (see the module docstring): a provisional
    year's days off. The notice's extra days and make-up days are not in it."""
    days = holidays.China(years=year, language="zh_CN")
    return {d: str(name)[:NAME_MAX] for d, name in sorted(days.items())
            if d.year == year and "调休" not in str(name)}


class WorkCalendar:
    """Working days from the stored official years plus the statutory rule for the rest."""

    def __init__(self, years: dict[int, tuple[str, str | None]],
                 days: dict[date, tuple[str, str]], revision: str | None = None):
        self.years = dict(years)  # year -> (status, source)
        self.days = dict(days)  # day -> (kind, name), stored days of every year
        self.revision = revision
        self._official = frozenset(y for y, (status, _) in self.years.items()
                                   if status == OFFICIAL)
        self._add_cache: dict[tuple[date, int], Due] = {}

    @classmethod
    def load(cls, session: Session, now: datetime | None = None) -> WorkCalendar:
        """The calendar in the database (seeded on first use); see `load`."""
        return load(session, now)

    # -- queries --

    def is_official(self, year: int) -> bool:
        """Whether `year` is known from the State Council's notice."""
        return year in self._official

    def status(self, year: int) -> tuple[str, str]:
        """(status, source) of `year`; a provisional year's source is the statutory rule."""
        if self.is_official(year):
            return OFFICIAL, self.years[year][1] or ""
        return PROVISIONAL, STATUTORY_SOURCE

    def is_working_day(self, d: date) -> bool:
        """Monday-Friday unless a holiday; a weekend day if it is a make-up working day."""
        stored = self.days.get(d)
        if stored is not None:
            return stored[0] == WORKDAY
        if d.year not in self._official and d in statutory_holidays(d.year):
            return False
        return d.weekday() < 5

    def _weekday_rule(self, d: date) -> bool:
        """The Monday-Friday count: known (official) days as they are, provisional ones plain."""
        if d.year in self._official:
            return self.is_working_day(d)
        stored = self.days.get(d)
        return stored[0] == WORKDAY if stored is not None else d.weekday() < 5

    def working_days_between(self, a: date, b: date) -> int:
        """Working days in (a, b]: `add(a, n).on == b` gives n when b is a working day;
        negative when b is before a."""
        if b < a:
            return -self.working_days_between(b, a)
        count, d = 0, a
        while d < b:
            d += _ONE
            count += self.is_working_day(d)
        return count

    def add(self, start: date, n: int) -> Due:
        """The n-th working day after `start` (day 0: counting starts the next working day)."""
        if not 0 <= n <= MAX_COUNT:
            raise ValueError(f"working days must be 0..{MAX_COUNT}, not {n}")
        key = (start, n)
        cached = self._add_cache.get(key)
        if cached is not None:
            return cached
        d, count, provisional = start, 0, False
        while count < n:
            d += _ONE
            provisional = provisional or d.year not in self._official
            count += self.is_working_day(d)
        due = Due(d, provisional, self._step(start, n, 1, self._weekday_rule)
                  if provisional else None)
        if len(self._add_cache) > 50_000:
            self._add_cache.clear()
        self._add_cache[key] = due
        return due

    def alert_on(self, due: Due, n_before: int) -> date:
        """The day to alert `n_before` working days before `due`: for a provisional deadline,
        the earlier of the estimate and the Monday-Friday count (build `due` with `add`)."""
        alert = self._step(due.on, n_before, -1, self.is_working_day)
        if due.provisional and due.weekday_on is not None:
            alert = min(alert, self._step(due.weekday_on, n_before, -1, self._weekday_rule))
        return alert

    @staticmethod
    def _step(d: date, n: int, direction: int, working) -> date:
        """The n-th day from `d` (forward or back) that `working` accepts; `d` itself for 0."""
        step = _ONE * direction
        count = 0
        while count < n:
            d += step
            count += working(d)
        return d

    def year_days(self, year: int) -> list[tuple[date, str, str]]:
        """(day, kind, name) of `year` in date order: stored days, or the statutory holidays
        of a provisional year (with any stored boundary day)."""
        days = {d: v for d, v in self.days.items() if d.year == year}
        if not self.is_official(year):
            for d, name in statutory_holidays(year).items():
                days.setdefault(d, (HOLIDAY, name))
        return [(d, kind, name) for d, (kind, name) in sorted(days.items())]


# --- loading, seeding, the revision --------------------------------------------------------------


_CACHE: dict[tuple[str, str], WorkCalendar] = {}
_CACHE_MAX = 16


def _revision(session: Session) -> str | None:
    return session.scalar(select(Meta.value).where(Meta.key == REVISION_KEY))


def bump_revision(session: Session) -> str:
    """A new calendar revision (a counter and a random part, so a cache keyed by it can never
    confuse two databases' histories); every process rebuilds its calendar on the next `load`."""
    row = session.get(Meta, REVISION_KEY)
    try:
        number = int((row.value if row else "0").split(".", 1)[0]) + 1
    except ValueError:
        number = 1
    value = f"{number}.{secrets.token_hex(4)}"
    if row is None:
        session.add(Meta(key=REVISION_KEY, value=value))
    else:
        row.value = value
    session.flush()
    return value


def seed(session: Session, now: datetime) -> list[int]:
    """Store the official years 2004-2026 from the `holidays` package, those not stored yet
    (an imported year is never overwritten); bump the revision. Returns the years added."""
    known = set(session.scalars(select(CalendarYear.year)))
    stored = set(session.scalars(select(CalendarDay.day)))
    years = [y for y in SEED_YEARS if y not in known]
    package = holidays.China(years=SEED_YEARS, language="zh_CN")
    at = to_utc_naive(now)
    for year in years:
        session.add(CalendarYear(year=year, status=OFFICIAL, source=SEED_SOURCE, updated_at=at))
        for d in sorted(package.weekend_workdays):
            if d.year == year and d not in stored:
                session.add(CalendarDay(day=d, kind=WORKDAY, name="调休上班"))
                stored.add(d)
        for d, name in sorted(package.items()):
            if d.year == year and d not in stored:
                session.add(CalendarDay(day=d, kind=HOLIDAY, name=str(name)[:NAME_MAX]))
                stored.add(d)
    bump_revision(session)
    return years


def _seed_once(session: Session, now: datetime | None) -> str | None:
    """Seed in a savepoint; a concurrent first use that seeded first wins (its rows stand)."""
    try:
        with session.begin_nested():
            seed(session, now or datetime.now(UTC))
    except (IntegrityError, OperationalError):  # the other seeder committed first / locked
        pass
    return _revision(session)


def load(session: Session, now: datetime | None = None) -> WorkCalendar:
    """The calendar of the session's database: seeded on first use (in the caller's
    transaction: the caller commits), then cached per process by revision."""
    revision = _revision(session)
    if revision is None:
        revision = _seed_once(session, now)
    key = (str(session.get_bind().url), revision) if revision else None
    if key is not None and key in _CACHE:
        return _CACHE[key]
    years = {y.year: (y.status, y.source) for y in session.scalars(select(CalendarYear))}
    days = {d.day: (d.kind, d.name) for d in session.scalars(select(CalendarDay))}
    calendar = WorkCalendar(years, days, revision)
    if key is not None:
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = calendar
    return calendar


# --- recomputing open deadlines ------------------------------------------------------------------


@dataclass(frozen=True)
class ClockChange:
    """One open clock whose due date (or provisional mark) the calendar moved."""

    case_id: int
    case_number: str
    clock_id: int
    kind: str
    old_due: date
    new_due: date
    old_provisional: bool
    new_provisional: bool

    def line(self) -> str:
        mark = {True: " (provisional)", False: ""}
        return (f"{self.case_number} {self.kind}: {self.old_due.isoformat()}"
                f"{mark[self.old_provisional]} -> {self.new_due.isoformat()}"
                f"{mark[self.new_provisional]}")


def _actor_name(actor: Staff | str) -> str:
    return actor if isinstance(actor, str) else actor.name


def recompute_open_clocks(session: Session, cal: WorkCalendar, actor: Staff | str,
                          now: datetime) -> list[ClockChange]:
    """Recompute every running or paused CaseClock (due = add(started_on, working_days +
    paused_days)) and the Case.due_on copy of its answer clock; each change is written to the
    case's timeline and audited. Finished clocks are history and stay as they were."""
    name = _actor_name(actor)
    changes: list[ClockChange] = []
    clocks = session.scalars(select(CaseClock).where(CaseClock.status.in_(OPEN_CLOCK_STATUSES))
                             .order_by(CaseClock.case_id, CaseClock.id))
    cases: dict[int, Case | None] = {}
    for clock in clocks:
        due = cal.add(clock.started_on, clock.working_days + (clock.paused_days or 0))
        if clock.case_id not in cases:
            cases[clock.case_id] = session.get(Case, clock.case_id)
        case = cases[clock.case_id]
        if clock.kind in ANSWER_CLOCK_KINDS and case is not None and (
                case.due_on != due.on or bool(case.due_provisional) != due.provisional):
            case.due_on, case.due_provisional = due.on, due.provisional
        if clock.due_on == due.on and bool(clock.provisional) == due.provisional:
            continue
        change = ClockChange(clock.case_id, case.number if case else f"#{clock.case_id}",
                             clock.id, clock.kind, clock.due_on, due.on, bool(clock.provisional),
                             due.provisional)
        clock.due_on, clock.provisional = due.on, due.provisional
        detail = {"clock_id": clock.id, "kind": clock.kind, "old_due": change.old_due.isoformat(),
                  "new_due": due.on.isoformat(), "old_provisional": change.old_provisional,
                  "provisional": due.provisional, "calendar_revision": cal.revision}
        session.add(CaseEvent(case_id=clock.case_id, at=to_utc_naive(now), actor=name,
                              action="due_recomputed", from_state=case.state if case else None,
                              to_state=case.state if case else None, detail=detail))
        audit(session, name, "case_due_recomputed", now, object_type="case",
              object_id=change.case_number, **detail)
        changes.append(change)
    session.flush()
    return changes


# --- the import file -----------------------------------------------------------------------------


@dataclass(frozen=True)
class YearFile:
    """A validated official year: holidays and make-up working days by date, with names."""

    year: int
    source: str
    holidays: dict[date, str]
    workdays: dict[date, str]

    def days(self) -> dict[date, tuple[str, str]]:
        merged = {d: (HOLIDAY, n) for d, n in self.holidays.items()}
        merged.update({d: (WORKDAY, n) for d, n in self.workdays.items()})
        return merged


def _as_date(value: Any, where: str, problems: list[str]) -> date | None:
    if isinstance(value, datetime):
        problems.append(f"{where}: {value!r} is a date-time; give a date (2026-10-01)")
        return None
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    problems.append(f"{where}: {value!r} is not a date (2026-10-01)")
    return None


def _name(entry: dict, where: str, problems: list[str], default: str | None) -> str:
    value = entry.get("name", default)
    if not isinstance(value, str) or not value.strip():
        problems.append(f"{where}: needs a name (元旦, 春节 ...)")
        return ""
    if len(value.strip()) > NAME_MAX:
        problems.append(f"{where}: name longer than {NAME_MAX} characters")
    return value.strip()[:NAME_MAX]


def _in_reach(d: date, year: int) -> bool:
    """In `year`, or within BOUNDARY_DAYS of it (a notice's make-up day across New Year)."""
    margin = timedelta(days=BOUNDARY_DAYS)
    return date(year, 1, 1) - margin <= d <= date(year, 12, 31) + margin


def parse_year_file(text: str, source_name: str = "calendar file") -> YearFile:
    """Validate a calendar TOML (see cases/calendar_data/2026.toml): `year`, `source` (the
    notice's http(s) URL), `holidays` (each {name, date} or {name, from, to}) and `workdays`
    (make-up working days: {date, name} or a date; weekends only). Every problem is listed."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CalendarInvalid(source_name, [f"not valid TOML: {exc}"]) from None
    problems: list[str] = []
    for key in sorted(set(data) - {"year", "source", "holidays", "workdays"}):
        problems.append(f"unknown key {key!r} (year, source, holidays, workdays)")
    year = data.get("year")
    if type(year) is not int or not YEAR_RANGE[0] <= year <= YEAR_RANGE[1]:
        problems.append(f"year: needs a year {YEAR_RANGE[0]}..{YEAR_RANGE[1]}, not {year!r}")
        year = None
    source = data.get("source")
    if not isinstance(source, str) or not source.strip().startswith(("https://", "http://")):
        problems.append("source: needs the URL of the State Council's notice (https://...)")
        source = ""
    holidays_in: dict[date, str] = {}
    workdays_in: dict[date, str] = {}
    seen: dict[date, str] = {}

    def place(d: date, where: str, into: dict[date, str], name: str) -> None:
        if year is not None and not _in_reach(d, year):
            problems.append(f"{where}: {d.isoformat()} is not in {year}")
        if d in seen:
            problems.append(f"{where}: {d.isoformat()} is already listed in {seen[d]}")
            return
        seen[d] = where
        into[d] = name

    entries = data.get("holidays")
    if not isinstance(entries, list) or not entries:
        problems.append("holidays: needs a list of {name, date} or {name, from, to} entries")
        entries = []
    for i, entry in enumerate(entries):
        where = f"holidays[{i}]"
        if not isinstance(entry, dict):
            problems.append(f"{where}: needs {{name, date}} or {{name, from, to}}")
            continue
        for key in sorted(set(entry) - {"name", "date", "from", "to"}):
            problems.append(f"{where}: unknown key {key!r} (name, date, from, to)")
        name = _name(entry, where, problems, None)
        if "date" in entry and ("from" in entry or "to" in entry):
            problems.append(f"{where}: give either date or from/to, not both")
            continue
        if "date" in entry:
            d = _as_date(entry["date"], where, problems)
            if d is not None:
                place(d, where, holidays_in, name)
            continue
        if "from" not in entry or "to" not in entry:
            problems.append(f"{where}: needs date, or both from and to")
            continue
        first = _as_date(entry["from"], where + ".from", problems)
        last = _as_date(entry["to"], where + ".to", problems)
        if first is None or last is None:
            continue
        if last < first:
            problems.append(f"{where}: to {last.isoformat()} is before from {first.isoformat()}")
            continue
        if (last - first).days >= 31:
            problems.append(f"{where}: a holiday block of {(last - first).days + 1} days")
            continue
        d = first
        while d <= last:
            place(d, where, holidays_in, name)
            d += _ONE
    workdays = data.get("workdays", [])
    if not isinstance(workdays, list):
        problems.append("workdays: needs a list of {date, name} entries (may be empty)")
        workdays = []
    for i, entry in enumerate(workdays):
        where = f"workdays[{i}]"
        if isinstance(entry, dict):
            for key in sorted(set(entry) - {"name", "date"}):
                problems.append(f"{where}: unknown key {key!r} (date, name)")
            name = _name(entry, where, problems, "调休上班")
            raw = entry.get("date")
            if raw is None:
                problems.append(f"{where}: needs a date")
                continue
        else:
            name, raw = "调休上班", entry
        d = _as_date(raw, where, problems)
        if d is None:
            continue
        if d.weekday() < 5:
            problems.append(f"{where}: {d.isoformat()} is a {d.strftime('%A')}; a make-up "
                            "working day is a Saturday or Sunday")
        place(d, where, workdays_in, name)
    if problems:
        raise CalendarInvalid(source_name, problems)
    assert year is not None
    return YearFile(year=year, source=source.strip(), holidays=holidays_in, workdays=workdays_in)


# --- importing a year ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DayChange:
    """One day the import adds, removes or renames; `working_changed` when its status flips."""

    day: date
    old: tuple[str, str] | None
    new: tuple[str, str] | None
    working_changed: bool

    def line(self) -> str:
        def show(v: tuple[str, str]) -> str:
            return f"{KIND_LABELS[v[0]]} {v[1]}"

        flip = "  [working day changes]" if self.working_changed else ""
        if self.old is None:
            return f"+ {self.day.isoformat()} {show(self.new)}{flip}"
        if self.new is None:
            return f"- {self.day.isoformat()} {show(self.old)}{flip}"
        return f"~ {self.day.isoformat()} {show(self.old)} -> {show(self.new)}{flip}"


@dataclass(frozen=True)
class YearDiff:
    """What an import changes in one year."""

    year: int
    old_status: str
    old_source: str
    new_source: str
    days: list[DayChange] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return (not self.days and self.old_status == OFFICIAL
                and self.old_source == self.new_source)

    @property
    def working_changes(self) -> list[date]:
        return [c.day for c in self.days if c.working_changed]

    def lines(self) -> list[str]:
        head = (f"{self.year}: {self.old_status} -> {OFFICIAL}" if self.old_status != OFFICIAL
                else f"{self.year}: official, days replaced")
        if self.old_source != self.new_source:
            head += f"; source {self.new_source}"
        out = [head, *(c.line() for c in self.days)]
        out.append(f"{len(self.days)} day(s) differ, {len(self.working_changes)} of them "
                   "change whether the day is a working day")
        return out


def diff_year(cal: WorkCalendar, parsed: YearFile) -> YearDiff:
    """The import's changes against the calendar as it stands (a provisional year against its
    statutory estimate)."""
    old = {d: (kind, name) for d, kind, name in cal.year_days(parsed.year)}
    new = parsed.days()
    for d in new:  # listed days across the year's edge compare with what is stored for them
        if d.year != parsed.year and d in cal.days:
            old[d] = cal.days[d]
    changes = []
    for d in sorted(set(old) | set(new)):
        before, after = old.get(d), new.get(d)
        if before == after:
            continue
        if after is None and d.year != parsed.year:
            continue  # a neighbouring year's day the file does not speak of
        was = before[0] == WORKDAY if before else d.weekday() < 5
        becomes = after[0] == WORKDAY if after else d.weekday() < 5
        changes.append(DayChange(d, before, after, was != becomes))
    status, source = cal.status(parsed.year)
    return YearDiff(parsed.year, status, source if status == OFFICIAL else "",
                    parsed.source, changes)


@dataclass(frozen=True)
class ImportResult:
    """The diff shown, and the open deadlines the import moved (empty when unchanged)."""

    diff: YearDiff
    changes: list[ClockChange]
    revision: str | None

    @property
    def unchanged(self) -> bool:
        return self.diff.empty


def import_year(session: Session, actor: Staff, parsed: YearFile, now: datetime) -> ImportResult:
    """Load an official year (admins only): replace its stored days with the file's, flip it to
    official, bump the revision, recompute every open deadline; audited. Nothing is written
    when the year is already official with the same days and source."""
    require_role(actor, Role.ADMIN)
    before = load(session, now)
    diff = diff_year(before, parsed)
    if diff.empty:
        return ImportResult(diff, [], before.revision)
    start, end = date(parsed.year, 1, 1), date(parsed.year, 12, 31)
    session.execute(delete(CalendarDay).where(CalendarDay.day >= start, CalendarDay.day <= end))
    outside = [d for d in parsed.days() if d.year != parsed.year]
    if outside:
        session.execute(delete(CalendarDay).where(CalendarDay.day.in_(outside)))
    session.add_all(CalendarDay(day=d, kind=kind, name=name)
                    for d, (kind, name) in sorted(parsed.days().items()))
    row = session.get(CalendarYear, parsed.year)
    if row is None:
        session.add(CalendarYear(year=parsed.year, status=OFFICIAL, source=parsed.source,
                                 updated_at=to_utc_naive(now)))
    else:
        row.status, row.source, row.updated_at = OFFICIAL, parsed.source, to_utc_naive(now)
    session.flush()
    revision = bump_revision(session)
    audit(session, actor.name, "calendar_import", now, object_type="calendar",
          object_id=str(parsed.year), source=parsed.source, old_status=diff.old_status,
          revision=revision, added=[c.day.isoformat() for c in diff.days if c.old is None],
          removed=[c.day.isoformat() for c in diff.days if c.new is None],
          renamed=[c.day.isoformat() for c in diff.days if c.old and c.new],
          working_changes=[d.isoformat() for d in diff.working_changes])
    after = load(session, now)
    changes = recompute_open_clocks(session, after, actor, now)
    return ImportResult(diff, changes, revision)

