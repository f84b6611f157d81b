"""The editorial domain: revision states, the draft form generated from the pack schema,
validation (the pack import's own validator), field-by-field diffs and policy <-> 解读 pairing.

No authorisation and no audit here (editorial/actions.py owns those); nothing commits.
A draft's `data` is stored exactly like Record.data (bot.content.pack.entry_data), so a
draft that passes validation publishes through the same `write_record` as a pack import.
Values a staff member typed that do not parse (a date "明天") are kept as typed, so the
schema validator names them in its own words instead of the form dropping them.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from bot.content.pack import PUBLISHED, SUPERSEDED
from bot.content.schema import KINDS, Field, record_title, validate_pack
from bot.errors import InvalidTransition
from bot.vocab import DISCLOSURE_VALUES, NOTICE_KINDS

DRAFT, IN_REVIEW, REJECTED, WITHDRAWN = "draft", "in_review", "rejected", "withdrawn"
STATES = (DRAFT, IN_REVIEW, PUBLISHED, REJECTED, WITHDRAWN, SUPERSEDED)
OPEN_STATES = (DRAFT, IN_REVIEW, REJECTED)  # a record has at most one open revision
EDITABLE_STATES = (DRAFT, REJECTED)  # editing a rejected draft makes it a draft again
STATE_LABELS = {DRAFT: "草稿", IN_REVIEW: "待审核", PUBLISHED: "已发布", REJECTED: "已退回",
                WITHDRAWN: "已撤回", SUPERSEDED: "已被取代", "live": "线上"}
KIND_LABELS = {"hotline": "咨询电话", "guide": "办事指南", "policy": "政策文件",
               "disclosure": "公开目录", "project": "重点项目", "notice": "出行资讯",
               "faq": "常见问题", "synonym": "同义词"}
FIELD_LABELS = {
    "id": "编号 (id)", "keywords": "关键词", "name": "名称", "number": "号码", "hours": "服务时间",
    "scope": "受理范围", "title": "标题", "department": "办理部门", "basis": "办理依据",
    "conditions": "申请条件", "materials": "所需材料", "steps": "办理流程",
    "time_limit": "承诺时限", "fee": "收费", "where": "办理地点", "phone": "咨询电话",
    "online_url": "网上办理地址",
    "doc_number": "文号", "issuer": "发布机关", "issued_on": "发布日期", "disclosure": "公开属性",
    "summary": "摘要", "url": "链接", "interpretation": "政策解读", "category": "目录类别",
    "formed_on": "形成日期", "published_on": "公开日期", "district": "区县", "stage": "阶段",
    "progress_percent": "进度 (%)", "updated_on": "更新日期", "kind": "类型", "body": "正文",
    "starts_at": "开始时间", "ends_at": "结束时间", "urgent": "紧急", "question": "问题",
    "answer": "答案", "words": "同义词组",
    "interpretation.title": "解读标题", "interpretation.summary": "解读摘要",
    "interpretation.url": "解读链接",
}
LONG_TEXT = {"summary", "body", "answer", "basis", "scope"}  # textarea, not a one-line input
INTERPRETATION_PARTS = ("title", "summary", "url")
FORM_PREFIX = "f_"
SHORT_MATCH = 3  # diff: equal runs shorter than this between two changes join the change


class StaleDraft(InvalidTransition):
    """The live record changed since the draft was started: re-base it (see the diff) first."""


# --- the form, generated from the schema ---------------------------------------------------


@dataclass(frozen=True)
class FormField:
    """One input of the draft form: `widget` is text | textarea | lines | date | datetime |
    number | checkbox | select | interpretation; `value` is what the input shows."""

    name: str
    input_name: str
    label: str
    widget: str
    required: bool
    choices: tuple[str, ...] = ()
    value: Any = ""
    parts: tuple[FormField, ...] = ()  # interpretation: title, summary, url


def _widget(f: Field) -> str:
    if f.choices:
        return "select"
    if f.type == "str":
        return "textarea" if f.name in LONG_TEXT else "text"
    return {"strs": "lines", "url": "text", "date": "date", "datetime": "datetime",
            "percent": "number", "bool": "checkbox",
            "interpretation": "interpretation"}[f.type]


def _choices(f: Field, districts: tuple[str, ...]) -> tuple[str, ...]:
    return {"disclosure": DISCLOSURE_VALUES, "district": districts,
            "notice_kind": NOTICE_KINDS}.get(f.choices, ())


def _shown_value(f: Field, value: Any) -> Any:
    """A stored value as its input shows it."""
    if value is None:
        return False if f.type == "bool" else ""
    if f.type == "strs" and isinstance(value, list):
        return "\n".join(str(v) for v in value)
    if f.type == "datetime" and isinstance(value, str):
        return value[:16] if re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d(:00)?", value) else value
    return value


def form_fields(kind: str, data: Mapping[str, Any] | None, districts: tuple[str, ...],
                *, with_id: bool = True) -> list[FormField]:
    """The inputs of a `kind` draft, filled from `data` (stored form); `with_id` False for an
    edit of an existing record (its id is fixed)."""
    data = data or {}
    fields = []
    for f in KINDS[kind]:
        if f.name == "id" and not with_id:
            continue
        widget = _widget(f)
        parts: tuple[FormField, ...] = ()
        if widget == "interpretation":
            sub = data.get(f.name) if isinstance(data.get(f.name), dict) else {}
            parts = tuple(FormField(
                name=f"{f.name}.{p}", input_name=f"{FORM_PREFIX}{f.name}__{p}",
                label=FIELD_LABELS[f"{f.name}.{p}"], widget="textarea" if p == "summary" else
                "text", required=False, value=sub.get(p, "")) for p in INTERPRETATION_PARTS)
        fields.append(FormField(
            name=f.name, input_name=FORM_PREFIX + f.name, label=FIELD_LABELS.get(f.name, f.name),
            widget=widget, required=f.required, choices=_choices(f, districts),
            value=_shown_value(f, data.get(f.name)), parts=parts))
    return fields


def _typed(f: Field, raw: str) -> Any:
    """A typed form value in its stored (JSON) form; unparsable input is kept as typed."""
    if f.type == "strs":
        return [line.strip() for line in raw.splitlines() if line.strip()]
    if f.type == "datetime":
        try:
            return datetime.fromisoformat(raw).replace(tzinfo=None).isoformat(timespec="seconds")
        except ValueError:
            return raw
    if f.type == "date":
        try:
            return date.fromisoformat(raw).isoformat()
        except ValueError:
            return raw
    if f.type == "percent":
        try:
            return int(raw)
        except ValueError:
            return raw
    return raw


def _empty(value: Any) -> bool:
    return value in ("", [], False, None, {})


def parse_form(kind: str, form: Mapping[str, str], base: Mapping[str, Any] | None = None,
               rid: str | None = None) -> dict[str, Any]:
    """A submitted form -> draft data (stored form). Empty inputs leave a field out, unless
    `base` (the version the draft started from) held that field empty too (so an untouched
    form changes nothing). `rid`: the fixed id of an existing record."""
    base = base or {}
    data: dict[str, Any] = {}
    for f in KINDS[kind]:
        if f.name == "id" and rid is not None:
            data["id"] = rid
            continue
        if f.type == "interpretation":
            sub = {p: str(form.get(f"{FORM_PREFIX}{f.name}__{p}", "")).strip()
                   for p in INTERPRETATION_PARTS}
            sub = {p: v for p, v in sub.items() if v}
            if sub:
                data[f.name] = sub
            continue
        if f.type == "bool":
            value: Any = str(form.get(FORM_PREFIX + f.name, "")).lower() in ("on", "1", "true")
        else:
            value = _typed(f, str(form.get(FORM_PREFIX + f.name, "")).strip())
        if not _empty(value):
            data[f.name] = value
        elif f.name in base and _empty(base[f.name]):
            data[f.name] = base[f.name]
    return data


def entry_of(kind: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """Draft data -> a pack entry (TOML value types) for the validator; values that do not
    parse stay as they are, for the validator to name."""
    spec = {f.name: f for f in KINDS[kind]}
    out: dict[str, Any] = {}
    for name, value in data.items():
        f = spec.get(name)
        if f is not None and isinstance(value, str) and f.type in ("date", "datetime"):
            try:
                value = (date.fromisoformat(value) if f.type == "date"
                         else datetime.fromisoformat(value))
            except ValueError:
                pass
        out[name] = value
    return out


def title_of(kind: str, data: Mapping[str, Any]) -> str:
    """The display title of draft data."""
    return record_title(kind, dict(data)) or str(data.get("id", ""))


def problems(kind: str, data: Mapping[str, Any], districts: tuple[str, ...]) -> list[str]:
    """Every validation problem of draft data, by the pack import's own validator."""
    if kind not in KINDS:
        return [f"unknown kind {kind!r}"]
    found = validate_pack({kind: [entry_of(kind, data)]}, districts)
    return [re.sub(rf"^{re.escape(kind)}\[0\](?: id='[^']*')?: ", "", p) for p in found]


# --- diffs --------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldDiff:
    """One field compared: `segments` are (op, text) with op "eq" | "del" | "ins"."""

    name: str
    label: str
    old: str
    new: str
    segments: tuple[tuple[str, str], ...]

    @property
    def changed(self) -> bool:
        return self.old != self.new


def value_text(value: Any) -> str:
    """A stored value as diffable text (lists one item per line)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, list):
        return "\n".join(str(v) for v in value)
    return str(value)


# diff tokens: a run of Latin letters/digits, joined by . : - / inside it, is ONE token (a
# number, time, date, phone, range: "8:00-18:00", "0595-22551234", "3.5"); whitespace runs
# are one token; anything else (a CJK character, a punctuation mark) is a token of its own.
_TOKEN = re.compile(r"[0-9A-Za-z\uff10-\uff19\uff21-\uff3a\uff41-\uff5a]+"
                    r"(?:[.:\-/][0-9A-Za-z\uff10-\uff19\uff21-\uff3a\uff41-\uff5a]+)*"
                    r"|\s+|.", re.DOTALL)


def tokens(text: str) -> list[str]:
    """`text` cut into diff tokens (they join back to `text`)."""
    return _TOKEN.findall(text)


def text_diff(old: str, new: str) -> tuple[tuple[str, str], ...]:
    """Token-level diff as (op, text) segments, a deletion before its insertion. Chinese has
    no spaces between words, so a CJK character is a token; numbers and times are whole
    tokens, so "8:00-18:00" -> "7:30-21:00" reads as that range replaced, not a mix of digits."""
    if old == new:
        return (("eq", new),) if new else ()
    a_tok, b_tok = tokens(old), tokens(new)
    matcher = difflib.SequenceMatcher(None, a_tok, b_tok, autojunk=False)
    # chunks (equal, old text, new text); a short equal run between two changes (a shared
    # "的" or "。") is folded into the change around it, so a rewrite reads as one
    chunks: list[list[Any]] = [[op == "equal", "".join(a_tok[a1:a2]), "".join(b_tok[b1:b2])]
                               for op, a1, a2, b1, b2 in matcher.get_opcodes()]
    for i in range(1, len(chunks) - 1):
        if chunks[i][0] and len(chunks[i][1]) < SHORT_MATCH:
            chunks[i][0] = False
    merged: list[list[Any]] = []
    for chunk in chunks:
        if merged and not chunk[0] and not merged[-1][0]:
            merged[-1][1] += chunk[1]
            merged[-1][2] += chunk[2]
        else:
            merged.append(chunk)
    out: list[tuple[str, str]] = []
    for equal, a, b in merged:
        if equal:
            out.append(("eq", a))
            continue
        if a:
            out.append(("del", a))
        if b:
            out.append(("ins", b))
    return tuple(out)


def _flat(kind: str, data: Mapping[str, Any] | None) -> dict[str, str]:
    """Field name -> text, interpretation split into its parts, in schema order."""
    data = data or {}
    out: dict[str, str] = {}
    for f in KINDS.get(kind, ()):
        if f.type == "interpretation":
            sub = data.get(f.name) if isinstance(data.get(f.name), dict) else {}
            for p in INTERPRETATION_PARTS:
                out[f"{f.name}.{p}"] = value_text(sub.get(p))
        else:
            out[f.name] = value_text(data.get(f.name))
    return out


def diff(kind: str, old: Mapping[str, Any] | None,
         new: Mapping[str, Any] | None) -> list[FieldDiff]:
    """Field-by-field comparison of two versions (None: no such version); fields empty in
    both are left out."""
    a, b = _flat(kind, old), _flat(kind, new)
    return [FieldDiff(name, FIELD_LABELS.get(name, name), a[name], b[name],
                      text_diff(a[name], b[name]))
            for name in a if a[name] or b[name]]


# --- policy <-> 解读 -----------------------------------------------------------------------

INTERPRETATION_WORD = "解读"
_QUOTED = re.compile(r"《([^》]+)》")


def is_interpretation_entry(kind: str, data: Mapping[str, Any]) -> bool:
    """A catalogue entry that is itself a 解读 (category or title says so)."""
    return kind == "disclosure" and (
        INTERPRETATION_WORD in str(data.get("category") or "")
        or INTERPRETATION_WORD in str(data.get("title") or ""))


def interpreted_title(title: str) -> str:
    """The policy title a 解读's title names: 《X》解读 -> X; "X解读" -> X."""
    quoted = _QUOTED.search(title)
    if quoted:
        return quoted.group(1).strip()
    for word in ("政策解读", "解读", "答问"):
        if word in title:
            return title.split(word, 1)[0].strip(" ：:—-")
    return title.strip()
