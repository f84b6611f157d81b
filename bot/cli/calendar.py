"""`qzbot calendar import | show | due`: the working-day calendar (cases/calendar.py).

`import FILE` loads a year's State Council notice (TOML, see cases/calendar_data/2026.toml):
every problem of a bad file is listed and nothing changes (exit 4); otherwise the diff against
the stored year is shown, the year becomes official and every open deadline is recomputed
(admins only: `--as NAME`, key in $QZBOT_STAFF_KEY or --key; `--dry-run` shows all of it and
rolls back). `show YEAR` and `due DATE N` read public facts and need no login.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import click

from bot.cli.common import Obj, as_option, fail, key_option, staff_key

MAX_COUNT = 1000  # as cases.calendar.MAX_COUNT (not imported here: keeps CLI start-up fast)


@click.group()
def calendar() -> None:
    """Working-day calendar: import an official year, show a year, count a deadline."""


@calendar.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@as_option
@key_option
@click.option("--dry-run", is_flag=True, help="Validate, show the diff and the deadlines it "
                                              "would move, change nothing.")
@click.pass_obj
def calendar_import(obj: Obj, file: str, as_name: str, key: str | None, dry_run: bool) -> None:
    """Load an official year from FILE (TOML: year, source, holidays, workdays)."""
    from bot.store.db import require_current_schema  # noqa: PLC0415 - keeps CLI start-up fast
    from cases import calendar as workcal  # noqa: PLC0415 - same
    from push import actions  # noqa: PLC0415 - same

    try:
        parsed = workcal.parse_year_file(Path(file).read_text(encoding="utf-8"), file)
    except UnicodeDecodeError:
        fail(f"{file}: not UTF-8 text, nothing imported", 4)
    except workcal.CalendarInvalid as exc:
        fail(str(exc), 4)
    rt = obj.runtime
    if dry_run:
        require_current_schema(rt.engine)
        with rt.sessions() as session:
            actor = actions.login(session, as_name, staff_key(key))
            result = workcal.import_year(session, actor, parsed, rt.now())
            session.rollback()
    else:
        with obj.transaction() as session:
            actor = actions.login(session, as_name, staff_key(key))
            result = workcal.import_year(session, actor, parsed, rt.now())
    if result.unchanged:
        click.echo(f"{parsed.year}: already official with these days and this source; "
                   "nothing changed")
        return
    for line in result.diff.lines():
        click.echo(line)
    verb = "would move" if dry_run else "moved"
    click.echo(f"open deadlines {verb}: {len(result.changes)}")
    for change in result.changes:
        click.echo("  " + change.line())
    if dry_run:
        click.echo("dry run: nothing changed")
    else:
        click.echo(f"{parsed.year} is official now (calendar revision {result.revision})")


@calendar.command("show")
@click.argument("year", type=click.IntRange(1950, 2100))
@click.pass_obj
def calendar_show(obj: Obj, year: int) -> None:
    """A year's status and source, its holidays (休) and make-up working days (班)."""
    from cases import calendar as workcal  # noqa: PLC0415 - keeps CLI start-up fast

    with obj.transaction() as session:  # commits the first-use seed
        cal = workcal.load(session, obj.runtime.now())
    status, source = cal.status(year)
    click.echo(f"{year} {status} ({workcal.STATUS_LABELS[status]}) source: {source}")
    days = cal.year_days(year)
    for d, kind, name in days:
        click.echo(f"{d.isoformat()} {d.strftime('%a')} {workcal.KIND_LABELS[kind]} {name}")
    off = [d for d, kind, _ in days if kind == workcal.HOLIDAY]
    weekday_off = [d for d in off if d.weekday() < 5]
    work = [d for d, kind, _ in days if kind == workcal.WORKDAY]
    click.echo(f"holidays: {len(off)} day(s), {len(weekday_off)} of them Monday-Friday; "
               f"make-up working days: {len(work)}")
    if status != workcal.OFFICIAL:
        click.echo(f"provisional: deadlines reaching into {year} are estimates until its "
                   "notice is imported (qzbot calendar import FILE)")


@calendar.command("due")
@click.argument("start", type=click.DateTime(formats=["%Y-%m-%d"]))
@click.argument("n", type=click.IntRange(0, MAX_COUNT))
@click.pass_obj
def calendar_due(obj: Obj, start: datetime, n: int) -> None:
    """The date N working days after START (START is day 0), ISO, then " provisional" when
    the count crosses a day of a year not yet official."""
    from cases import calendar as workcal  # noqa: PLC0415 - keeps CLI start-up fast

    day: date = start.date()
    with obj.transaction() as session:  # commits the first-use seed
        cal = workcal.load(session, obj.runtime.now())
    click.echo(str(cal.add(day, n)))
