"""Subscribe-notification consent, the one owner of it: the ledger and what changes it.

- `ledger`: who allowed which template, how often; grant, consume, revoke (push sends
  consume it; the platform's 43101 revokes it).
- `events`: the three platform consent events (popup, change, sent), entry by entry.
- `redirect`: the legacy one-time link's verified redirect, decided once per scene.

Together with push.subscriptions (topics a citizen follows) this is the whole domain;
handlers/consent.py, handlers/subscription.py and the bot/subscribemsg.py view are thin
adapters over it. Domain functions never commit: the edge owns the transaction.
"""

from push.consent.events import change_entry, ensure_topic, popup_entry, sent_entry
from push.consent.ledger import (
    LONG_TERM_SCENE,
    MAX_REDIRECT_SCENE,
    REDIRECT_SOURCES,
    REFUSED_ERRCODE,
    ConsentSource,
    ConsentStatus,
    available_consent,
    consume,
    decide_redirect,
    grant,
    is_long_term,
    ledger_counts,
    redirect_decision,
    redirect_scene,
    revoke_all,
    template_spec,
    template_topic,
    topic_template,
)
from push.consent.redirect import RedirectOutcome, apply_redirect

__all__ = [
    "LONG_TERM_SCENE", "MAX_REDIRECT_SCENE", "REDIRECT_SOURCES", "REFUSED_ERRCODE",
    "ConsentSource", "ConsentStatus", "RedirectOutcome", "apply_redirect", "available_consent",
    "change_entry", "consume", "decide_redirect", "ensure_topic", "grant", "is_long_term",
    "ledger_counts", "popup_entry", "redirect_decision", "redirect_scene", "revoke_all",
    "sent_entry", "template_spec", "template_topic", "topic_template",
]
