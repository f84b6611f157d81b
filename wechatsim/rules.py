"""Payload checks of the simulated WeChat APIs: pure functions returning (errcode, errmsg)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

Problem = tuple[int, str] | None
Validator = Callable[[dict[str, Any]], Problem]

ARG_INVALID = (47003, "argument invalid! data.value invalid")

# Subscribe-notification value limits (platform doc, 订阅通知 参数值内容限制); a key is the
# value type followed by a number, e.g. thing1, character_string2. Over-length -> 47003.
VALUE_LIMITS = {
    "thing": 20,
    "number": 32,
    "letter": 32,
    "symbol": 5,
    "character_string": 32,
    "phrase": 5,
    "car_number": 8,
    "phone_number": 17,
    "name": 10,
    "time": 64,
    "date": 64,
    "amount": 14,
}
_KEY_RE = re.compile(r"^([a-z_]+?)(\d+)$")
_FORMATS = {
    "number": re.compile(r"^-?\d+(\.\d+)?$"),
    "letter": re.compile(r"^[A-Za-z]+$"),
    "character_string": re.compile(r"^[\x21-\x7e]+$"),
    "phrase": re.compile(r"^[\u4e00-\u9fff]+$"),
    "amount": re.compile(r"^[¥$€£]?\d{1,10}(\.\d{1,2})?元?$"),
    "phone_number": re.compile(r"^[+\d][\d\- ]*$"),
    "time": re.compile(r"\d"),
    "date": re.compile(r"\d"),
}
CUSTOM_MSGTYPES = frozenset(
    {"text", "image", "voice", "video", "music", "news", "mpnews", "mpnewsarticle",
     "msgmenu", "wxcard", "miniprogrampage"}
)
# Custom-service text: the platform caps content near 2048 bytes (45002 above it).
CUSTOM_TEXT_MAX_BYTES = 2048
SUBSCRIBE_ONCE_TITLE_MAX = 15
SUBSCRIBE_ONCE_CONTENT_MAX = 200


def check_touser(payload: Mapping[str, Any], pattern: re.Pattern[str]) -> Problem:
    """40003 when `touser` is missing or does not look like an openid."""
    touser = payload.get("touser")
    if not isinstance(touser, str) or not pattern.match(touser):
        return (40003, "invalid openid")
    return None


def check_data_values(data: Any, *, typed_keys_only: bool) -> Problem:
    """Check {key: {"value": str}} and the per-type limits of typed keys (47003)."""
    if not isinstance(data, dict) or not data:
        return ARG_INVALID
    for key, entry in data.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("value"), str):
            return ARG_INVALID
        value = entry["value"]
        match = _KEY_RE.match(key)
        limit = VALUE_LIMITS.get(match.group(1)) if match else None
        if limit is None:
            if typed_keys_only:
                return (47003, f"argument invalid! data.{key} unknown key")
            continue
        kind = match.group(1)
        fmt = _FORMATS.get(kind)
        if not value or len(value) > limit or (fmt is not None and not fmt.search(value)):
            return (47003, f"argument invalid! data.{key}.value invalid")
    return None


def validate_custom(payload: dict[str, Any]) -> Problem:
    """message/custom/send: msgtype, text content, a single news article."""
    msgtype = payload.get("msgtype")
    if msgtype not in CUSTOM_MSGTYPES:
        return (40008, "invalid message type")
    body = payload.get(msgtype)
    if not isinstance(body, dict):
        return (44003 if msgtype == "news" else 44004, "empty content")
    if msgtype == "text":
        content = body.get("content")
        if not isinstance(content, str) or not content:
            return (44004, "empty content")
        if len(content.encode("utf-8")) > CUSTOM_TEXT_MAX_BYTES:
            return (45002, "content size out of limit")
    if msgtype == "news":
        articles = body.get("articles")
        if not isinstance(articles, list) or not articles:
            return (44003, "empty news data")
        if len(articles) > 1:  # custom news carries one article since 2018-10
            return (45008, "article size out of limit")
        if not isinstance(articles[0], dict) or not articles[0].get("title"):
            return (44003, "empty news data")
    return None


def validate_template(payload: dict[str, Any]) -> Problem:
    """message/template/send: template_id and data values."""
    if not isinstance(payload.get("template_id"), str) or not payload["template_id"]:
        return (40037, "invalid template_id")
    return check_data_values(payload.get("data"), typed_keys_only=False)


def validate_bizsend(payload: dict[str, Any]) -> Problem:
    """message/subscribe/bizsend: typed keys with value limits (47003)."""
    if not isinstance(payload.get("template_id"), str) or not payload["template_id"]:
        return (40037, "invalid template_id")
    return check_data_values(payload.get("data"), typed_keys_only=True)


def validate_subscribe_once(payload: dict[str, Any]) -> Problem:
    """message/template/subscribe: scene 0..10000, title <= 15, content <= 200 chars."""
    if not isinstance(payload.get("template_id"), str) or not payload["template_id"]:
        return (40037, "invalid template_id")
    scene = payload.get("scene")
    if not str(scene).isdigit() or not 0 <= int(str(scene)) <= 10000:
        return (47003, "argument invalid! scene invalid")
    title = payload.get("title")
    if not isinstance(title, str) or not title or len(title) > SUBSCRIBE_ONCE_TITLE_MAX:
        return (47003, "argument invalid! title invalid")
    data = payload.get("data")
    content = data.get("content") if isinstance(data, dict) else None
    value = content.get("value") if isinstance(content, dict) else None
    if not isinstance(value, str) or not value or len(value) > SUBSCRIBE_ONCE_CONTENT_MAX:
        return (47003, "argument invalid! data.content.value invalid")
    return None


def validate_menu(payload: dict[str, Any]) -> Problem:
    """menu/create: 1..3 buttons of 1..5 sub-buttons, names within byte limits."""
    buttons = payload.get("button")
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
        return (40016, "invalid button size")
    for button in buttons:
        if not isinstance(button, dict) or not button.get("name"):
            return (40018, "invalid button name size")
        if len(str(button["name"]).encode("utf-8")) > 16:
            return (40018, "invalid button name size")
        subs = button.get("sub_button")
        if subs is None or subs == []:
            if button.get("type") not in {"click", "view", "miniprogram", "scancode_push",
                                          "scancode_waitmsg", "pic_sysphoto", "location_select",
                                          "pic_photo_or_album", "pic_weixin", "media_id",
                                          "article_id", "article_view_limited"}:
                return (40017, "invalid button type")
            continue
        if not isinstance(subs, list) or len(subs) > 5:
            return (40023, "invalid sub button size")
        for sub in subs:
            if not isinstance(sub, dict) or not sub.get("name"):
                return (40025, "invalid sub button name size")
            if len(str(sub["name"]).encode("utf-8")) > 60:
                return (40025, "invalid sub button name size")
    return None


MESSAGE_VALIDATORS: dict[str, Validator] = {
    "message/custom/send": validate_custom,
    "message/template/send": validate_template,
    "message/subscribe/bizsend": validate_bizsend,
    "message/template/subscribe": validate_subscribe_once,
}
SEND_APIS = frozenset(MESSAGE_VALIDATORS)
# Which send channels need a follower (43004) and which need consent (43101).
FOLLOWER_APIS = frozenset({"message/custom/send", "message/template/send"})
CONSENT_APIS = frozenset({"message/subscribe/bizsend", "message/template/subscribe"})
# The APIs that answer with a msgid (custom and template/subscribe answer errcode only).
MSGID_APIS = frozenset({"message/template/send", "message/subscribe/bizsend"})
