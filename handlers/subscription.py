"""Citizen subscription commands: 订阅, 订阅 出行 丰泽区, 退订 …, 我的订阅, 全部退订.

The same commands in natural words ("我要订阅台风消息", "不想再收到推送了") are read by
handlers.intents (the one table of request shapes) and answered here alike.
Every reply says exactly what changed. A message that merely starts with 订阅 but reads
as a question ("订阅号怎么关注？") is left to the search (the handler returns None).
Topics whose template needs WeChat consent get a hint: the popup (long-term templates)
or a one-time confirmation link (legacy 一次性订阅) lets notifications reach the citizen
even outside the 48-hour customer-service window.
"""

from __future__ import annotations

import logging
import unicodedata

from bot.router import Context, Reply
from bot.store.models import Topic
from bot.subscribemsg import confirm_url
from bot.vocab import QuestionOutcome
from bot.wechat.messages import Message
from bot.wechat.replies import split_text
from handlers import intents
from push import subscriptions as subs
from push.consent import available_consent, redirect_scene, topic_template

log = logging.getLogger("qzbot.subscription")

SUBSCRIBE, UNSUBSCRIBE, MINE, ALL_OFF = "订阅", "退订", "我的订阅", "全部退订"
# prefix -> verb, longest first so 取消订阅 is not read as 订阅
PREFIXES = (("取消全部订阅", ALL_OFF), ("取消订阅", UNSUBSCRIBE), ("我的订阅", MINE),
            ("全部退订", ALL_OFF), ("退订", UNSUBSCRIBE), ("订阅", SUBSCRIBE))
_QUESTION = ("怎么", "怎样", "如何", "吗", "么", "什么", "为什么", "哪", "能否", "能不能",
             "可以", "?", "？")
_ALL_WORDS = {"全部", "所有", "全部订阅", "所有订阅", "全部的", "全部消息"}
_TRIM = " \t\r\n\u3000。.!！~～"
_MAX_COMBINATIONS = 20
EXAMPLES = ("· 订阅 出行（全部出行资讯）\n"
            "· 订阅 出行 丰泽区（只要某个县区的）\n"
            "· 订阅 出行 轮渡（类别：道路、公交、客运、轮渡、出租车、铁路、其他）\n"
            "· 订阅 项目进展 / 订阅 政务公开 / 订阅 政策解读\n"
            "· 退订 项目进展 / 退订 出行 丰泽区 / 全部退订 / 我的订阅")


def _clean(text: str) -> str:
    kept = "".join(" " if unicodedata.category(ch)[0] == "C" else ch for ch in text)
    return " ".join(kept.split()).strip(_TRIM)


def split_command(text: str) -> tuple[str, str] | None:
    """(verb, rest) when the text starts with a subscription command, else None."""
    text = _clean(text)
    for prefix, verb in PREFIXES:
        if text.startswith(prefix):
            return verb, text[len(prefix):].strip(_TRIM)
    return None


def _said(msg: Message) -> str | None:
    """What a text (or recognised voice) says; None for other messages."""
    if msg.msg_type == "text":
        return msg.content
    if msg.msg_type == "voice":
        return msg.recognition
    return None


def is_command(msg: Message) -> bool:
    """Route predicate: 订阅/退订/… commands, or a subscription request in natural words."""
    text = _said(msg)
    return text is not None and (split_command(text) is not None
                                 or intents.read(_clean(text)) is not None)


def handle_command(msg: Message, ctx: Context) -> Reply | None:
    """The subscription commands; None (not mine) for questions that merely start alike."""
    text = _said(msg) or ""
    found = split_command(text)
    if found is None:
        return _natural(intents.read(_clean(text)), msg.from_user, ctx)
    verb, rest = found
    if rest and any(marker in rest for marker in _QUESTION):
        return None
    if verb in (MINE, ALL_OFF) and rest and rest not in _ALL_WORDS:
        return None
    return respond(verb, rest, msg.from_user, ctx)


def _natural(request: intents.Request | None, openid: str, ctx: Context) -> Reply | None:
    """A request in natural words, if its subject names only topics, kinds and districts."""
    if request is None:
        return None
    if request.verb != intents.ALL_OFF:
        wanted = subs.parse_wanted(request.what, ctx.settings.bot.districts)
        if wanted.unknown or (wanted.empty and request.needs_subject):
            return None  # "到站了提醒我": not a subscription, let search try
    ctx.notes["natural"] = True
    return respond(request.verb, request.what, openid, ctx)


def respond(verb: str, rest: str, openid: str, ctx: Context) -> Reply:
    """Perform one command (also used by the menu's sub:/unsub:/mysubs: actions)."""
    ctx.notes["subscription"] = verb
    ctx.notes["outcome"] = QuestionOutcome.INTENT
    rest = intents.everyday(rest)  # 订阅台风消息 -> 订阅 出行 消息
    if verb == MINE:
        return _sized(mine_text(openid, ctx), ctx)
    if verb == ALL_OFF or (verb == UNSUBSCRIBE and rest in _ALL_WORDS):
        return _sized(all_off_text(openid, ctx), ctx)
    if verb == UNSUBSCRIBE:
        return _sized(unsubscribe_text(rest, openid, ctx), ctx)
    return _sized(subscribe_text(rest, openid, ctx), ctx)


def _sized(text: str, ctx: Context) -> Reply:
    """Keep the passive reply under the byte limit; the rest follows as customer-service."""
    chunks = split_text(text, ctx.settings.bot.reply_limit_bytes)
    return Reply(text=chunks[0], followups=tuple(chunks[1:]))


# --- 订阅 -------------------------------------------------------------------------------


def _topics_line() -> str:
    return "可订阅的主题：" + "、".join(subs.TOPIC_ORDER) + "。"


def help_text(openid: str, ctx: Context) -> str:
    """What can be subscribed, how, and how consent lets notifications through."""
    held = subs.list_for(ctx.session, openid)
    lines = [_topics_line(), "回复示例：", EXAMPLES]
    hints = [h for topic in subs.TOPIC_ORDER if (h := consent_hint(topic, openid, ctx))]
    if hints:
        lines.append("平时您在48小时内与本号互动过才能收到推送；允许“订阅通知”后，"
                     "超过48小时也能收到：")
        lines += hints
    if held:
        lines.append("您当前的订阅：" + "、".join(subs.label_of(s) for s in held))
    return "\n".join(lines)


def consent_hint(topic: str, openid: str, ctx: Context) -> str:
    """How this topic's notifications get consent: popup, one-time link, or none needed."""
    spec = topic_template(ctx.settings, topic)
    if spec is None or spec.get("channel", "subscribe") != "subscribe":
        return ""  # template messages (or no template): no per-citizen consent needed
    if spec.get("long_term"):
        if available_consent(ctx.session, openid, spec["template_id"]) is not None:
            return ""  # already allowed: nothing to ask for
        return f"· {topic}：在本号文章或页面弹出的订阅通知中点“允许”即可长期接收。"
    url = one_time_link(openid, spec["template_id"], ctx)
    if not url:
        return f"· {topic}：在本号文章或页面弹出的订阅通知中点“允许”，每允许一次可接收一条。"
    return f'· {topic}：<a href="{url}">点此允许接收一条通知</a>（每确认一次可接收一条）。'


def one_time_link(openid: str, template_id: str, ctx: Context) -> str:
    """A legacy one-time confirmation link for this citizen, or "" when none can be made."""
    scene = redirect_scene(ctx.session, openid, template_id)
    if scene is None or not ctx.settings.push.public_base_url:
        return ""
    return confirm_url(ctx.settings, openid, template_id, scene, ctx.now)


def _unknown_text(words: tuple[str, ...]) -> str:
    shown = "、".join(f"“{w[:10]}”" for w in words[:3])
    return (f"没有识别{shown}。{_topics_line()}\n回复示例：\n{EXAMPLES}")


def _plan(wanted: subs.Wanted) -> tuple[list[tuple[str, str, str]], str]:
    """(topic, district, kind) rows to subscribe, or an explanation of why not."""
    topics = wanted.topics or (Topic.TRAVEL.value,)  # "订阅 轮渡" means travel notices
    for topic in topics:
        if wanted.districts and topic not in subs.DISTRICT_TOPICS:
            return [], f"“{topic}”不分县区，请直接回复“订阅 {topic}”。"
        if wanted.kinds and topic not in subs.KIND_TOPICS:
            return [], f"“{topic}”不分类别，类别（如轮渡、公交）只适用于出行资讯。"
    rows = [(t, d, k) for t in topics for d in (wanted.districts or ("",))
            for k in (wanted.kinds or ("",))]
    if len(rows) > _MAX_COMBINATIONS:
        return [], "一次订阅的内容太多，请分几次订阅。"
    return rows, ""


def subscribe_text(rest: str, openid: str, ctx: Context) -> str:
    """订阅 …: subscribe and say exactly what changed."""
    wanted = subs.parse_wanted(rest, ctx.settings.bot.districts)
    if wanted.empty:
        return help_text(openid, ctx)
    if wanted.unknown:
        return _unknown_text(wanted.unknown)
    rows, problem = _plan(wanted)
    if problem:
        return problem
    changes = [subs.subscribe(ctx.session, openid, t, d, k, source="message", now=ctx.now)
               for t, d, k in rows]
    added = [c for c in changes if c.added]
    lines = []
    if added:
        lines.append("已订阅：" + "、".join(c.label for c in added))
        replaced = [r for c in added for r in c.replaced]
        if replaced:
            lines.append("（已合并原有的：" + "、".join(replaced) + "）")
    for c in changes:
        if not c.added:
            inside = "" if c.covered_by == c.label else f"（已包含在“{c.covered_by}”中）"
            lines.append(f"您已订阅过：{c.label}{inside}，无需重复订阅。")
    added_topics = dict.fromkeys(row[0] for row, c in zip(rows, changes, strict=True)
                                 if c.added)
    hints = [h for t in added_topics if (h := consent_hint(t, openid, ctx))]
    if hints:
        lines.append("允许“订阅通知”后，超过48小时未互动也能收到：")
        lines += hints
    lines.append("回复“我的订阅”查看，回复“退订 主题”取消。")
    return "\n".join(lines)


# --- 退订 / 全部退订 / 我的订阅 ---------------------------------------------------------


def unsubscribe_text(rest: str, openid: str, ctx: Context) -> str:
    """退订 …: remove what matches and say exactly what was removed (or that nothing was)."""
    if not rest:
        return ("请回复“退订 主题”，例如“退订 项目进展”“退订 出行 丰泽区”；"
                "回复“全部退订”取消全部订阅。\n" + mine_text(openid, ctx))
    wanted = subs.parse_wanted(rest, ctx.settings.bot.districts)
    if wanted.unknown or wanted.empty:
        return _unknown_text(wanted.unknown or (rest,))
    removed = []
    for topic in wanted.topics or (None,):
        for district in wanted.districts or (None,):
            for kind in wanted.kinds or (None,):
                removed += subs.unsubscribe(ctx.session, openid, topic, district, kind)
    if removed:
        return ("已退订：" + "、".join(subs.label_of(s) for s in removed) + "\n"
                + mine_text(openid, ctx))
    asked = "、".join(subs.label(t or "全部主题", d or "", k or "")
                     for t in (wanted.topics or (None,))
                     for d in (wanted.districts or (None,))
                     for k in (wanted.kinds or (None,)))
    lines = [f"您未订阅：{asked}，没有需要退订的内容。"]
    for topic in wanted.topics:
        for district in wanted.districts or ("",):
            for kind in wanted.kinds or ("",):
                cover = subs.covering(ctx.session, openid, topic, district, kind)
                if cover is not None:
                    lines.append(f"您订阅的“{subs.label_of(cover)}”包含这部分内容，"
                                 f"如需停止请回复“退订 {subs.label_of(cover)}”。")
    lines.append(mine_text(openid, ctx))
    return "\n".join(dict.fromkeys(lines))


def all_off_text(openid: str, ctx: Context) -> str:
    """全部退订: remove every subscription and opt out of every push (broadcasts too)."""
    removed = subs.unsubscribe(ctx.session, openid)
    subs.opt_out(ctx.session, openid, ctx.now)
    if not removed:
        return ("您当前没有任何订阅；已为您停止全部推送（含面向全体关注者的通知）。"
                "如需重新接收，请回复“订阅”。")
    return (f"已退订全部 {len(removed)} 项订阅：" + "、".join(subs.label_of(s) for s in removed)
            + "，并停止全部推送。如需重新订阅，请回复“订阅”。")


def mine_text(openid: str, ctx: Context) -> str:
    """我的订阅: the list, with whether WeChat consent lets notifications through."""
    held = subs.list_for(ctx.session, openid)
    if not held:
        return "您当前没有订阅。回复“订阅”查看可订阅的内容。"
    lines = ["您当前的订阅："]
    for sub in held:
        lines.append(f"· {subs.label_of(sub)}{_consent_note(sub.topic, openid, ctx)}")
    return "\n".join(lines)


def _consent_note(topic: str, openid: str, ctx: Context) -> str:
    spec = topic_template(ctx.settings, topic)
    if spec is None or spec.get("channel", "subscribe") != "subscribe":
        return ""
    consent = available_consent(ctx.session, openid, spec["template_id"])
    if consent is None:
        return "（未允许订阅通知）"
    return "（已允许订阅通知）" if consent.long_term else "（可接收订阅通知）"
