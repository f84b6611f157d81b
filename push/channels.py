"""Which WeChat channel reaches a recipient, the send itself, and what an answer means.

Rules, first match wins (docs/wechat-platform.md, "Subscription consent" and "Outbound
channels"):

1. template.channel "subscribe" and an available consent for (openid, template_id):
   bizsend (long-term or popup consent) or, for a legacy 一次性订阅 consent (source
   "redirect"), template/subscribe with the consent's scene and payload["once"]. A
   one-time consent is consumed (atomically) when the row is claimed, before the send.
2. the customer-service window: a citizen message within 48 h and fewer than 5
   customer-service messages since -> custom text (the slot is reserved: cs_sent + 1).
3. template.channel "template" -> template message.
4. otherwise the row is skipped with reason "no_channel".

A reservation (consent, window slot) is released again when the send surely did not go
out (transport error, quota, token). Domain functions here never commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.clock import to_utc_naive
from bot.errors import AmbiguousSend, TransportError, WeChatAPIError
from bot.store.models import Consent, Follower
from bot.wechat.client import TOKEN_ERRCODES, WeChatClient
from push.consent import available_consent, consume

BIZSEND, ONCE, CUSTOM, TEMPLATE = "bizsend", "subscribe_once", "custom", "template"
CHANNELS = (BIZSEND, ONCE, CUSTOM, TEMPLATE)  # also the keys of settings.push.rate_limits
CONSENT_CHANNELS = (BIZSEND, ONCE)
# Platform rule (since 2023-06): after a citizen's message, 5 messages within 48 h.
CS_WINDOW = timedelta(hours=48)
CS_LIMIT = 5

# Error classes, platform doc "Error codes to classify".
NOT_FOLLOWING = 43004  # permanent for this recipient
REFUSED = 43101  # permanent; revoke the consent
QUOTA = frozenset({45009, 45011})  # back off, resume later
WINDOW_CLOSED = frozenset({45015, 45047})  # choose another channel
CAMPAIGN_LEVEL = frozenset({47003, 48001})  # a bug or a configuration error: stop + alert
SYSTEM_BUSY = -1  # retry only if surely not applied: we cannot know, so it is unknown


@dataclass(frozen=True)
class Send:
    """One claimed row's send: channel, and the reservation made for it."""

    delivery_id: int
    openid: str
    channel: str
    attempts: int = 1
    consent_id: int | None = None
    consumed: bool = False  # a one-time consent was consumed for this send
    scene: str | None = None


@dataclass(frozen=True)
class Verdict:
    """What an answer means for the row: the action and what to record."""

    action: str  # sent | failed | unknown | retry | quota | next_channel | stop
    errcode: int | None = None
    reason: str | None = None
    msgid: str | None = None
    detail: str = ""


def _consent_send(session: Session, delivery_id: int, openid: str, payload: dict[str, Any],
                  attempts: int, now: datetime) -> Send | None:
    """Rule 1: a subscribe notification under an available consent (consumed if one-time)."""
    template = payload.get("template") or {}
    if template.get("channel") != "subscribe" or not template.get("template_id"):
        return None
    for _ in range(3):  # another campaign may consume the same one-time grant first
        consent = available_consent(session, openid, template["template_id"])
        if consent is None:
            return None
        legacy = consent.source == "redirect"
        if legacy and not (payload.get("once") or {}).get("title"):
            return None  # no legacy text rendered: this grant cannot be used here
        if consume(session, consent, delivery_id, now):
            return Send(delivery_id, openid, ONCE if legacy else BIZSEND, attempts,
                        consent.id, not consent.long_term, consent.scene)
    return None


def _window_send(session: Session, delivery_id: int, follower: Follower,
                 payload: dict[str, Any], attempts: int, now: datetime) -> Send | None:
    """Rule 2: a customer-service text inside the 48 h window, slot reserved atomically."""
    last = follower.last_message_at
    if not payload.get("text") or last is None or to_utc_naive(now) - last > CS_WINDOW:
        return None
    reserved = session.execute(update(Follower).where(
        Follower.openid == follower.openid, Follower.cs_sent < CS_LIMIT).values(
        cs_sent=Follower.cs_sent + 1).execution_options(synchronize_session=False))
    if reserved.rowcount != 1:
        return None
    return Send(delivery_id, follower.openid, CUSTOM, attempts)


def choose(session: Session, delivery_id: int, follower: Follower | None,
           payload: dict[str, Any], now: datetime, attempts: int = 1) -> Send | str:
    """The channel for one recipient (a Send) or the reason to skip the row."""
    if follower is None or not follower.active:
        return "unfollowed"
    found = (_consent_send(session, delivery_id, follower.openid, payload, attempts, now)
             or _window_send(session, delivery_id, follower, payload, attempts, now))
    if found is not None:
        return found
    template = payload.get("template") or {}
    if template.get("channel") == "template" and template.get("template_id"):
        return Send(delivery_id, follower.openid, TEMPLATE, attempts)
    return "no_channel"


def resume(session: Session, delivery_id: int, channel: str | None, follower: Follower | None,
           payload: dict[str, Any], now: datetime, attempts: int) -> Send | str:
    """Re-send a row left `sending` by a dead worker on the channel (and grant) it had."""
    if channel in CONSENT_CHANNELS:
        consent = session.scalar(select(Consent).where(Consent.used_by == delivery_id))
        if consent is not None:
            return Send(delivery_id, consent.openid, channel, attempts, consent.id, True,
                        consent.scene)
    elif channel in (CUSTOM, TEMPLATE) and follower is not None and follower.active:
        return Send(delivery_id, follower.openid, channel, attempts)
    return choose(session, delivery_id, follower, payload, now, attempts)


def release(session: Session, send: Send) -> None:
    """Undo the reservation of a send that surely did not go out."""
    if send.consumed and send.consent_id is not None:
        # the inverse of push.consent.consume, only for the delivery that consumed it
        session.execute(update(Consent).where(
            Consent.id == send.consent_id, Consent.used_by == send.delivery_id,
            Consent.status == "used").values(status="available", used_by=None)
            .execution_options(synchronize_session=False))
    elif send.channel == CUSTOM:
        session.execute(update(Follower).where(
            Follower.openid == send.openid, Follower.cs_sent > 0).values(
            cs_sent=Follower.cs_sent - 1).execution_options(synchronize_session=False))


def perform(client: WeChatClient, send: Send, payload: dict[str, Any]) -> dict[str, Any]:
    """Call the WeChat API for one send (raises what the client raises)."""
    template = payload.get("template") or {}
    url = template.get("url") or None
    if send.channel == BIZSEND:
        return client.send_subscribe(send.openid, template["template_id"], template["data"],
                                     page=url)
    if send.channel == ONCE:
        once = payload["once"]
        return client.send_subscribe_once(send.openid, template["template_id"],
                                          send.scene or "0", once["title"], once["content"],
                                          url=url)
    if send.channel == CUSTOM:
        return client.send_custom_text(send.openid, payload["text"])
    return client.send_template(send.openid, template["template_id"], template["data"], url)


def judge(outcome: dict[str, Any] | BaseException) -> Verdict:
    """Classify an answer or exception (platform doc, "Error codes to classify")."""
    if isinstance(outcome, dict):
        msgid = outcome.get("msgid")
        return Verdict("sent", msgid=None if msgid is None else str(msgid))
    if isinstance(outcome, AmbiguousSend):  # no idempotency key: never blind-retry
        return Verdict("unknown", reason="ambiguous", detail=outcome.detail)
    if isinstance(outcome, TransportError):  # surely not sent: safe to retry
        return Verdict("retry", reason="transport", detail=str(outcome))
    if not isinstance(outcome, WeChatAPIError):
        return Verdict("unknown", reason="internal_error", detail=repr(outcome))
    code, msg = outcome.errcode, outcome.errmsg
    if code == NOT_FOLLOWING:
        return Verdict("failed", code, "not_following", detail=msg)
    if code == REFUSED:
        return Verdict("failed", code, "consent_refused", detail=msg)
    if code in QUOTA:
        return Verdict("quota", code, "quota", detail=msg)
    if code in WINDOW_CLOSED:
        return Verdict("next_channel", code, "window_closed", detail=msg)
    if code in CAMPAIGN_LEVEL:
        return Verdict("stop", code, "campaign_error", detail=msg)
    if code in TOKEN_ERRCODES:  # the client refreshed once already; the call was refused
        return Verdict("retry", code, "token", detail=msg)
    if code == SYSTEM_BUSY:
        return Verdict("unknown", code, "system_busy", detail=msg)
    return Verdict("failed", code, "api_error", detail=msg)
