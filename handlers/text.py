"""Text (and recognised voice) messages: the conversation, then search, then the fallback.

Order: navigation (page words, menu words, list names), list numbers, small talk and
English, then search. Search has three outcomes: a confident answer; a paged list when
several records are relevant (up to 20, five a page); the honest fallback, recorded for
staff, when none is. Subscription requests are routed before this handler (handlers.routes).
"""

from __future__ import annotations

import unicodedata

from bot.answers import answer
from bot.router import Context, Reply
from bot.store.models import Record
from bot.vocab import QuestionOutcome as Outcome
from bot.wechat.messages import Message
from handlers import choices, navigation, smalltalk
from handlers.fallback import unanswered

MAX_QUERY_CHARS = 200
EMPTY_PROMPT = ("您好，请输入您想咨询的问题，例如“公交卡丢了怎么补办”“出租车投诉电话”。"
                "回复“订阅”可以订阅出行资讯等消息。")
LIST_INTRO = "您想了解的是以下哪一项？"


def clean_query(text: str) -> str:
    """Drop control/format characters, collapse whitespace, cap the length."""
    kept = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in text)
    return " ".join(kept.split())[:MAX_QUERY_CHARS]


def open_record(record: Record, ctx: Context) -> Reply:
    """The answer for one record, sized to the configured reply limit."""
    ctx.notes["record"] = record.key
    return answer(record, ctx.settings.bot.reply_limit_bytes)


def ask(query: str, ctx: Context) -> Reply:
    """Answer a free-text question."""
    query = clean_query(query)
    if not query:
        ctx.notes["outcome"] = Outcome.EMPTY  # counted per day by the webhook (console)
        return Reply(text=EMPTY_PROMPT)
    reply = navigation.navigate(query, ctx)
    if reply is not None:
        ctx.notes["outcome"] = Outcome.NAVIGATION
        return reply
    number = choices.as_choice(query)
    if number is not None:
        ctx.notes["outcome"] = Outcome.PICK
        return _pick(number, ctx)
    return smalltalk.chat(query, ctx) or search(smalltalk.strip_greeting(query), ctx)


def search(query: str, ctx: Context) -> Reply:
    """The three outcomes: the answer, a paged list of the relevant records, or the fallback."""
    found = ctx.search.find(ctx.session, query, ctx.now, limit=choices.MAX_LISTED)
    if not found.records:
        return unanswered(query, ctx, found.transport)
    if found.confident or len(found.records) == 1:
        ctx.notes["outcome"] = Outcome.ANSWER
        return open_record(found.records[0], ctx)
    ctx.notes["outcome"] = Outcome.LIST
    return choices.show(ctx, found.records, LIST_INTRO)


def _pick(number: int, ctx: Context) -> Reply:
    key = choices.pick(ctx, number)
    if key is None:
        return Reply(text="没有待选择的列表或编号超出范围，请直接输入您的问题。")
    record = ctx.search.visible(ctx.session, [key], ctx.now).get(key)
    if record is None:
        return Reply(text="该信息已更新或不再提供，请重新输入您的问题。")
    return open_record(record, ctx)


def handle_text(msg: Message, ctx: Context) -> Reply:
    """Text messages."""
    return ask(msg.content, ctx)


def handle_voice(msg: Message, ctx: Context) -> Reply:
    """Voice: the platform's Recognition is answered as text; without it, ask for text."""
    if msg.recognition.strip():
        return ask(msg.recognition, ctx)
    return Reply(text="抱歉，没能识别这段语音，请用文字描述您的问题。")
