"""`qzbot report unanswered`: what citizens asked that the bot could not answer."""

from __future__ import annotations

import click

from bot.cli.common import Obj
from bot.clock import to_local_naive


@click.group()
def report() -> None:
    """Reports for staff."""


@report.command("unanswered")
@click.option("--limit", default=50, show_default=True)
@click.pass_obj
def report_unanswered(obj: Obj, limit: int) -> None:
    """Questions the bot could not answer, most frequent first."""
    from bot.store.queries import unanswered_report  # noqa: PLC0415 - keeps CLI start-up fast

    with obj.runtime.sessions() as session:
        rows = unanswered_report(session, limit)
    if not rows:
        click.echo("no unanswered questions")
    for row in rows:
        click.echo(f"{row.count:>5}  {to_local_naive(row.last_at):%Y-%m-%d %H:%M}  {row.text}")
