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
    """Apply schema migrations (Alembic) up to the newest."""
    from bot.store.db import schema_status, upgrade  # noqa: PLC0415 - keeps CLI start-up fast

    upgrade(obj.runtime.engine)
    click.echo(f"database at revision {schema_status(obj.runtime.engine)[0]}")


@db.command("status")
@click.pass_obj
def db_status(obj: Obj) -> None:
    """Show the current and the required schema revision."""
    from bot.store.db import schema_status  # noqa: PLC0415 - keeps CLI start-up fast

    current, head = schema_status(obj.runtime.engine)
    click.echo(f"current {current or '-'}, head {head}" + ("" if current == head else
                                                            " (run: qzbot db upgrade)"))
