"""Import and export content packs: all-or-nothing, idempotent, with --prune.

`--prune` deletes the records of the pack's kinds that the pack no longer lists; a kind
the pack lists with no records at all (`guide = []`) would delete every record of that
kind, which is almost always a broken export, so it needs `--force` (content-pack.md:
"--prune removes records of the pack's kinds whose id is no longer in the pack").
Export writes only 主动公开 records unless the caller, an authenticated staff account,
asks for every record (issue 6, item 3: non-public records leave only with a login).
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
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.clock import SHANGHAI, to_utc_naive
from bot.content.schema import KINDS, record_title, validate_pack
from bot.errors import PackInvalid
from bot.store.models import PUBLIC, Record
from bot.store.queries import bump_content_revision

SAMPLE_PACK = Path(__file__).resolve().parent.parent / "data" / "sample_pack.toml"


@dataclass
class ImportReport:
    """What an import changed. `changed_public` are keys of new/changed 主动公开 records."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    pruned: int = 0
    changed_public: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for the CLI."""
        return (f"created {self.created}, updated {self.updated}, unchanged {self.unchanged}, "
                f"pruned {self.pruned}")


def read_pack(path: str | Path) -> dict[str, Any]:
    """Parse a pack file; unreadable or non-TOML files raise PackInvalid."""
    source = str(path)
    try:
        text = Path(path).read_bytes().decode("utf-8")
        return tomllib.loads(text)
    except FileNotFoundError:
        raise PackInvalid(source, ["file not found"]) from None
    except UnicodeDecodeError as exc:
        raise PackInvalid(source, [f"not UTF-8: {exc}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise PackInvalid(source, [f"not valid TOML: {exc}"]) from None


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


def import_pack(session: Session, doc: dict[str, Any], *, source: str, now: datetime,
                districts: tuple[str, ...], prune: bool = False,
                force: bool = False) -> ImportReport:
    """Validate and apply a parsed pack in the caller's transaction (caller commits).

    force: let --prune empty a kind that the pack lists with no records.
    """
    problems = validate_pack(doc, districts)
    if prune and not force:
        problems += _prune_problems(session, doc)
    if problems:
        raise PackInvalid(source, problems)
    stamp = to_utc_naive(now)
    report = ImportReport()
    for kind, entries in doc.items():
        existing = {r.rid: r for r in session.scalars(select(Record).where(Record.kind == kind))}
        for entry in entries:
            data = _to_json(entry)
            digest = hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False)
                                    .encode()).hexdigest()
            record = existing.pop(entry["id"], None)
            if record is not None and record.digest == digest:
                report.unchanged += 1
                continue
            cols = _columns(kind, entry)
            if record is None:
                record = Record(kind=kind, rid=entry["id"], created_at=stamp)
                session.add(record)
                report.created += 1
            else:
                report.updated += 1
            for name, value in cols.items():
                setattr(record, name, value)
            record.data, record.digest, record.updated_at = data, digest, stamp
            if cols["public"]:
                report.changed_public.append(f"{kind}:{entry['id']}")
        if prune:
            for record in existing.values():
                session.delete(record)
                report.pruned += 1
    if report.created or report.updated or report.pruned:
        session.flush()
        bump_content_revision(session)
    return report


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
