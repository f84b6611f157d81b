"""The `qzbot` command: serve, db, content, ask, report, worker, simulator (and push, staff)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from bot.errors import CampaignInvalid, ConfigError, PackInvalid, QzbotError, SchemaOutdated


class Obj:
    """Lazily built settings/runtime shared by subcommands."""

    def __init__(self, config: str | None):
        self.config = config
        self._settings = None
        self._runtime = None

    @property
    def settings(self):
        """Settings from --config / QZBOT_CONFIG and env."""
        if self._settings is None:
            from bot.settings import load_settings

            self._settings = load_settings(self.config)
        return self._settings

    @property
    def runtime(self):
        """The process runtime (engine, redis, clock)."""
        if self._runtime is None:
            from bot.runtime import build_runtime

            self._runtime = build_runtime(self.settings)
        return self._runtime


def fail(message: str, code: int = 1) -> None:
    """Print a clear error to stderr and exit non-zero."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


@click.group()
@click.option("--config", "config", envvar="QZBOT_CONFIG", type=click.Path(dir_okay=False),
              help="TOML settings file (default: $QZBOT_CONFIG).")
@click.pass_context
def cli(ctx: click.Context, config: str | None) -> None:
    """qzbot — WeChat service of 泉州市交通运输局 (泉州交通运输)."""
    from bot.logs import setup_logging

    setup_logging(logging.WARNING)  # offset-stamped times, openids redacted
    ctx.obj = Obj(config)


@cli.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.pass_obj
def db_upgrade(obj: Obj) -> None:
    """Apply schema migrations (Alembic) up to the newest."""
    from bot.store.db import schema_status, upgrade

    upgrade(obj.runtime.engine)
    click.echo(f"database at revision {schema_status(obj.runtime.engine)[0]}")


@db.command("status")
@click.pass_obj
def db_status(obj: Obj) -> None:
    """Show the current and the required schema revision."""
    from bot.store.db import schema_status

    current, head = schema_status(obj.runtime.engine)
    click.echo(f"current {current or '-'}, head {head}" + ("" if current == head else
                                                            " (run: qzbot db upgrade)"))


@cli.group()
def content() -> None:
    """Content packs (import/export)."""


@content.command("import")
@click.argument("pack", type=click.Path(dir_okay=False))
@click.option("--prune", is_flag=True, help="Delete records of the pack's kinds not in the pack.")
@click.option("--force", is_flag=True,
              help="With --prune: let a kind listed with no records delete all of that kind.")
@click.pass_obj
def content_import(obj: Obj, pack: str, prune: bool, force: bool) -> None:
    """Import a content pack (all-or-nothing, idempotent)."""
    from bot.content.pack import import_pack, read_pack
    from bot.store.db import require_current_schema, transaction

    rt = obj.runtime
    require_current_schema(rt.engine)
    from push.drafts import drafts_for_changes

    with transaction(rt.sessions) as session:
        report = import_pack(session, read_pack(pack), source=pack, now=rt.now(),
                             districts=obj.settings.bot.districts, prune=prune, force=force)
        drafts = drafts_for_changes(session, obj.settings, rt.now(), report.changed_public)
    click.echo(f"{pack}: {report.summary()}")
    if drafts:
        click.echo(f"draft campaigns for review: {', '.join(map(str, drafts))}")


@content.command("export")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="File (default stdout).")
@click.option("--all", "include_all", is_flag=True,
              help="Every record, not only 主动公开 ones (needs --as and the account's key).")
@click.option("--as", "as_name", default=None, help="Staff account exporting with --all.")
@click.option("--key", default=None, help="Account key (default $QZBOT_STAFF_KEY).")
@click.pass_obj
def content_export(obj: Obj, output: str | None, include_all: bool, as_name: str | None,
                   key: str | None) -> None:
    """Export the 主动公开 records (--all: every record) as a content pack."""
    from bot.content.pack import export_pack

    if include_all and not as_name:
        raise click.UsageError("--all exports non-public records: --as STAFF is required")
    with obj.runtime.sessions() as session:
        if include_all:
            _audit_full_export(obj, session, as_name, key, output)
        text = export_pack(session, include_non_public=include_all)
    if output:
        Path(output).write_text(text, encoding="utf-8")
    else:
        click.echo(text, nl=False)


def _audit_full_export(obj: Obj, session, name: str, key: str | None,
                       output: str | None) -> None:
    """Authenticate the staff account and audit (committed) that it exported every record."""
    import os

    from push.audit import audit
    from push.staff import authenticate

    staff = authenticate(session, name, key or os.environ.get("QZBOT_STAFF_KEY"))
    audit(session, staff.name, "content_export_all", obj.runtime.now(),
          output=output or "stdout")
    session.commit()


@cli.group()
def report() -> None:
    """Reports for staff."""


@report.command("unanswered")
@click.option("--limit", default=50, show_default=True)
@click.pass_obj
def report_unanswered(obj: Obj, limit: int) -> None:
    """Questions the bot could not answer, most frequent first."""
    from bot.clock import to_local_naive
    from bot.store.queries import unanswered_report

    with obj.runtime.sessions() as session:
        rows = unanswered_report(session, limit)
    if not rows:
        click.echo("no unanswered questions")
    for row in rows:
        click.echo(f"{row.count:>5}  {to_local_naive(row.last_at):%Y-%m-%d %H:%M}  {row.text}")


def main() -> None:
    """Console-script entry point: clear one-line errors instead of tracebacks."""
    from bot import cli_more  # noqa: F401 - registers serve/ask/worker/simulator
    from push import cli as push_cli  # noqa: F401 - registers staff/push

    try:
        cli.main(standalone_mode=True)
    except ConfigError as exc:
        fail(str(exc), 2)
    except SchemaOutdated as exc:
        fail(str(exc), 3)
    except PackInvalid as exc:
        fail(str(exc), 4)
    except CampaignInvalid as exc:
        fail("refused:\n  - " + "\n  - ".join(exc.problems), 5)
    except QzbotError as exc:
        fail(str(exc))
