"""Numbered lists a citizen picks from and pages through, kept in Redis per hashed openid.

Every list (search results, menu lists) holds up to MAX_LISTED record keys and is shown a
page at a time ([bot] max_choices titles, numbered globally: page 2 starts at 6). The state
(keys, intro line, current page) lives under qzbot:ctx:<openid hash> for the context TTL
(10 min), so "更多"/"上一页" and the digits 1..20 work across messages and processes.
A page is rendered from the search's visibility check, so a record hidden since the list
was made is never shown; picking it says it is gone.

The state is written after responding (issue 8 item 7): the webhook hands its Deduper in
`ctx.notes[DEFERRED]`, whose `later` queues the SET for the next round trip (bot/dedupe);
`load` reads the queued value first, so a quick "2" in this process sees its own list.
Without a Deduper (a Context built elsewhere) the SET is made at once.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import redis

from bot.answers import choice_page
from bot.dedupe import DEFERRED, Deduper
from bot.router import Context, Reply
from bot.store.models import Record

log = logging.getLogger("qzbot.choices")

# how many records a list holds (search asks for this many relevant ones)
MAX_LISTED = 20
# half- and full-width numbers a citizen may reply with
DIGITS = {str(i): i for i in range(1, MAX_LISTED + 1)} | {
    "".join(chr(0xFF10 + int(d)) for d in str(i)): i for i in range(1, MAX_LISTED + 1)}
NO_LIST = "没有可以翻页的列表，请直接输入您的问题，或回复“菜单”查看本号能办的事。"


@dataclass(frozen=True)
class Pending:
    """A list a citizen was shown: its record keys, intro line and the page on screen."""

    keys: list[str]
    intro: str = ""
    page: int = 1


def _key(ctx: Context) -> str:
    return f"qzbot:ctx:{ctx.openid_hash}"


def _deferred(ctx: Context) -> Deduper | None:
    return ctx.notes.get(DEFERRED)


def _store(ctx: Context, pending: Pending) -> None:
    raw = json.dumps({"keys": pending.keys, "intro": pending.intro, "page": pending.page},
                     ensure_ascii=False).encode("utf-8")
    ttl = ctx.settings.bot.context_ttl_seconds
    deferred = _deferred(ctx)
    if deferred is not None:  # after responding, with the next round trip (fails open)
        deferred.later(_key(ctx), raw, ttl)
        return
    try:
        ctx.redis.set(_key(ctx), raw, ex=ttl)
    except redis.RedisError as exc:
        log.warning("choice context not stored: %s", type(exc).__name__)


def load(ctx: Context) -> Pending | None:
    """The citizen's pending list, or None (none, expired, or Redis unavailable)."""
    deferred = _deferred(ctx)
    raw = deferred.pending(_key(ctx)) if deferred is not None else None
    if raw is None:
        try:
            raw = ctx.redis.get(_key(ctx))
        except redis.RedisError as exc:
            log.warning("choice context unavailable: %s", type(exc).__name__)
            return None
    if not raw:
        return None
    data = json.loads(raw)
    if isinstance(data, list):  # stored by the previous release: a bare list of keys
        return Pending(data)
    return Pending(data["keys"], data.get("intro", ""), data.get("page", 1))


def remember(ctx: Context, keys: list[str], intro: str = "") -> None:
    """Store a new list for this citizen (its first page is on screen)."""
    _store(ctx, Pending(keys[:MAX_LISTED], intro))


def pick(ctx: Context, number: int) -> str | None:
    """The record key the citizen picked, or None when no list is pending or out of range."""
    pending = load(ctx)
    if pending is None:
        return None
    return pending.keys[number - 1] if 1 <= number <= len(pending.keys) else None


def as_choice(text: str) -> int | None:
    """The number when the text is just a list number 1..20 (half- or full-width), else None."""
    return DIGITS.get(text.strip().rstrip("。.．"))


def _size(ctx: Context) -> int:
    return max(1, ctx.settings.bot.max_choices)


def show(ctx: Context, records: Sequence[Record], intro: str) -> Reply:
    """Remember a list and show its first page."""
    records = list(records)[:MAX_LISTED]
    remember(ctx, [r.key for r in records], intro)
    ctx.notes["choices"] = len(records)
    size = _size(ctx)
    numbered = list(enumerate(records[:size], 1))
    return Reply(text=choice_page(numbered, intro, len(records), 1,
                                  math.ceil(len(records) / size)))


def turn(ctx: Context, step: int) -> Reply:
    """Show the next (step 1) or previous (step -1) page of the pending list."""
    pending = load(ctx)
    if pending is None or not pending.keys:
        return Reply(text=NO_LIST)
    total, size = len(pending.keys), _size(ctx)
    pages = math.ceil(total / size)
    page = pending.page + step
    if page > pages:
        return Reply(text=f"已经是最后一页了（共{total}条）。回复编号查看详情，"
                          "回复“上一页”往回翻，或直接输入新的问题。")
    if page < 1:
        return Reply(text="已经是第一页了。回复编号查看详情，或回复“更多”看下一页。")
    _store(ctx, Pending(pending.keys, pending.intro, page))
    first = (page - 1) * size
    keys = pending.keys[first:first + size]
    visible = ctx.search.visible(ctx.session, keys, ctx.now)
    numbered = [(first + i, visible[k]) for i, k in enumerate(keys, 1) if k in visible]
    if not numbered:
        return Reply(text="这一页的信息已更新或不再提供，请重新输入您的问题。")
    return Reply(text=choice_page(numbered, pending.intro, total, page, pages))
