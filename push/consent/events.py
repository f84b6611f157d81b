"""The three platform consent events, one entry at a time: popup, change, sent.

Platform rules relied on (wechat-platform.md, "Subscription consent"): a popup lists one
or several templates, each accept or reject; the change event only ever says `reject`;
the sent event reports each bizsend's outcome, and 43101 / "failed:user refuse" means the
citizen refused. Accepting a template also subscribes the citizen to its topic, unless
they already hold a subscription to that topic (which may be narrowed to a district: it
is not widened). A reject revokes consent only; the topic subscription stays
(customer-service messages within the 48-hour window need no consent), and "退订"
removes it. Each function returns the entry's outcome word, recorded by the caller.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.orm import Session

from bot.runtime import openid_hash
from bot.settings import Settings
from push import subscriptions
from push.consent.ledger import REFUSED_ERRCODE, ConsentSource, grant, revoke_all, template_spec

log = logging.getLogger("qzbot.consent")


def ensure_topic(session: Session, openid: str, topic: str, source: str,
                 now: datetime) -> bool:
    """Subscribe to `topic` unless some subscription to it is already held; True if added."""
    held = [s for s in subscriptions.list_for(session, openid) if s.topic == topic]
    if held:
        return False
    return subscriptions.subscribe(session, openid, topic, source=source, now=now).added


def popup_entry(session: Session, settings: Settings, openid: str, template_id: str,
                status: str, scene: str, now: datetime) -> str:
    """One popup entry: accept grants under `scene` (and subscribes), reject revokes."""
    found = template_spec(settings, template_id)
    if found is None:
        log.warning("consent popup for unknown template %r oh=%s: ignored",
                    template_id[:64], openid_hash(openid))
        return "unknown_template"
    topic, spec = found
    if status == "accept":
        long_term = bool(spec.get("long_term", False))
        granted = grant(session, openid, template_id, long_term=long_term, scene=scene,
                        source=ConsentSource.POPUP.value, now=now)
        ensure_topic(session, openid, topic, "popup", now)
        return "granted" if granted else "already"
    if status == "reject":
        revoke_all(session, openid, template_id, "popup:reject", now)
        return "revoked"
    log.warning("consent popup with status %r oh=%s: ignored", status[:20],
                openid_hash(openid))
    return "bad_status"


def change_entry(session: Session, openid: str, template_id: str, status: str,
                 now: datetime) -> str:
    """The citizen turned a template off later (the platform sends only `reject`)."""
    if status == "reject":
        # revoke even for a template no longer configured: withdrawing is always safe
        revoke_all(session, openid, template_id, "change:reject", now)
        return "revoked"
    # an `accept` here is undocumented; granting on it could send without consent
    log.warning("consent change with status %r oh=%s: ignored", status[:20],
                openid_hash(openid))
    return "ignored"


def sent_entry(session: Session, openid: str, template_id: str, error_code: str,
               error_status: str, now: datetime) -> str:
    """A bizsend's outcome: a refusal revokes; anything else is only recorded."""
    refused = error_code == REFUSED_ERRCODE or "refuse" in error_status.lower()
    if refused:
        revoke_all(session, openid, template_id, f"sent:{error_code or error_status[:30]}",
                   now)
        return "revoked"
    if error_code not in ("", "0"):
        log.info("subscribe message failed oh=%s template=%s code=%s status=%s",
                 openid_hash(openid), template_id[:64], error_code[:12], error_status[:40])
        return "failed"
    return "delivered"
