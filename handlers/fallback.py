"""Fallback: the honest "I don't know" when nothing relevant was found, and odd messages.

An unanswerable question gets "这个问题我暂时无法回答" with the hotline that fits it (12328
for a transport question, 12345 otherwise) and is recorded for `qzbot report unanswered`.
It never claims the question was passed to staff: nobody follows up on it (issue 8).
The question is noted in `ctx.notes["unanswered"]`; the webhook buffers it after the answer
and writes it in batches (bot/presence.Unanswered), so no database write delays the reply.
"""

from __future__ import annotations

from bot.router import Context, Reply
from bot.vocab import QuestionOutcome
from bot.wechat.messages import Message

SUGGESTIONS = ("公交卡丢了怎么补办", "从业资格证怎么换证", "渡轮今天停航吗", "出租车投诉电话")
CITY_HOTLINE = "12345 政务服务便民热线"


def hotline(ctx: Context, transport: bool) -> str:
    """The hotline to name: the configured transport hotline (12328) or the city's 12345."""
    return f"{ctx.settings.bot.fallback_hotline} 交通运输服务监督电话" if transport \
        else CITY_HOTLINE


def fallback_text(ctx: Context, transport: bool = False) -> str:
    """Say plainly that we cannot answer, who can, and what we can answer."""
    examples = "、".join(f"“{s}”" for s in SUGGESTIONS)
    return (f"这个问题我暂时无法回答。建议您拨打 {hotline(ctx, transport)}咨询。\n"
            f"您也可以换个说法再问，本号能回答的问题例如：{examples}；"
            "回复“菜单”查看本号能办的事。")


def unanswered(query: str, ctx: Context, transport: bool = False) -> Reply:
    """Note the query for staff (qzbot report unanswered) and answer with the fallback."""
    ctx.notes["unanswered"] = query  # recorded by the webhook after the answer
    ctx.notes["outcome"] = QuestionOutcome.FALLBACK
    return Reply(text=fallback_text(ctx, transport))


def polite(msg: Message, ctx: Context) -> Reply:
    """The router's fallback for message types no handler takes."""
    return Reply(text="您好，本号目前只能回答文字或语音问题。请直接输入您想咨询的事项，"
                      f"如需人工服务请拨打 {ctx.settings.bot.fallback_hotline}。")
