"""Formatting records into WeChat-sized answers (passive text <= 2048 UTF-8 bytes).

The first line of every answer is the record's title (hotline: name and number; FAQ: its
question). An answer too long for one reply is cut at a line boundary: with a URL the rest
is linked, otherwise the rest follows as customer-service messages (Reply.followups).
Foundation, not a handler: citizen handlers answer with it and push renders campaign
messages with the same words (push never imports handlers).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from bot.router import Reply
from bot.store.models import Record
from bot.vocab import NOTICE_KIND_LABEL
from bot.wechat.replies import split_text, utf8_len


def headline(record: Record) -> str:
    """The first line: title, or for hotlines name and number."""
    if record.kind == "hotline":
        return f"{record.data['name']}：{record.data['number']}"
    return record.title


def _numbered(items: Sequence[str]) -> list[str]:
    return [f"{i}. {item}" for i, item in enumerate(items, 1)]


def _pairs(data: dict, fields: Sequence[tuple[str, str]]) -> list[str]:
    return [f"{label}：{data[key]}" for key, label in fields if data.get(key)]


def _guide(d: dict) -> list[str]:
    lines = _pairs(d, [("department", "办理部门"), ("basis", "办理依据")])
    if d.get("conditions"):
        lines += ["申请条件：", *(f"· {c}" for c in d["conditions"])]
    lines += ["所需材料：", *_numbered(d["materials"]), "办理流程：", *_numbered(d["steps"])]
    lines += _pairs(d, [("time_limit", "办理时限"), ("fee", "收费标准"), ("where", "办理地点"),
                        ("hours", "办理时间"), ("phone", "咨询电话"), ("online_url", "网上办理")])
    return lines


def _hotline(d: dict) -> list[str]:
    return _pairs(d, [("hours", "服务时间"), ("scope", "受理范围")])


def _policy(d: dict) -> list[str]:
    lines = _pairs(d, [("doc_number", "文号"), ("issuer", "发布机构"), ("issued_on", "发布日期")])
    lines += [d["summary"]] + _pairs(d, [("url", "全文")])
    interp = d.get("interpretation")
    if interp:  # policies are published together with their interpretation (细则 二(五))
        lines += ["", f"【政策解读】{interp['title']}", interp["summary"]]
        lines += _pairs(interp, [("url", "解读全文")])
    return lines


def _disclosure(d: dict) -> list[str]:
    lines = _pairs(d, [("category", "公开类别"), ("issuer", "发布机构"),
                       ("formed_on", "形成日期"), ("published_on", "公开日期")])
    return lines + ([d["summary"]] if d.get("summary") else []) + _pairs(d, [("url", "链接")])


def _project(d: dict) -> list[str]:
    stage = d["stage"] + (f"（进度 {d['progress_percent']}%）"
                          if d.get("progress_percent") is not None else "")
    lines = _pairs(d, [("district", "所在区域")]) + [f"项目阶段：{stage}"]
    return lines + [f"最新进展（{d['updated_on']}）：{d['summary']}"] + _pairs(d, [("url", "详情")])


def _when(value: str | None) -> str:
    return value.replace("T", " ")[:16] if value else "另行通知"


def _notice(d: dict) -> list[str]:
    head = ("【紧急】" if d.get("urgent") else "") + "类型：" + NOTICE_KIND_LABEL.get(
        d["kind"], d["kind"]) + (f"　区域：{d['district']}" if d.get("district") else "")
    lines = [head, f"时间：{_when(d['starts_at'])} 至 {_when(d.get('ends_at'))}", d["body"]]
    return lines + _pairs(d, [("url", "详情")])


def _faq(d: dict) -> list[str]:
    return [d["answer"]]


FORMATTERS: dict[str, Callable[[dict], list[str]]] = {
    "guide": _guide, "hotline": _hotline, "policy": _policy, "disclosure": _disclosure,
    "project": _project, "notice": _notice, "faq": _faq,
}


def full_text(record: Record) -> str:
    """The whole answer for a record, first line its headline."""
    return "\n".join([headline(record), *FORMATTERS[record.kind](record.data)])


def _link(record: Record) -> str:
    data = record.data
    return data.get("url") or data.get("online_url") or ""


def answer(record: Record, limit: int = 2048) -> Reply:
    """A reply for one record, within `limit` bytes (cut + link, or split into follow-ups)."""
    text = full_text(record)
    if utf8_len(text) <= limit:
        return Reply(text=text)
    url = _link(record)
    if url:
        tail = f"\n……（内容较长）全文：{url}"
        head = split_text(text, limit - utf8_len(tail))[0]
        return Reply(text=head + tail)
    chunks = split_text(text, limit)
    return Reply(text=chunks[0], followups=tuple(chunks[1:]))


def choice_page(numbered: Sequence[tuple[int, Record]], intro: str, total: int, page: int,
                pages: int) -> str:
    """One page of a longer list: titles numbered globally (page 2 starts at 6), the count,
    and how to turn the page; digits from any page stay valid."""
    lines = [intro, *(f"{n}. {headline(r)}" for n, r in numbered)]
    if pages > 1:
        turns = ([] if page == pages else ["回复“更多”看下一页"]) + \
                ([] if page == 1 else ["回复“上一页”看上一页"])
        lines.append(f"共{total}条，第{page}/{pages}页，" + "，".join(turns))
        lines.append("请回复编号查看详情。")
    else:
        lines.append(f"请回复数字 1-{total} 查看详情。")
    return "\n".join(lines)
