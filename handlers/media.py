"""Images, video, links, files and unknown message types: a polite answer."""

from __future__ import annotations

from bot.router import Context, Reply
from bot.wechat.messages import Message

NAMES = {"image": "图片", "video": "视频", "shortvideo": "小视频", "link": "链接",
         "file": "文件"}


def handle_media(msg: Message, ctx: Context) -> Reply:
    """Acknowledge the media and say what the account can do."""
    what = NAMES.get(msg.msg_type, "消息")
    return Reply(text=f"已收到您的{what}。本号目前只能回答文字或语音问题，"
                      "请直接输入您想咨询的事项；"
                      f"如需投诉或人工服务，请拨打 {ctx.settings.bot.fallback_hotline}。")
