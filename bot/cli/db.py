"""`qzbot db upgrade | status`: the database schema (Alembic)."""

from __future__ import annotations

import click

from bot.cli.common import Obj


@click.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.pass_obj
def db_upgrade(obj: Obj) -> None:
    """Apply schema migrations (Alembic) up to the newest, then seed the working-day calendar
    (official years from the `holidays` package; idempotent, imported years are kept)."""
    from bot.store.db import schema_status, transaction, upgrade  # noqa: PLC0415 - start-up
    from cases import calendar  # noqa: PLC0415 - keeps CLI start-up fast

    upgrade(obj.runtime.engine)
    click.echo(f"database at revision {schema_status(obj.runtime.engine)[0]}")
    with transaction(obj.runtime.sessions) as session:
        cal = calendar.load(session, obj.runtime.now())
    official = sorted(y for y in range(2004, obj.runtime.now().year + 2) if cal.is_official(y))
    if official:
        click.echo(f"working-day calendar: official {official[0]}-{official[-1]}")


@db.command("status")
@click.pass_obj
def db_status(obj: Obj) -> None:
    """Show the current and the required schema revision."""
    from bot.store.db import schema_status  # noqa: PLC0415 - keeps CLI start-up fast

    current, head = schema_status(obj.runtime.engine)
    click.echo(f"current {current or '-'}, head {head}" + ("" if current == head else
                                                            " (run: qzbot db upgrade)"))
