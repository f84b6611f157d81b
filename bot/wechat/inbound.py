"""The WeChat side of the webhook: build signed (and encrypted) requests, open replies.

Used by `qzbot ask`, the tests and the benchmarks so that they exercise the real webhook
code path exactly as WeChat's servers would call it.
"""

from __future__ import annotations

import secrets
import time
from xml.sax.saxutils import escape

from bot.wechat.crypto import MessageCrypto
from bot.wechat.messages import parse_xml_dict
from bot.wechat.signature import make_signature


def message_xml(to_user: str, from_user: str, msg_type: str = "text", *,
                create_time: int | None = None, msg_id: int | None = None,
                **fields: str) -> str:
    """An inbound message as WeChat sends it (values in CDATA, ids as numbers)."""
    create_time = int(time.time()) if create_time is None else create_time
    parts = [f"<ToUserName><![CDATA[{to_user}]]></ToUserName>",
             f"<FromUserName><![CDATA[{from_user}]]></FromUserName>",
             f"<CreateTime>{create_time}</CreateTime>",
             f"<MsgType><![CDATA[{msg_type}]]></MsgType>"]
    for name, value in fields.items():
        safe = str(value).replace("]]>", "]]]]><![CDATA[>")
        parts.append(f"<{name}><![CDATA[{safe}]]></{name}>")
    if msg_type != "event":
        parts.append(f"<MsgId>{msg_id if msg_id is not None else secrets.randbits(62)}</MsgId>")
    return "<xml>" + "".join(parts) + "</xml>"


def signed_request(xml: str, token: str, crypto: MessageCrypto | None = None, *,
                   timestamp: int | None = None, nonce: str | None = None,
                   openid: str = "") -> tuple[dict[str, str], str]:
    """(query args, body) for a POST to the webhook; safe mode when `crypto` is given."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or str(secrets.randbelow(10**10))
    args = {"signature": make_signature(token, ts, nonce), "timestamp": ts, "nonce": nonce}
    if openid:
        args["openid"] = openid
    if crypto is None:
        return args, xml
    encrypted = crypto.cipher.encrypt(xml)
    args["encrypt_type"] = "aes"
    args["msg_signature"] = make_signature(token, ts, nonce, encrypted)
    body = (f"<xml><ToUserName><![CDATA[{escape(_to_user(xml))}]]></ToUserName>"
            f"<Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>")
    return args, body


def _to_user(xml: str) -> str:
    return str(parse_xml_dict(xml).get("ToUserName", ""))


def open_reply(body: str, crypto: MessageCrypto | None = None) -> dict[str, object] | None:
    """The reply's fields as a dict (decrypted in safe mode); None for `success`/empty."""
    body = body.strip()
    if not body or body == "success":
        return None
    data = parse_xml_dict(body)
    if "Encrypt" in data:
        if crypto is None:
            raise ValueError("encrypted reply but no key")
        sig = make_signature(crypto.token, str(data["TimeStamp"]), str(data["Nonce"]),
                             str(data["Encrypt"]))
        if sig != data.get("MsgSignature"):
            raise ValueError("reply MsgSignature does not verify")
        data = parse_xml_dict(crypto.cipher.decrypt(str(data["Encrypt"])))
    return data
