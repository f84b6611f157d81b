"""The legacy 一次性订阅 (one-time subscription) link and its redirect: GET /wechat/subscribemsg.

Platform rule (wechat-platform.md, "Subscription consent"): the citizen confirms at
mp.weixin.qq.com/mp/subscribemsg?action=get_confirm&…&reserved=…, then WeChat redirects
the browser to `redirect_url?openid=&template_id=&action=confirm|cancel&scene=&reserved=`.
That redirect carries no signature, so anyone can forge it. What makes it safe here:
`reserved` (returned as is; only a-zA-Z0-9, at most 128 bytes) is a token we issued,
HMAC-SHA256 over openid, template id, scene and expiry with a key derived from
[security] secret_key, compared in constant time. A forged, expired or borrowed link
(another openid, template or scene) grants nothing. Scenes are integers 0..10000.

Confirm versus cancel: the citizen chooses on WeChat's page, after we issued the one
`reserved` of the link, and WeChat sends the same `reserved` with either action; so the
action cannot be inside the MAC. It is bound to the token at first use instead: the first
verified redirect decides the link's scene in the consent ledger (unique per openid,
template, scene; push.consent.apply_redirect), and a redirect with the same token and
the other action is refused (403): a captured cancel URL cannot become a confirm, nor a
captured confirm a cancel, and a replay of the same action changes nothing.

Layering: this view is the citizen edge, foundation; it imports no feature package. The
domain step (push.consent.apply_redirect) is handed to it by the composition root
(bot/app.py) under `app.extensions[APPLY_REDIRECT]`.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Callable
from datetime import datetime
from html import escape
from typing import Protocol
from urllib.parse import quote, urlencode

from flask import Blueprint, Response, current_app, request
from sqlalchemy.orm import Session

from bot.runtime import Runtime, openid_hash
from bot.settings import Settings
from bot.store.queries import record_interaction

log = logging.getLogger("qzbot.subscribemsg")
bp = Blueprint("subscribemsg", __name__)

REDIRECT_PATH = "/wechat/subscribemsg"
CONFIRM_BASE = "https://mp.weixin.qq.com/mp/subscribemsg"
_VERSION = "v1"
_TOKEN = re.compile(r"v1(\d{10})([0-9a-f]{64})")
_SCENE = re.compile(r"\d{1,5}")
_MAX_ARG = 128
AGAIN = "请在“泉州交通运输”公众号回复“订阅”获取新的订阅链接。"
APPLY_REDIRECT = "qzbot.subscribemsg.apply"  # app.extensions key of the domain step


class Outcome(Protocol):
    """What the domain step reports about a verified redirect (push.consent.RedirectOutcome)."""

    topic: str
    action: str
    changed: bool
    refused: bool


# (session, settings, openid, template_id, scene, action, now) -> outcome, None = unknown
ApplyRedirect = Callable[[Session, Settings, str, str, str, str, datetime], Outcome | None]


class ReservedInvalid(Exception):
    """A `reserved` token that is missing, malformed, forged, expired or for other values."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


def _key(settings: Settings) -> bytes:
    """A purpose-bound key, so the token MAC never equals another use of secret_key."""
    return hmac.new(settings.security.secret_key.encode(), b"qzbot:subscribemsg:reserved",
                    hashlib.sha256).digest()


def _mac(settings: Settings, openid: str, template_id: str, scene: str, expires: int) -> str:
    message = "\n".join((_VERSION, openid, template_id, scene, str(expires))).encode()
    return hmac.new(_key(settings), message, hashlib.sha256).hexdigest()


def issue_reserved(settings: Settings, openid: str, template_id: str, scene: str,
                   now: datetime) -> str:
    """A `reserved` token binding openid, template, scene and an expiry (alphanumeric, 76 chars)."""
    expires = int(now.timestamp()) + settings.push.reserved_ttl_seconds
    return f"{_VERSION}{expires:010d}{_mac(settings, openid, template_id, scene, expires)}"


def check_reserved(settings: Settings, token: str, openid: str, template_id: str, scene: str,
                   now: datetime) -> None:
    """Raise ReservedInvalid unless `token` is ours, unexpired and for exactly these values."""
    match = _TOKEN.fullmatch(token or "")
    if not match:
        raise ReservedInvalid("malformed")
    expires, mac = int(match.group(1)), match.group(2)
    expected = _mac(settings, openid, template_id, scene, expires)
    if not hmac.compare_digest(mac, expected):
        raise ReservedInvalid("mismatch")
    if expires <= int(now.timestamp()):
        raise ReservedInvalid("expired")


def valid_scene(scene: str) -> bool:
    """Legacy scenes are integers 0..10000 (platform rule)."""
    return bool(_SCENE.fullmatch(scene or "")) and int(scene) <= 10000


def confirm_url(settings: Settings, openid: str, template_id: str, scene: str, now: datetime,
                base_url: str | None = None) -> str:
    """The mp.weixin.qq.com confirmation link whose redirect lands on our endpoint.

    `base_url` defaults to [push] public_base_url (WeChat requires the registered 业务域名;
    handlers run outside any request). ValueError when neither is available.
    """
    if not valid_scene(scene):
        raise ValueError("scene must be an integer 0..10000")
    base = (base_url or settings.push.public_base_url).rstrip("/")
    if not base:
        raise ValueError("[push] public_base_url is not configured")
    query = urlencode({
        "action": "get_confirm", "appid": settings.wechat.app_id, "scene": scene,
        "template_id": template_id, "redirect_url": base + REDIRECT_PATH,
        "reserved": issue_reserved(settings, openid, template_id, scene, now),
    }, quote_via=quote)
    return f"{CONFIRM_BASE}?{query}#wechat_redirect"


# --- the redirect view ------------------------------------------------------------------

PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title></head>
<body style="font-family: sans-serif; text-align: center; padding: 3em 1em">
<h1 style="font-size: 1.4em">{title}</h1><p>{body}</p>
<p style="color: #888">泉州交通运输</p></body></html>
"""


def page(title: str, body: str, status: int = 200) -> Response:
    """A small HTML page; never cached, never leaks the URL (openid, token) as a referrer."""
    resp = Response(PAGE.format(title=escape(title), body=escape(body)), status=status,
                    mimetype="text/html")
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Referrer-Policy"] = "no-referrer"
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


def _refuse(status: int, reason: str, openid: str, body: str) -> Response:
    log.warning("subscribemsg refused %s oh=%s from %s", reason,
                openid_hash(openid) if openid else "-", request.remote_addr)
    return page("链接无效" if status == 403 else "请求有误", body, status)


def _arg(name: str) -> str:
    value = request.args.get(name, "")
    return value.strip() if len(value) <= _MAX_ARG else ""


@bp.get(REDIRECT_PATH)
def redirect_target() -> Response:
    """WeChat's redirect after the citizen confirmed or cancelled a one-time subscription."""
    rt: Runtime = current_app.extensions["qzbot.runtime"]
    openid, template_id = _arg("openid"), _arg("template_id")
    action, scene, reserved = _arg("action"), _arg("scene"), _arg("reserved")
    if not openid or not template_id or not valid_scene(scene) or not reserved:
        return _refuse(400, "missing_or_bad_args", openid, "链接缺少必要的参数。" + AGAIN)
    if action not in ("confirm", "cancel"):
        return _refuse(400, "bad_action", openid, "无法识别的操作。" + AGAIN)
    now = rt.now()
    try:
        check_reserved(rt.settings, reserved, openid, template_id, scene, now)
    except ReservedInvalid as exc:
        return _refuse(403, f"reserved_{exc.reason}", openid,
                       "订阅链接已过期或不属于您。" + AGAIN)
    apply_redirect: ApplyRedirect = current_app.extensions[APPLY_REDIRECT]
    with rt.sessions() as session:
        outcome = apply_redirect(session, rt.settings, openid, template_id, scene, action, now)
        if outcome is None:
            session.rollback()
            return _refuse(400, "unknown_template", openid, "该订阅消息模板已停用。" + AGAIN)
        if outcome.refused:
            session.rollback()
            return _refuse(403, "reserved_used_for_other_action", openid,
                           "此订阅链接已用于另一项选择，不能更改。" + AGAIN)
        record_interaction(session, openid, "subscribemsg",
                           {"action": action, "template_id": template_id[:128],
                            "scene": scene, "changed": outcome.changed}, now)
        session.commit()
    log.info("subscribemsg %s oh=%s template=%s scene=%s changed=%s", action,
             openid_hash(openid), template_id, scene, outcome.changed)
    return page(*_said(outcome))


def _said(outcome: Outcome) -> tuple[str, str]:
    """(title, body) of the page telling the citizen what their choice did."""
    topic = outcome.topic
    if outcome.action == "confirm":
        return "订阅成功", (f"您已同意接收一条“{topic}”通知，有新消息时我们会通过公众号推送给您。"
                        if outcome.changed else
                        f"您已确认过接收“{topic}”通知，同一链接重复确认不会增加通知次数。")
    return "已取消", (f"您未同意接收“{topic}”订阅通知，此前的此类通知授权也已撤销。"
                   "如需重新订阅，可在公众号回复“订阅”。")


__all__ = ["bp", "confirm_url", "issue_reserved", "check_reserved", "ReservedInvalid",
           "REDIRECT_PATH", "APPLY_REDIRECT", "ApplyRedirect"]
