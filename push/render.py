"""Render a campaign's message for every channel at creation, checking WeChat's value limits.

Limits (wechat-platform.md, bizsend): thing <= 20 chars, number / character_string <= 32,
phrase <= 5, car_number <= 8, phone_number <= 17, name <= 10, time/date in fixed formats;
one-time template/subscribe: title <= 15, content <= 200. Checking here means a campaign that
WeChat would refuse with 47003 is refused when it is created, not when it is sent.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime

from bot.answers import answer, headline
from bot.store.models import Record
from bot.vocab import KIND_LABEL, NOTICE_KIND_LABEL

LIMITS = {"thing": 20, "number": 32, "character_string": 32, "phrase": 5, "car_number": 8,
          "phone_number": 17, "name": 10, "letter": 32, "symbol": 5, "amount": 32}
FORMATS = {"time": re.compile(r"^\d{4}-\d{2}-\d{2}( \d{2}:\d{2}(:\d{2})?)?$"),
           "date": re.compile(r"^\d{4}-\d{2}-\d{2}$")}
ONCE_TITLE = "泉州交通运输通知"


def field_type(key: str) -> str:
    """The value type of a subscribe-template key: thing1 -> thing, character_string2 -> ..."""
    return key.rstrip("0123456789")


def _record_date(record: Record) -> str:
    d = record.data
    for key in ("starts_at", "updated_on", "published_on", "issued_on", "formed_on"):
        if d.get(key):
            return str(d[key]).replace("T", " ")[:10]
    return ""


def source_value(source: str, records: Sequence[Record], title: str, now: datetime) -> str:
    """The text of one mapped field: title, summary, date, district, kind, category, url,
    count. `category` is a disclosure entry's catalogue category (行政处罚, 行政许可: what a
    市场监管动态 push names), else the record kind's label (政策文件, 出行资讯, ...)."""
    first = records[0]
    d = first.data
    values = {
        "title": title,
        "summary": d.get("summary") or d.get("body") or d.get("answer") or "",
        "date": _record_date(first) or now.date().isoformat(),
        "district": first.district or "全市",
        "kind": NOTICE_KIND_LABEL.get(first.notice_kind or "", "出行"),
        "category": d.get("category") or KIND_LABEL.get(first.kind, ""),
        "url": d.get("url") or "",
        "count": str(len(records)),
    }
    if source not in values:
        return source  # a literal value given by staff (--field thing2=...)
    return values[source]


def _fit(key: str, value: str, truncate: bool, problems: list[str]) -> str:
    kind = field_type(key)
    limit = LIMITS.get(kind)
    if limit is not None and len(value) > limit:
        if truncate:
            return value[: limit - 1] + "…"
        problems.append(f"template field {key} ({kind}, at most {limit} characters) would be "
                        f"{len(value)}: {value!r} — shorten it with --field {key}=...")
    fmt = FORMATS.get(kind)
    if fmt is not None and not fmt.match(value):
        problems.append(f"template field {key} ({kind}) must look like 2026-11-27: {value!r}")
    if limit is not None and not value:
        problems.append(f"template field {key} is empty")
    return value


def render_payload(records: Sequence[Record], title: str, template: dict | None,
                   overrides: dict[str, str], truncate: bool, now: datetime,
                   problems: list[str]) -> dict:
    """The payload for every channel; problems appended for values WeChat would refuse."""
    text_parts = [answer(r, 2048).text for r in records]
    text = "\n\n".join(text_parts)
    if len(text.encode()) > 2048:  # several records: titles only, details on request
        text = "\n".join(["【泉州交通运输】" + title, *(f"· {headline(r)}" for r in records),
                          "回复标题可查看详情。"])
    payload: dict = {"text": text, "template": None,
                     "once": {"title": ONCE_TITLE,
                              "content": (title + "：" + source_value("summary", records, title,
                                                                     now))[:200]}}
    if template:
        data = {}
        is_subscribe = template.get("channel", "subscribe") == "subscribe"
        for key, source in template["fields"].items():
            value = overrides.get(key, source_value(str(source), records, title, now))
            data[key] = {"value": _fit(key, value, truncate, problems) if is_subscribe
                         else value}
        payload["template"] = {"template_id": template["template_id"],
                               "channel": template.get("channel", "subscribe"),
                               "long_term": bool(template.get("long_term", False)),
                               "data": data, "url": records[0].data.get("url", "")}
    unknown = set(overrides) - set((template or {}).get("fields", {}))
    for key in sorted(unknown):
        problems.append(f"--field {key}: the template has no such field")
    return payload


def campaign_date(value: date | datetime) -> str:
    """ISO date for display."""
    return value.isoformat()[:10]
