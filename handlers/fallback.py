"""Fallback: what to say when nothing matched, and what to say to odd messages."""

from __future__ import annotations

from bot.router import Context, Reply
from bot.store.queries import record_unanswered
from bot.wechat.messages import Message

SUGGESTIONS = ("公交卡丢了怎么补办", "从业资格证怎么换证", "渡轮今天停航吗",
               "出租车投诉电话", "政府信息公开申请")


def fallback_text(ctx: Context) -> str:
    """A helpful 'not found': example questions and the 12328 hotline."""
    examples = "\n".join(f"· {s}" for s in SUGGESTIONS)
    return ("抱歉，暂时没有找到与您的问题相符的信息。您可以换个说法，例如：\n"
            f"{examples}\n"
            f"也可以拨打交通运输服务监督电话 {ctx.settings.bot.fallback_hotline} "
            "或 12345 政务服务便民热线咨询。您的问题已转交工作人员，我们会不断完善答复。")


def unanswered(query: str, ctx: Context) -> Reply:
    """Record the query for staff (qzbot report unanswered) and answer with the fallback."""
    record_unanswered(ctx.session, query, ctx.now)
    ctx.notes["unanswered"] = True
    return Reply(text=fallback_text(ctx))


def polite(msg: Message, ctx: Context) -> Reply:
    """The router's fallback for message types no handler takes."""
    return Reply(text="您好，本号目前只能回答文字或语音问题。请直接输入您想咨询的事项，"
                      f"如需人工服务请拨打 {ctx.settings.bot.fallback_hotline}。")
