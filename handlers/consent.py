"""Subscribe-notification consent: the three platform events and the legacy redirect's step.

Platform rules relied on (wechat-platform.md, "Subscription consent"): a popup event lists
one or several templates, each accept or reject; the change event (only `reject`) comes
in <SubscribeMsgChangeEvent> or, per an old doc example, <SubscribeMsgPopupEvent> (the
parser accepts both); the sent event reports each bizsend's outcome, and 43101 /
"failed:user refuse" means the citizen refused. The parser has already normalised one
<List> versus several into `msg.consent`. Whatever arrives, the answer is `success`:
WeChat shows nothing for these events, and a 500 would only make it retry.

A popup's one-time grant is keyed by the event itself (CreateTime, a digest of its
entries, the entry's index): two popups of one citizen in the same second both count,
while a retry of the same event (same content; WeChat repeats it unchanged) counts once.
The webhook's dedupe key carries the same digest (bot.wechat.messages.consent_digest).

Accepting a template also subscribes the citizen to its topic, unless they already hold
a subscription to that topic (which may be narrowed to a district: it is not widened).
A reject revokes consent only; the topic subscription stays (customer-service messages
within the 48-hour window need no consent), and "退订" removes it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.router import SUCCESS, Context, Reply
from bot.store.queries import record_interaction
from bot.wechat.messages import ConsentItem, Message, consent_digest
from push import subscriptions
from push.consent import (
    REFUSED_ERRCODE,
    ConsentSource,
    decide_redirect,
    grant,
    redirect_decision,
    revoke_all,
    template_spec,
)

log = logging.getLogger("qzbot.consent")

POPUP = "subscribe_msg_popup_event"
CHANGE = "subscribe_msg_change_event"
SENT = "subscribe_msg_sent_event"
CONSENT_EVENTS = (POPUP, CHANGE, SENT)
_MAX_ITEMS = 20  # a popup lists at most a handful of templates; ignore absurd bodies


def ensure_topic(ctx: Context, openid: str, topic: str, source: str) -> bool:
    """Subscribe to `topic` unless some subscription to it is already held; True if added."""
    held = [s for s in subscriptions.list_for(ctx.session, openid) if s.topic == topic]
    if held:
        return False
    return subscriptions.subscribe(ctx.session, openid, topic, source=source,
                                   now=ctx.now).added


def _popup(msg: Message, index: int, item: ConsentItem, ctx: Context) -> str:
    """One popup entry: accept grants (and subscribes), reject revokes."""
    found = template_spec(ctx.settings, item.template_id)
    if found is None:
        log.warning("consent popup for unknown template %r oh=%s: ignored",
                    item.template_id[:64], ctx.openid_hash)
        return "unknown_template"
    topic, spec = found
    if item.status == "accept":
        long_term = bool(spec.get("long_term", False))
        # the scene names this very event: a retry (same content) finds its grant again,
        # another popup in the same second has other content and grants its own credit
        scene = f"popup:{msg.create_time}:{consent_digest(msg.consent)}:{index}"
        granted = grant(ctx.session, msg.from_user, item.template_id, long_term=long_term,
                        scene=scene, source=ConsentSource.POPUP.value, now=ctx.now)
        ensure_topic(ctx, msg.from_user, topic, "popup")
        return "granted" if granted else "already"
    if item.status == "reject":
        revoke_all(ctx.session, msg.from_user, item.template_id, "popup:reject", ctx.now)
        return "revoked"
    log.warning("consent popup with status %r oh=%s: ignored", item.status[:20],
                ctx.openid_hash)
    return "bad_status"


def _change(item: ConsentItem, msg: Message, ctx: Context) -> str:
    """The citizen turned a template off later (the platform sends only `reject`)."""
    if item.status == "reject":
        # revoke even for a template no longer configured: withdrawing is always safe
        revoke_all(ctx.session, msg.from_user, item.template_id, "change:reject", ctx.now)
        return "revoked"
    # an `accept` here is undocumented; granting on it could send without consent
    log.warning("consent change with status %r oh=%s: ignored", item.status[:20],
                ctx.openid_hash)
    return "ignored"


def _sent(item: ConsentItem, msg: Message, ctx: Context) -> str:
    """A bizsend's outcome: a refusal revokes; anything else is only recorded."""
    refused = (item.error_code == REFUSED_ERRCODE
               or "refuse" in item.error_status.lower())
    if refused:
        revoke_all(ctx.session, msg.from_user, item.template_id,
                   f"sent:{item.error_code or item.error_status[:30]}", ctx.now)
        return "revoked"
    if item.error_code not in ("", "0"):
        log.info("subscribe message failed oh=%s template=%s code=%s status=%s",
                 ctx.openid_hash, item.template_id[:64], item.error_code[:12],
                 item.error_status[:40])
        return "failed"
    return "delivered"


def handle_consent(msg: Message, ctx: Context) -> Reply:
    """The three consent events: update the ledger per entry, record the event, `success`."""
    items = msg.consent[:_MAX_ITEMS]
    outcomes = []
    for index, item in enumerate(items):
        if msg.event == POPUP:
            outcome = _popup(msg, index, item, ctx)
        elif msg.event == CHANGE:
            outcome = _change(item, msg, ctx)
        else:
            outcome = _sent(item, msg, ctx)
        outcomes.append({"template_id": item.template_id[:128], "status": item.status[:16],
                         "code": item.error_code[:12], "outcome": outcome})
    if not items:
        log.warning("%s without usable <List> entries oh=%s", msg.event, ctx.openid_hash)
    record_interaction(ctx.session, msg.from_user, msg.event[:32], {"items": outcomes},
                       ctx.now)
    ctx.notes["consent"] = [o["outcome"] for o in outcomes]
    return SUCCESS


# --- the legacy one-time subscription redirect (bot/subscribemsg.py verifies, this acts) ---


@dataclass(frozen=True)
class RedirectOutcome:
    """What a verified redirect did, and the page that says so (`refused`: answer 403)."""

    changed: bool
    title: str
    body: str
    refused: bool = False


def apply_redirect(ctx: Context, openid: str, template_id: str, scene: str,
                   action: str) -> RedirectOutcome | None:
    """Confirm: one credit for this scene and the topic; cancel: revoke. None = unknown template.

    A link decides once (push.consent.decide_redirect): its own decision again (a reload,
    a replay) changes nothing — no re-subscription after a later 退订, no revocation of
    consent given later — and the other action is refused.
    """
    found = template_spec(ctx.settings, template_id)
    if found is None:
        return None
    topic = found[0]
    decided = decide_redirect(ctx.session, openid, template_id, scene, action, ctx.now)
    if not decided and redirect_decision(ctx.session, openid, template_id, scene) != action:
        return RedirectOutcome(False, "链接已使用", "此订阅链接已用于另一项选择，不能更改。",
                               refused=True)
    if action == "confirm":
        if decided:
            ensure_topic(ctx, openid, topic, "redirect")
        body = (f"您已同意接收一条“{topic}”通知，有新消息时我们会通过公众号推送给您。"
                if decided else
                f"您已确认过接收“{topic}”通知，同一链接重复确认不会增加通知次数。")
        return RedirectOutcome(decided, "订阅成功", body)
    if decided:
        revoke_all(ctx.session, openid, template_id, "redirect:cancel", ctx.now)
    return RedirectOutcome(decided, "已取消",
                           f"您未同意接收“{topic}”订阅通知，此前的此类通知授权也已撤销。"
                           "如需重新订阅，可在公众号回复“订阅”。")
