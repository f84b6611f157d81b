"""The content-pack v1 schema and its validator; every problem is collected, none dropped.

Hand-written rather than a JSON-schema library: TOML dates/date-times, the district list
from configuration and messages that name file, kind, index and field need custom rules,
and the whole schema fits in one table below.

Hardening (issue 6, item 9): what a pack says reaches citizens, and WeChat text messages
render `<a href>` links, so text fields refuse anything that looks like HTML markup and URL
fields accept only absolute http(s) URLs (no `javascript:`, `data:`, `weixin:`...). Values
stored in length-limited columns (the id: records.rid; a district) are checked against the
column here, so PostgreSQL and SQLite refuse the same packs, before any write.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import urlsplit

from bot.clock import to_utc_naive
from bot.store.models import Record
from bot.vocab import DISCLOSURE_VALUES, NOTICE_KINDS

# a tag or comment opener: "<a ", "</p", "<!--", "<?xml", "<img/" (a plain "<" or "a < b" passes)
HTML = re.compile(r"<\s*[A-Za-z/!?]")
URL_SCHEMES = ("http", "https")
_URL_BAD_CHARS = re.compile(r"[\s<>\"'\\\x00-\x1f\x7f]")
# column limits of values stored as they are (records.rid, records.district)
ID_MAX = Record.__table__.c.rid.type.length
DISTRICT_MAX = Record.__table__.c.district.type.length


@dataclass(frozen=True)
class Field:
    """One field of a kind: its type tag, whether required, and allowed values if closed."""

    name: str
    type: str  # str | strs | url | date | datetime | percent | bool | interpretation
    required: bool = False
    choices: str = ""  # "" | "disclosure" | "district" | "notice_kind"


def _f(spec: str) -> Field:
    """Compact field spec: 'name:type[!][@choices]' ('!' = required)."""
    name, rest = spec.split(":")
    choices = ""
    if "@" in rest:
        rest, choices = rest.split("@")
    return Field(name, rest.rstrip("!"), rest.endswith("!"), choices)


KINDS: dict[str, tuple[Field, ...]] = {
    kind: tuple(_f(s) for s in ("id:str!", *specs, "keywords:strs"))
    for kind, specs in {
        "hotline": ("name:str!", "number:str!", "hours:str", "scope:str"),
        "guide": ("title:str!", "department:str", "basis:str", "conditions:strs",
                  "materials:strs!", "steps:strs!", "time_limit:str", "fee:str", "where:str",
                  "hours:str", "phone:str", "online_url:url"),
        "policy": ("title:str!", "doc_number:str", "issuer:str!", "issued_on:date!",
                   "disclosure:str!@disclosure", "summary:str!", "url:url",
                   "interpretation:interpretation"),
        "disclosure": ("title:str!", "category:str!", "issuer:str!", "formed_on:date!",
                       "published_on:date", "disclosure:str!@disclosure", "summary:str",
                       "url:url"),
        "project": ("name:str!", "district:str@district", "stage:str!", "progress_percent:percent",
                    "summary:str!", "updated_on:date!", "url:url"),
        "notice": ("title:str!", "kind:str!@notice_kind", "district:str@district", "body:str!",
                   "starts_at:datetime!", "ends_at:datetime", "urgent:bool", "url:url"),
        "faq": ("question:str!", "answer:str!"),
        "synonym": ("words:strs!",),
    }.items()
}
TITLE_FIELD = {"hotline": "name", "project": "name", "faq": "question"}
INTERPRETATION_FIELDS = {"title": True, "summary": True, "url": False}


def _type_problem(value: Any, f: Field) -> str | None:
    """Why `value` does not fit field `f`'s type, or None."""
    t = f.type
    if t == "str":
        ok = isinstance(value, str) and (bool(value.strip()) or not f.required)
        return _markup_problem(value) if ok else "must be a non-empty string"
    if t == "strs":
        ok = isinstance(value, list) and all(isinstance(x, str) and x.strip() for x in value)
        if ok and f.required and not value:
            return "must not be empty"
        if ok:
            return next(filter(None, (_markup_problem(x) for x in value)), None)
        return "must be an array of non-empty strings"
    if t == "url":  # an empty optional URL stays allowed, as for any optional string
        return None if value == "" and not f.required else url_problem(value)
    if t == "date":
        ok = isinstance(value, date) and not isinstance(value, datetime)
        return None if ok else "must be a TOML date (2026-11-27)"
    if t == "datetime":
        ok = isinstance(value, datetime)
        return None if ok else "must be a TOML local date-time (2026-11-27T08:00:00)"
    if t == "percent":
        ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 100
        return None if ok else "must be an integer 0-100"
    if t == "bool":
        return None if isinstance(value, bool) else "must be true or false"
    if t == "interpretation":
        return _interpretation_problem(value)
    raise AssertionError(f"unknown field type {t}")


def _markup_problem(text: str) -> str | None:
    """Why a text value is refused as markup, or None (WeChat text renders <a href> links)."""
    found = HTML.search(text)
    if found is None:
        return None
    return f"must be plain text, not HTML (found {text[found.start():found.start() + 12]!r})"


def url_problem(value: Any) -> str | None:
    """Why `value` is not an absolute http(s) URL we may show citizens, or None."""
    if not isinstance(value, str) or not value.strip():
        return "must be a non-empty string"
    if _URL_BAD_CHARS.search(value):
        return "must be a URL without spaces, quotes, angle brackets or control characters"
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return "must be a valid http(s) URL"
    if parts.scheme.lower() not in URL_SCHEMES or not parts.hostname:
        return f"must be an http(s) URL (got scheme {parts.scheme[:16]!r})"
    return None


def _interpretation_problem(value: Any) -> str | None:
    if not isinstance(value, dict):
        return "must be a table { title, summary, url }"
    unknown = sorted(set(value) - set(INTERPRETATION_FIELDS))
    if unknown:
        return f"unknown field(s) {', '.join(unknown)} (allowed: title, summary, url)"
    for key, required in INTERPRETATION_FIELDS.items():
        if key in value and not (isinstance(value[key], str) and value[key].strip()):
            return f"{key} must be a non-empty string"
        if required and key not in value:
            return f"{key} is required"
        if key in value:
            problem = url_problem(value[key]) if key == "url" else _markup_problem(value[key])
            if problem:
                return f"{key} {problem}"
    return None


def validate_pack(doc: dict[str, Any], districts: tuple[str, ...]) -> list[str]:
    """Return every problem in a parsed pack (empty list: valid)."""
    problems: list[str] = []
    choices = {"disclosure": DISCLOSURE_VALUES, "district": districts,
               "notice_kind": NOTICE_KINDS}
    for kind, entries in doc.items():
        if kind not in KINDS:
            problems.append(f"unknown kind [[{kind}]] (known: {', '.join(KINDS)})")
            continue
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            problems.append(f"{kind}: must be an array of tables ([[{kind}]])")
            continue
        seen: dict[str, int] = {}
        for index, entry in enumerate(entries):
            where = f"{kind}[{index}]" + (f" id={_shown(entry['id'])!r}" if isinstance(
                entry.get("id"), str) else "")
            problems += _record_problems(kind, entry, where, choices)
            rid = entry.get("id")
            if isinstance(rid, str):
                if rid in seen:
                    problems.append(f"{where}: duplicate id (also {kind}[{seen[rid]}])")
                seen.setdefault(rid, index)
    return problems


def _record_problems(kind: str, entry: dict, where: str,
                     choices: dict[str, tuple[str, ...]]) -> list[str]:
    problems = []
    spec = {f.name: f for f in KINDS[kind]}
    for name in entry:
        if name not in spec:
            problems.append(f"{where}: unknown field '{name}'")
    for f in spec.values():
        if f.name not in entry:
            if f.required:
                problems.append(f"{where}: missing required field '{f.name}'")
            continue
        value = entry[f.name]
        problem = _type_problem(value, f)
        if problem is None and f.choices and value not in choices[f.choices]:
            problem = f"{value!r} is not one of {', '.join(choices[f.choices])}"
        if problem is None:
            problem = _length_problem(f.name, value)
        if problem:
            problems.append(f"{where}: field '{f.name}' {problem}")
    if kind == "synonym" and isinstance(entry.get("words"), list) and len(entry["words"]) < 2:
        problems.append(f"{where}: field 'words' needs at least 2 words")
    starts, ends = entry.get("starts_at"), entry.get("ends_at")
    if isinstance(starts, datetime) and isinstance(ends, datetime):
        if _naive(ends) <= _naive(starts):
            problems.append(f"{where}: field 'ends_at' must be after starts_at")
    return problems


def _shown(rid: str) -> str:
    """An id as problems name it: an absurdly long one is cut (its index names it too)."""
    return rid if len(rid) <= 48 else rid[:48] + "…"


def _length_problem(name: str, value: Any) -> str | None:
    """Values kept in length-limited columns must fit on every database (PostgreSQL checks)."""
    limit = {"id": ID_MAX, "district": DISTRICT_MAX}.get(name)
    if limit and isinstance(value, str) and len(value) > limit:
        return f"is {len(value)} characters long; at most {limit}"
    return None


def _naive(dt: datetime) -> datetime:
    return to_utc_naive(dt)


def record_title(kind: str, entry: dict) -> str:
    """The display title of a record (hotline/project: name; faq: question)."""
    return str(entry.get(TITLE_FIELD.get(kind, "title"), "") or entry.get("words", [""])[0])
