"""The legacy one-time subscription link's redirect, acted on once it is verified.

bot/subscribemsg.py verifies the redirect (the `reserved` token) and renders the page;
this decides it. A link decides once (ledger.decide_redirect): its own decision again (a
reload, a replay) changes nothing — no re-subscription after a later 退订, no revocation
of consent given later — and the other action is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from bot.settings import Settings
from push.consent.events import ensure_topic
from push.consent.ledger import decide_redirect, redirect_decision, revoke_all, template_spec


@dataclass(frozen=True)
class RedirectOutcome:
    """What a verified redirect did: its topic, whether it changed anything, or `refused`
    (the link already decided the other action)."""

    topic: str
    action: str
    changed: bool
    refused: bool = False


def apply_redirect(session: Session, settings: Settings, openid: str, template_id: str,
                   scene: str, action: str, now: datetime) -> RedirectOutcome | None:
    """Confirm: one credit for this scene and the topic; cancel: revoke. None = unknown template."""
    found = template_spec(settings, template_id)
    if found is None:
        return None
    topic = found[0]
    decided = decide_redirect(session, openid, template_id, scene, action, now)
    if not decided and redirect_decision(session, openid, template_id, scene) != action:
        return RedirectOutcome(topic, action, changed=False, refused=True)
    if action == "confirm":
        if decided:
            ensure_topic(session, openid, topic, "redirect", now)
        return RedirectOutcome(topic, action, changed=decided)
    if decided:
        revoke_all(session, openid, template_id, "redirect:cancel", now)
    return RedirectOutcome(topic, action, changed=decided)
