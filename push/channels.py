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

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import requests
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.clock import to_utc_naive
from bot.errors import AmbiguousSend, TransportError, WeChatAPIError
from bot.runtime import Runtime
from bot.store.models import Consent, Follower
from bot.wechat.client import TOKEN_ERRCODES, WeChatClient
from bot.wechat.transport import KeepAliveTransport, RequestsTransport, Transport
from push.consent import available_consent, consume, revoke_all
from push.token import create_shared_client


class Channel(StrEnum):
    """A WeChat outbound channel; stored in deliveries.channel, keys settings.push.rate_limits."""

    BIZSEND = "bizsend"  # subscribe notification under a long-term or popup consent
    ONCE = "subscribe_once"  # legacy 一次性订阅 (template/subscribe), consent consumed
    CUSTOM = "custom"  # customer-service text inside the 48 h window
    TEMPLATE = "template"  # template message


class Action(StrEnum):
    """What an answer means for the row (Verdict.action)."""

    SENT = "sent"
    FAILED = "failed"  # permanent for this recipient
    UNKNOWN = "unknown"  # may have gone out: recorded, never resent
    RETRY = "retry"  # surely not sent: pending again
    QUOTA = "quota"  # back off, resume later
    NEXT_CHANNEL = "next_channel"  # this channel is closed for the recipient: choose another
    STOP = "stop"  # the campaign itself is wrong: stop it and alert


CHANNELS = tuple(Channel)
CONSENT_CHANNELS = (Channel.BIZSEND, Channel.ONCE)
# Platform rule (since 2023-06): after a citizen's message, 5 messages within 48 h.
CS_WINDOW = timedelta(hours=48)
CS_LIMIT = 5

# The platform doc's table "Error codes to classify": errcode -> (action, reason).
NOT_FOLLOWING, REFUSED = 43004, 43101
ERROR_CLASSES: dict[int, tuple[Action, str]] = {
    NOT_FOLLOWING: (Action.FAILED, "not_following"),  # permanent for this recipient
    REFUSED: (Action.FAILED, "consent_refused"),  # permanent; revoke the consent
    45009: (Action.QUOTA, "quota"), 45011: (Action.QUOTA, "quota"),  # back off, resume later
    45015: (Action.NEXT_CHANNEL, "window_closed"),  # customer-service window closed / full:
    45047: (Action.NEXT_CHANNEL, "window_closed"),  # choose another channel
    47003: (Action.STOP, "campaign_error"),  # template argument invalid: a bug in the campaign
    48001: (Action.STOP, "campaign_error"),  # API not authorised: configuration; stop, alert
    -1: (Action.UNKNOWN, "system_busy"),  # retry only if surely not applied: we cannot know
    **{code: (Action.RETRY, "token") for code in TOKEN_ERRCODES},  # refused after the refresh
}
_CREATE = threading.Lock()


@dataclass(frozen=True)
class Send:
    """One claimed row's send: channel, and the reservation made for it."""

    delivery_id: int
    openid: str
    channel: Channel
    attempts: int = 1
    consent_id: int | None = None
    consumed: bool = False  # a one-time consent was consumed for this send
    scene: str | None = None


@dataclass(frozen=True)
class Verdict:
    """What an answer means for the row: the action and what to record."""

    action: Action
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
            channel = Channel.ONCE if legacy else Channel.BIZSEND
            return Send(delivery_id, openid, channel, attempts, consent.id,
                        not consent.long_term, consent.scene)
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
    return Send(delivery_id, follower.openid, Channel.CUSTOM, attempts)


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
        return Send(delivery_id, follower.openid, Channel.TEMPLATE, attempts)
    return "no_channel"


def resume(session: Session, delivery_id: int, channel: str | None, follower: Follower | None,
           payload: dict[str, Any], now: datetime, attempts: int) -> Send | str:
    """Re-send a row left `sending` by a dead worker on the channel (and grant) it had."""
    if channel in CONSENT_CHANNELS and follower is not None:
        consent = session.scalar(select(Consent).where(  # ix_consents_lookup, then used_by
            Consent.openid == follower.openid,
            Consent.template_id == (payload.get("template") or {}).get("template_id"),
            Consent.status == "used", Consent.used_by == delivery_id))
        if consent is not None:
            return Send(delivery_id, consent.openid, Channel(channel), attempts, consent.id,
                        True, consent.scene)
    elif channel in (Channel.CUSTOM, Channel.TEMPLATE) and follower is not None \
            and follower.active:
        return Send(delivery_id, follower.openid, Channel(channel), attempts)
    return choose(session, delivery_id, follower, payload, now, attempts)


def release(session: Session, send: Send) -> None:
    """Undo the reservation of a send that surely did not go out."""
    if send.consumed and send.consent_id is not None:
        # the inverse of push.consent.consume, only for the delivery that consumed it
        session.execute(update(Consent).where(
            Consent.id == send.consent_id, Consent.used_by == send.delivery_id,
            Consent.status == "used").values(status="available", used_by=None)
            .execution_options(synchronize_session=False))
    elif send.channel == Channel.CUSTOM:
        session.execute(update(Follower).where(
            Follower.openid == send.openid, Follower.cs_sent > 0).values(
            cs_sent=Follower.cs_sent - 1).execution_options(synchronize_session=False))


def after_failure(session: Session, send: Send, errcode: int | None,
                  payload: dict[str, Any], now: datetime) -> None:
    """A permanent refusal for this recipient: 43004 unfollowed, 43101 consent gone."""
    if errcode == NOT_FOLLOWING:
        session.execute(update(Follower).where(Follower.openid == send.openid).values(
            active=False, unfollowed_at=to_utc_naive(now))
            .execution_options(synchronize_session=False))
    elif errcode == REFUSED:
        template_id = (payload.get("template") or {}).get("template_id", "")
        revoke_all(session, send.openid, template_id, "43101", now)


def close_window(session: Session, openid: str) -> None:
    """45015/45047: WeChat says the customer-service window is closed; count it as full."""
    session.execute(update(Follower).where(Follower.openid == openid).values(
        cs_sent=CS_LIMIT).execution_options(synchronize_session=False))


def push_client(rt: Runtime) -> WeChatClient:
    """The process's sending client with the shared Redis token (one refresh for everyone).

    Over KeepAliveTransport (a worker's sends are CPU-bound, bench/push.py), or, when a
    proxy applies to the API, over requests as configured.
    """
    client = rt.clients.push
    if client is not None:
        return client
    with _CREATE:  # the sending threads of a batch all ask at once
        client = rt.clients.push
        if client is not None:
            return client
        wx = rt.settings.wechat
        timeout = (3.05, wx.api_timeout_seconds)
        transport: Transport = (
            RequestsTransport(pool_size=max(16, rt.settings.push.concurrency))
            if requests.utils.get_environ_proxies(wx.api_base_url) else KeepAliveTransport())
        client = create_shared_client(rt.redis, wx.api_base_url, wx.app_id, wx.app_secret,
                                      timeout=timeout, transport=transport)
        rt.clients.push = client
    return client


def perform(client: WeChatClient, send: Send, payload: dict[str, Any]) -> dict[str, Any]:
    """Call the WeChat API for one send (raises what the client raises)."""
    template = payload.get("template") or {}
    url = template.get("url") or None
    if send.channel == Channel.BIZSEND:
        return client.send_subscribe(send.openid, template["template_id"], template["data"],
                                     page=url)
    if send.channel == Channel.ONCE:
        once = payload["once"]
        return client.send_subscribe_once(send.openid, template["template_id"],
                                          send.scene or "0", once["title"], once["content"],
                                          url=url)
    if send.channel == Channel.CUSTOM:
        return client.send_custom_text(send.openid, payload["text"])
    return client.send_template(send.openid, template["template_id"], template["data"], url)


def judge(outcome: dict[str, Any] | BaseException) -> Verdict:
    """Classify an answer or exception (platform doc, "Error codes to classify")."""
    if isinstance(outcome, dict):
        msgid = outcome.get("msgid")
        return Verdict(Action.SENT, msgid=None if msgid is None else str(msgid))
    if isinstance(outcome, AmbiguousSend):  # no idempotency key: never blind-retry
        return Verdict(Action.UNKNOWN, reason="ambiguous", detail=outcome.detail)
    if isinstance(outcome, TransportError):  # surely not sent: safe to retry
        return Verdict(Action.RETRY, reason="transport", detail=str(outcome))
    if not isinstance(outcome, WeChatAPIError):
        return Verdict(Action.UNKNOWN, reason="internal_error", detail=repr(outcome))
    action, reason = ERROR_CLASSES.get(outcome.errcode, (Action.FAILED, "api_error"))
    return Verdict(action, outcome.errcode, reason, detail=outcome.errmsg)
