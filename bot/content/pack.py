"""Import and export content packs: all-or-nothing, idempotent, with --prune.

`--prune` deletes the records of the pack's kinds that the pack no longer lists; a kind
the pack lists with no records at all (`guide = []`) would delete every record of that
kind, which is almost always a broken export, so it needs `--force` (content-pack.md:
"--prune removes records of the pack's kinds whose id is no longer in the pack").
Export writes only 主动公开 records unless the caller, an authenticated staff account,
asks for every record (issue 6, item 3: non-public records leave only with a login).

Coexistence with console edits (issue 9; the rule is stated in editorial/__init__.py): "a
console edit wins". A record whose live version was published from the console (its
published RecordRevision has source "console") is not overwritten by an import unless the
caller passes `pack_wins`, and `--prune` never deletes it; the report lists each one as
"kept console edit". Every record an import creates or changes gets a RecordRevision
(source "pack", state "published"; the previous published one becomes "superseded"), so a
record's history shows both. `write_record` is the one path that writes a Record: imports
and the console's publish (editorial.actions.approve) both use it.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import tomli_w
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from bot.clock import SHANGHAI, to_utc_naive
from bot.content.schema import KINDS, record_title, validate_pack
from bot.errors import PackInvalid
from bot.store.models import PUBLIC, Record, RecordRevision
from bot.store.queries import bump_content_revision

SAMPLE_PACK = Path(__file__).resolve().parent.parent / "data" / "sample_pack.toml"
PACK_AUTHOR = "content-pack"  # RecordRevision.author of a pack import's revisions
# revision states (editorial.revisions names the whole set; these two are written here too)
PUBLISHED, SUPERSEDED = "published", "superseded"
SOURCE_PACK, SOURCE_CONSOLE = "pack", "console"
KEPT_HINT = "use --pack-wins / the page's checkbox to take the pack version"


@dataclass
class ImportReport:
    """What an import changed (or, in a dry run, would change).

    `changed_public` are keys of new/changed 主动公开 records; `created_keys`,
    `updated_keys`, `pruned_keys` name every change; `kept_console` the records whose live
    console edit the import left alone (changed in the pack, or missing from it with --prune).
    """

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    pruned: int = 0
    changed_public: list[str] = field(default_factory=list)
    created_keys: list[str] = field(default_factory=list)
    updated_keys: list[str] = field(default_factory=list)
    pruned_keys: list[str] = field(default_factory=list)
    kept_console: list[str] = field(default_factory=list)
    dry_run: bool = False

    def summary(self) -> str:
        """One line for the CLI."""
        line = (f"created {self.created}, updated {self.updated}, unchanged {self.unchanged}, "
                f"pruned {self.pruned}")
        return line + (f", kept console edit {len(self.kept_console)}"
                       if self.kept_console else "")

    def kept_lines(self) -> list[str]:
        """One line per record whose console edit was kept."""
        return [f"kept console edit {key} ({KEPT_HINT})" for key in self.kept_console]


def parse_pack(text: str, source: str) -> dict[str, Any]:
    """Parse pack text; non-TOML text raises PackInvalid."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PackInvalid(source, [f"not valid TOML: {exc}"]) from None


def read_pack(path: str | Path) -> dict[str, Any]:
    """Parse a pack file; unreadable or non-TOML files raise PackInvalid."""
    source = str(path)
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise PackInvalid(source, ["file not found"]) from None
    except UnicodeDecodeError as exc:
        raise PackInvalid(source, [f"not UTF-8: {exc}"]) from None
    return parse_pack(text, source)


def _to_json(value: Any) -> Any:
    """Pack value -> JSON-able value (dates as ISO strings, date-times as local ISO)."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(SHANGHAI).replace(tzinfo=None)
        return value.isoformat(timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _to_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_json(v) for v in value]
    return value


def entry_data(entry: dict[str, Any]) -> dict[str, Any]:
    """A pack entry as stored in Record.data / RecordRevision.data (JSON-able)."""
    return _to_json(entry)


def data_digest(data: dict[str, Any]) -> str:
    """The digest of stored record data (Record.digest; a draft's base_digest)."""
    return hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False)
                          .encode()).hexdigest()


def entry_from_data(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """Stored JSON -> pack value types, in schema field order (the inverse of entry_data)."""
    return _from_json(kind, data)


def _from_json(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """Stored JSON -> pack value types, in schema field order."""
    out: dict[str, Any] = {}
    for f in KINDS[kind]:
        if f.name not in data:
            continue
        value = data[f.name]
        if f.type == "date":
            value = date.fromisoformat(value)
        elif f.type == "datetime":
            value = datetime.fromisoformat(value)
        out[f.name] = value
    return out


def _columns(kind: str, entry: dict[str, Any]) -> dict[str, Any]:
    """The query columns of a record, derived from its fields."""
    disclosure = entry.get("disclosure")
    starts, ends = entry.get("starts_at"), entry.get("ends_at")
    return {
        "title": record_title(kind, entry),
        "disclosure": disclosure,
        # kinds without a disclosure attribute (guides, hotlines...) are public service info
        "public": kind != "synonym" and (disclosure is None or disclosure == PUBLIC),
        "district": entry.get("district"),
        "notice_kind": entry.get("kind") if kind == "notice" else None,
        "urgent": bool(entry.get("urgent", False)),
        "starts_at": to_utc_naive(starts) if isinstance(starts, datetime) else None,
        "ends_at": to_utc_naive(ends) if isinstance(ends, datetime) else None,
    }


def _prune_problems(session: Session, doc: dict[str, Any]) -> list[str]:
    """Kinds listed with no records whose existing records --prune would all delete."""
    problems = []
    for kind, entries in doc.items():
        if kind in KINDS and isinstance(entries, list) and not entries:
            count = session.scalar(select(func.count()).select_from(Record)
                                   .where(Record.kind == kind))
            if count:
                problems.append(f"{kind}: listed with no records, so --prune would delete all "
                                f"{count} existing {kind} record(s); add --force if intended")
    return problems


def write_record(session: Session, kind: str, entry: dict[str, Any], now: datetime,
                 record: Record | None = None) -> Record:
    """Create or overwrite the Record of a validated pack entry (the one write path: pack
    imports and the console's publish). `record`: the existing row, if any. The caller bumps
    the content revision once its writes are done."""
    stamp = to_utc_naive(now)
    data = _to_json(entry)
    if record is None:
        record = Record(kind=kind, rid=entry["id"], created_at=stamp)
        session.add(record)
    for name, value in _columns(kind, entry).items():
        setattr(record, name, value)
    record.data, record.digest, record.updated_at = data, data_digest(data), stamp
    return record


def console_live(session: Session, kind: str) -> set[str]:
    """Ids of `kind` records whose live version was published from the console."""
    return set(session.scalars(select(RecordRevision.rid).where(
        RecordRevision.kind == kind, RecordRevision.state == PUBLISHED,
        RecordRevision.source == SOURCE_CONSOLE)))


def next_versions(session: Session, kind: str) -> dict[str, int]:
    """The highest revision version per id of `kind` (absent: no revision yet)."""
    rows = session.execute(select(RecordRevision.rid, func.max(RecordRevision.version))
                           .where(RecordRevision.kind == kind).group_by(RecordRevision.rid))
    return {rid: int(v) for rid, v in rows}


def supersede_published(session: Session, kind: str, rids: list[str]) -> None:
    """Mark the published revisions of these records superseded (a newer version is live)."""
    for start in range(0, len(rids), 500):
        chunk = rids[start:start + 500]
        for rev in session.scalars(select(RecordRevision).where(
                RecordRevision.kind == kind, RecordRevision.rid.in_(chunk),
                RecordRevision.state == PUBLISHED)):
            rev.state = SUPERSEDED


def import_pack(session: Session, doc: dict[str, Any], *, source: str, now: datetime,
                districts: tuple[str, ...], prune: bool = False, force: bool = False,
                pack_wins: bool = False, dry_run: bool = False,
                author: str = PACK_AUTHOR) -> ImportReport:
    """Validate and apply a parsed pack in the caller's transaction (caller commits).

    force: let --prune empty a kind that the pack lists with no records.
    pack_wins: overwrite records whose live version is a console edit (default: keep them).
    dry_run: validate and report what would change, write nothing.
    author: who imports (RecordRevision.author of the pack revisions).
    """
    problems = validate_pack(doc, districts)
    if prune and not force:
        problems += _prune_problems(session, doc)
    if problems:
        raise PackInvalid(source, problems)
    stamp = to_utc_naive(now)
    report = ImportReport(dry_run=dry_run)
    for kind, entries in doc.items():
        existing = {r.rid: r for r in session.scalars(select(Record).where(Record.kind == kind))}
        console = console_live(session, kind)
        written: list[tuple[dict[str, Any], Record]] = []
        for entry in entries:
            key = f"{kind}:{entry['id']}"
            record = existing.pop(entry["id"], None)
            if record is not None and record.digest == data_digest(_to_json(entry)):
                report.unchanged += 1
                continue
            if record is not None and record.rid in console and not pack_wins:
                report.kept_console.append(key)
                continue
            if record is None:
                report.created += 1
                report.created_keys.append(key)
            else:
                report.updated += 1
                report.updated_keys.append(key)
            if _columns(kind, entry)["public"]:
                report.changed_public.append(key)
            if not dry_run:
                written.append((entry, write_record(session, kind, entry, now, record)))
        if written:
            _record_pack_revisions(session, kind, written, stamp, author, source)
        if prune:
            for record in existing.values():
                if record.rid in console:  # --prune never deletes a console edit
                    report.kept_console.append(record.key)
                    continue
                report.pruned += 1
                report.pruned_keys.append(record.key)
                if not dry_run:
                    session.delete(record)
            if not dry_run:
                supersede_published(session, kind, [k.split(":", 1)[1]
                                                    for k in report.pruned_keys
                                                    if k.startswith(f"{kind}:")])
    if not dry_run and (report.created or report.updated or report.pruned):
        session.flush()
        bump_content_revision(session)
    return report


def _record_pack_revisions(session: Session, kind: str,
                           written: list[tuple[dict[str, Any], Record]], stamp: datetime,
                           author: str, source: str) -> None:
    """One published RecordRevision (source "pack") per record an import wrote."""
    versions = next_versions(session, kind)
    supersede_published(session, kind, [r.rid for _, r in written if r.rid in versions])
    session.flush()
    session.execute(insert(RecordRevision), [  # one bulk INSERT: imports can be 10 000 records
        {"kind": kind, "rid": record.rid, "version": versions.get(record.rid, 0) + 1,
         "title": record_title(kind, entry), "data": record.data, "state": PUBLISHED,
         "source": SOURCE_PACK, "base_digest": None, "author": author[:64],
         "reason": f"import {Path(source).name}"[:200], "created_at": stamp,
         "updated_at": stamp, "decided_at": stamp}
        for entry, record in written])


def export_pack(session: Session, include_non_public: bool = False) -> str:
    """Records as a pack (TOML text) that imports back to the same records.

    Only 主动公开 records (and synonyms, search vocabulary) unless `include_non_public`,
    which the caller grants only to an authenticated staff account.
    """
    doc: dict[str, list[dict[str, Any]]] = {}
    stmt = select(Record).order_by(Record.kind, Record.rid)
    if not include_non_public:
        stmt = stmt.where(Record.public.is_(True) | (Record.kind == "synonym"))
    for record in session.scalars(stmt):
        doc.setdefault(record.kind, []).append(_from_json(record.kind, record.data))
    ordered = {k: doc[k] for k in KINDS if k in doc}
    header = ("# qzbot content pack v1 (exported: every record)\n\n" if include_non_public else
              "# qzbot content pack v1 (exported: 主动公开 records only; importing this with\n"
              "# --prune would delete the non-public ones)\n\n")
    return header + tomli_w.dumps(ordered)
