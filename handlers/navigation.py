"""Navigation in chat: page words, the menu text, and the menu's lists by their names.

"更多"/"下一页"/"下页" and "上一页"/"上页" turn the pending list's page; "返回"/"菜单"/
"主菜单"/"帮助" show what the menu offers (built from the configured [bot.menu], or
DEFAULT_MENU) and how to subscribe; typing a list's name ("出行资讯", "办事指南") opens
that list, as clicking it would. The menu's CLICK handler (handlers.menu) shows its lists
through `show_kind` too, so every list is paged the same way.
"""

from __future__ import annotations

import unicodedata

from sqlalchemy import select

from bot.router import Context, Reply
from bot.store.models import Record
from bot.store.queries import visible_clause
from bot.vocab import KIND_LABEL, TOPIC_ORDER
from handlers import choices

DEFAULT_MENU = {
    "MENU_GUIDES": "list:guide",
    "MENU_HOTLINES": "list:hotline",
    "MENU_NOTICES": "list:notice",
    "MENU_PROJECTS": "list:project",
    "MENU_POLICIES": "list:policy",
    "MENU_DISCLOSURES": "list:disclosure",
    "MENU_FAQ": "list:faq",
}
PAGE_WORDS = {"更多": 1, "下一页": 1, "下页": 1, "上一页": -1, "上页": -1}
MENU_WORDS = frozenset({"返回", "菜单", "主菜单", "帮助"})
DEFAULT_EXAMPLES = ("公交卡丢了怎么补办", "出租车投诉电话", "渡轮今天停航吗")


def configured_menu(ctx: Context) -> dict[str, str]:
    """The CLICK key -> action table in force."""
    return ctx.settings.bot.menu or DEFAULT_MENU


def _actions(ctx: Context, verb: str) -> list[str]:
    """The arguments of the menu's actions with this verb, in menu order, once each."""
    found = (action.partition(":") for action in configured_menu(ctx).values())
    return list(dict.fromkeys(arg.strip() for v, _, arg in found if v == verb and arg.strip()))


def listed_kinds(ctx: Context) -> list[str]:
    """The record kinds the menu lists."""
    return [kind for kind in _actions(ctx, "list") if kind in KIND_LABEL]


def menu_text(ctx: Context) -> str:
    """What the account offers: the menu's lists, example questions, how to subscribe."""
    lines = ["本号可以为您："]
    labels = [KIND_LABEL[kind] for kind in listed_kinds(ctx)]
    if labels:
        lines.append("· 查看列表：回复" + "".join(f"“{label}”" for label in labels))
    examples = _actions(ctx, "query") or list(DEFAULT_EXAMPLES)
    lines.append("· 直接提问，例如" + "".join(f"“{q}”" for q in examples[:4]))
    lines.append("· 订阅推送：回复“订阅”查看可订阅的主题（" + "、".join(TOPIC_ORDER)
                 + "），如“订阅 出行 丰泽区”；回复“我的订阅”查看，“全部退订”取消")
    lines.append("也可以点击下方菜单。")
    return "\n".join(lines)


def latest(ctx: Context, kind: str, limit: int) -> list[Record]:
    """The newest visible records of a kind (urgent first)."""
    stmt = (select(Record).where(visible_clause(ctx.now), Record.kind == kind)
            .order_by(Record.urgent.desc(), Record.updated_at.desc(), Record.rid).limit(limit))
    return list(ctx.session.scalars(stmt))


def show_kind(ctx: Context, kind: str) -> Reply:
    """The newest records of a kind as a paged, numbered list."""
    records = latest(ctx, kind, choices.MAX_LISTED)
    if not records:
        return Reply(text=f"暂无{KIND_LABEL[kind]}信息。")
    return choices.show(ctx, records, f"{KIND_LABEL[kind]}：")


def _word(text: str) -> str:
    """The message without punctuation or spaces ("更多。" -> "更多")."""
    return "".join(ch for ch in text if unicodedata.category(ch)[0] not in "PZ")


def navigate(text: str, ctx: Context) -> Reply | None:
    """The reply to a page word, a menu word or a list's name; None for anything else."""
    word = _word(text)
    if word in PAGE_WORDS:
        ctx.notes["page"] = PAGE_WORDS[word]
        return choices.turn(ctx, PAGE_WORDS[word])
    if word in MENU_WORDS:
        ctx.notes["menu"] = True
        return Reply(text=menu_text(ctx))
    for kind in listed_kinds(ctx):
        if word == KIND_LABEL[kind]:
            return show_kind(ctx, kind)
    return None
