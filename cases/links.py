"""Signed links for the citizen side of casework: the H5 forms and the progress-consent link.

H5 form link (`form_url`): /h5/apply or /h5/message on the webhook app with `openid=` and
`t=<expires>.<mac>`, the MAC an HMAC-SHA256 over (form, openid, expiry) with a key derived
from [security] secret_key for this purpose only (as bot/subscribemsg.py does for its
`reserved` token). The openid goes in a parameter named `openid` so the log formatter
(bot/logs.redact) pseudonymises it in every access-log line. A forged, expired or borrowed
link (another openid, another form) opens nothing.

Form token (`issue_form_token`): put in the rendered form and checked on POST, bound to the
link token and its issue time; the view takes it once (Redis SET NX), so a double click or
a replayed POST cannot file the same application twice.

Progress consent (`consent_url`): the legacy 一次性订阅 confirmation page of WeChat
(wechat-platform.md, "Subscription consent") whose redirect lands on /h5/consent, not on
/wechat/subscribemsg: confirming there grants one notification credit for the case-progress
template only (push.consent.decide_redirect), it subscribes the citizen to no topic. Its
`reserved` token (alphanumeric, <= 128 bytes, as the platform requires) uses its own key
purpose, so it is worthless on the topic redirect and the other way round.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import datetime
from urllib.parse import quote, urlencode

from bot.settings import Settings

FORMS = ("apply", "message")
H5_PATHS = {"apply": "/h5/apply", "message": "/h5/message"}
CONSENT_PATH = "/h5/consent"
CONFIRM_BASE = "https://mp.weixin.qq.com/mp/subscribemsg"
LINK_TTL = 2 * 86400  # a chat link stays usable for two days
FORM_TTL = 4 * 3600  # a rendered form may be submitted within four hours
CONSENT_TTL = 86400
_LINK = re.compile(r"(\d{10})\.([0-9a-f]{64})")
_CONSENT = re.compile(r"c1(\d{10})([0-9a-f]{64})")
_SCENE = re.compile(r"\d{1,5}")


class LinkInvalid(Exception):
    """A link or form token that is missing, malformed, forged, expired or for other values."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


def _key(settings: Settings, purpose: str) -> bytes:
    return hmac.new(settings.security.secret_key.encode(), f"qzbot:cases:{purpose}".encode(),
                    hashlib.sha256).digest()


def _mac(settings: Settings, purpose: str, *parts: str) -> str:
    return hmac.new(_key(settings, purpose), "\n".join(parts).encode(),
                    hashlib.sha256).hexdigest()


def issue_link_token(settings: Settings, form: str, openid: str, now: datetime) -> str:
    """`<expires>.<mac>` binding the form, the openid and the expiry."""
    expires = int(now.timestamp()) + LINK_TTL
    return f"{expires:010d}.{_mac(settings, 'h5', 'v1', form, openid, str(expires))}"


def check_link_token(settings: Settings, token: str, form: str, openid: str,
                     now: datetime) -> None:
    """Raise LinkInvalid unless the token is ours, unexpired and for this form and openid."""
    match = _LINK.fullmatch(token or "")
    if not match or not openid or len(openid) > 64:
        raise LinkInvalid("malformed")
    expires = int(match.group(1))
    expected = _mac(settings, "h5", "v1", form, openid, str(expires))
    if not hmac.compare_digest(match.group(2), expected):
        raise LinkInvalid("mismatch")
    if expires <= int(now.timestamp()):
        raise LinkInvalid("expired")


def form_url(settings: Settings, form: str, openid: str, now: datetime) -> str:
    """The signed H5 link for the chat ("" when [push] public_base_url is not configured)."""
    base = settings.push.public_base_url.rstrip("/")
    if not base or form not in FORMS:
        return ""
    query = urlencode({"openid": openid, "t": issue_link_token(settings, form, openid, now)})
    return f"{base}{H5_PATHS[form]}?{query}"


def issue_form_token(settings: Settings, link_token: str, openid: str, now: datetime) -> str:
    """The token of one rendered form: `<issued>.<mac>` over the link token and openid."""
    issued = int(now.timestamp())
    return f"{issued:010d}.{_mac(settings, 'form', openid, link_token, str(issued))}"


def check_form_token(settings: Settings, token: str, link_token: str, openid: str,
                     now: datetime) -> None:
    """Raise LinkInvalid unless the form token was issued for this link within FORM_TTL."""
    match = _LINK.fullmatch(token or "")
    if not match:
        raise LinkInvalid("form_malformed")
    issued = int(match.group(1))
    expected = _mac(settings, "form", openid, link_token, str(issued))
    if not hmac.compare_digest(match.group(2), expected):
        raise LinkInvalid("form_mismatch")
    if not 0 <= int(now.timestamp()) - issued <= FORM_TTL:
        raise LinkInvalid("form_expired")


def issue_consent_reserved(settings: Settings, openid: str, template_id: str, scene: str,
                           now: datetime) -> str:
    """`reserved` for the progress-consent link (alphanumeric, 76 characters)."""
    expires = int(now.timestamp()) + CONSENT_TTL
    return f"c1{expires:010d}" + _mac(settings, "consent", openid, template_id, scene,
                                      str(expires))


def check_consent_reserved(settings: Settings, token: str, openid: str, template_id: str,
                           scene: str, now: datetime) -> None:
    """Raise LinkInvalid unless `reserved` is ours, unexpired and for exactly these values."""
    match = _CONSENT.fullmatch(token or "")
    if not match:
        raise LinkInvalid("malformed")
    expires = int(match.group(1))
    expected = _mac(settings, "consent", openid, template_id, scene, str(expires))
    if not hmac.compare_digest(match.group(2), expected):
        raise LinkInvalid("mismatch")
    if expires <= int(now.timestamp()):
        raise LinkInvalid("expired")


def valid_scene(scene: str) -> bool:
    """Legacy scenes are integers 0..10000 (platform rule)."""
    return bool(_SCENE.fullmatch(scene or "")) and int(scene) <= 10000


def consent_url(settings: Settings, openid: str, template_id: str, scene: str,
                now: datetime) -> str:
    """WeChat's one-time confirmation page, redirecting to /h5/consent ("" without a base)."""
    base = settings.push.public_base_url.rstrip("/")
    if not base or not valid_scene(scene):
        return ""
    query = urlencode({
        "action": "get_confirm", "appid": settings.wechat.app_id, "scene": scene,
        "template_id": template_id, "redirect_url": base + CONSENT_PATH,
        "reserved": issue_consent_reserved(settings, openid, template_id, scene, now),
    }, quote_via=quote)
    return f"{CONFIRM_BASE}?{query}#wechat_redirect"
