"""Subscribe-notification consent events: the chat adapter over push.consent.

Platform rules relied on (wechat-platform.md, "Subscription consent"): the change event
(only `reject`) comes in <SubscribeMsgChangeEvent> or, per an old doc example,
<SubscribeMsgPopupEvent> (the parser accepts both). The parser has already normalised one
<List> versus several into `msg.consent`. Whatever arrives, the answer is `success`:
WeChat shows nothing for these events, and a 500 would only make it retry.

A popup's one-time grant is keyed by the event itself (CreateTime, a digest of its
entries, the entry's index): two popups of one citizen in the same second both count,
while a retry of the same event (same content; WeChat repeats it unchanged) counts once.
The webhook's dedupe key carries the same digest (bot.wechat.messages.consent_digest).
What each entry does to the ledger and the subscriptions is push.consent.events.
"""

from __future__ import annotations

import logging

from bot.router import SUCCESS, Context, Reply
from bot.store.queries import record_interaction
from bot.wechat.messages import ConsentItem, Message, consent_digest
from push.consent import change_entry, popup_entry, sent_entry

log = logging.getLogger("qzbot.consent")

POPUP = "subscribe_msg_popup_event"
CHANGE = "subscribe_msg_change_event"
SENT = "subscribe_msg_sent_event"
CONSENT_EVENTS = (POPUP, CHANGE, SENT)
_MAX_ITEMS = 20  # a popup lists at most a handful of templates; ignore absurd bodies


def _entry(msg: Message, index: int, item: ConsentItem, ctx: Context) -> str:
    """One entry of a consent event, handed to the domain; returns its outcome word."""
    if msg.event == POPUP:
        # the scene names this very event: a retry (same content) finds its grant again,
        # another popup in the same second has other content and grants its own credit
        scene = f"popup:{msg.create_time}:{consent_digest(msg.consent)}:{index}"
        return popup_entry(ctx.session, ctx.settings, msg.from_user, item.template_id,
                           item.status, scene, ctx.now)
    if msg.event == CHANGE:
        return change_entry(ctx.session, msg.from_user, item.template_id, item.status,
                            ctx.now)
    return sent_entry(ctx.session, msg.from_user, item.template_id, item.error_code,
                      item.error_status, ctx.now)


def handle_consent(msg: Message, ctx: Context) -> Reply:
    """The three consent events: update the ledger per entry, record the event, `success`."""
    items = msg.consent[:_MAX_ITEMS]
    outcomes = []
    for index, item in enumerate(items):
        outcome = _entry(msg, index, item, ctx)
        outcomes.append({"template_id": item.template_id[:128], "status": item.status[:16],
                         "code": item.error_code[:12], "outcome": outcome})
    if not items:
        log.warning("%s without usable <List> entries oh=%s", msg.event, ctx.openid_hash)
    record_interaction(ctx.session, msg.from_user, msg.event[:32], {"items": outcomes},
                       ctx.now)
    ctx.notes["consent"] = [o["outcome"] for o in outcomes]
    return SUCCESS

