"""`qzbot content import | export`: content packs (../shared/docs/content-pack.md).

An import that changes 主动公开 records also creates draft campaigns for review (push.drafts),
in the same transaction. A record whose live version is a console edit is kept ("a console
edit wins", editorial/__init__.py) and listed, unless --pack-wins. `export --all` writes
non-public records too: it needs a staff login and is audited (committed) before anything is
written.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import click

from bot.cli.common import Obj, staff_key


@click.group()
def content() -> None:
    """Content packs (import/export)."""


@content.command("import")
@click.argument("pack", type=click.Path(dir_okay=False))
@click.option("--prune", is_flag=True, help="Delete records of the pack's kinds not in the pack.")
@click.option("--force", is_flag=True,
              help="With --prune: let a kind listed with no records delete all of that kind.")
@click.option("--pack-wins", is_flag=True,
              help="Overwrite records whose live version is a console edit (default: keep).")
@click.pass_obj
def content_import(obj: Obj, pack: str, prune: bool, force: bool, pack_wins: bool) -> None:
    """Import a content pack (all-or-nothing, idempotent)."""
    from bot.content.pack import import_pack, read_pack  # noqa: PLC0415 - fast start-up
    from push.drafts import drafts_for_changes  # noqa: PLC0415 - keeps CLI start-up fast

    rt = obj.runtime
    with obj.transaction() as session:
        report = import_pack(session, read_pack(pack), source=pack, now=rt.now(),
                             districts=obj.settings.bot.districts, prune=prune, force=force,
                             pack_wins=pack_wins)
        drafts = drafts_for_changes(session, obj.settings, rt.now(), report.changed_public)
    click.echo(f"{pack}: {report.summary()}")
    for line in report.kept_lines():
        click.echo(f"  {line}")
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
    from bot.content.pack import export_pack  # noqa: PLC0415 - keeps CLI start-up fast
    from push import actions  # noqa: PLC0415 - keeps CLI start-up fast

    if include_all and not as_name:
        raise click.UsageError("--all exports non-public records: --as STAFF is required")
    with obj.runtime.sessions() as session:
        if include_all:
            actor = actions.login(session, as_name, staff_key(key))
            actions.authorize_full_export(session, actor, obj.runtime.now(), output or "stdout")
            session.commit()  # the audit entry stands even if the export then fails
        text = export_pack(session, include_non_public=include_all)
    if output:
        Path(output).write_text(text, encoding="utf-8")
        click.echo(_written(text, output, include_all))
    else:
        click.echo(text, nl=False)


def _written(text: str, output: str, include_all: bool) -> str:
    """What `export -o FILE` wrote: records per kind (read back from the text) and the path."""
    counts = {kind: len(records) for kind, records in tomllib.loads(text).items()}
    per_kind = ", ".join(f"{kind} {n}" for kind, n in counts.items()) or "no records"
    which = "every record" if include_all else "主动公开 records and synonyms only"
    return (f"wrote {sum(counts.values())} records ({per_kind}; {which}) "
            f"to {Path(output).resolve()}")
