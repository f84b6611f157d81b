"""Test helpers: talk to the webhook exactly as WeChat's servers do."""

from __future__ import annotations

import itertools

from bot.wechat.crypto import MessageCrypto
from bot.wechat.inbound import message_xml, open_reply, signed_request

ACCOUNT = "gh_10f6c3c3ac5a"
CITIZEN = "oyORnuP8q7ou2gfYjqLzSIWZf0rs"
_ids = itertools.count(7000000000000000001)


class WeChat:
    """Sends signed (plain or AES) requests to an app's /wechat through its test client."""

    def __init__(self, app, mode: str = "aes"):
        self.app = app
        self.client = app.test_client()
        rt = app.extensions["qzbot.runtime"]
        wx = rt.settings.wechat
        self.rt = rt
        self.token = wx.token
        self.crypto = MessageCrypto(wx.token, [wx.encoding_aes_key], wx.app_id)
        self.mode = mode

    def now(self) -> int:
        """The app clock's Unix time."""
        return int(self.rt.now().timestamp())

    def post_xml(self, xml: str, *, mode: str | None = None, **sign) -> tuple[int, str]:
        """POST an inner message XML; returns (status, raw body)."""
        mode = mode or self.mode
        sign.setdefault("timestamp", self.now())
        args, body = signed_request(xml, self.token, self.crypto if mode == "aes" else None,
                                    **sign)
        resp = self.client.post("/wechat", query_string=args, data=body.encode())
        return resp.status_code, resp.get_data(as_text=True)

    def send(self, content: str = "", *, msg_type: str = "text", openid: str = CITIZEN,
             msg_id: int | None = None, mode: str | None = None, **fields) -> dict | None:
        """Send a message and return the opened reply (None for success); asserts 200."""
        if msg_type == "text":
            fields.setdefault("Content", content)
        xml = message_xml(ACCOUNT, openid, msg_type, create_time=self.now(),
                          msg_id=next(_ids) if msg_id is None and msg_type != "event"
                          else msg_id, **fields)
        status, body = self.post_xml(xml, mode=mode)
        assert status == 200, body
        return open_reply(body, self.crypto)

    def text(self, content: str, **kw) -> str:
        """Send a text and return the reply's Content ("" for success)."""
        reply = self.send(content, **kw)
        return "" if reply is None else str(reply.get("Content", ""))

    def event(self, event: str, key: str = "", openid: str = CITIZEN, **fields) -> dict | None:
        """Send an event."""
        return self.send(msg_type="event", openid=openid, Event=event, EventKey=key, **fields)
