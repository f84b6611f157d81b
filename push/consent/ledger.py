"""The consent ledger: who allowed which subscribe-notification template, and how often.

Platform rules relied on (wechat-platform.md, "Subscription consent"): one-time consent
allows one notification; long-term consent allows many; repeated confirmations under one
scene do not add up, different scenes do (legacy 一次性订阅: "同一scene场景值下的多次授权
不累积下发权限…若要订阅多条，需要不同scene场景值"); errcode 43101 means the citizen refused
or has no consent left, so every grant of that template is revoked.

Rows: long-term consent is one row per (openid, template) with scene "long_term"; each
one-time grant is a row with its own scene that a send consumes. Domain functions here
never commit: the caller (view, handler edge, job) owns the transaction.

A legacy link's scene is decided once: its confirm is a `redirect` row, its cancel a
revoked `redirect_cancel` row (unique per openid, template and scene), so a captured
redirect replayed with the other action, or again later, finds the decision and changes
nothing (`decide_redirect`).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from bot.clock import to_utc_naive
from bot.runtime import openid_hash
from bot.settings import Settings
from bot.store.models import Consent

log = logging.getLogger("qzbot.consent")

LONG_TERM_SCENE = "long_term"
# Legacy 一次性订阅 scenes are integers 0..10000 (platform rule); we hand out 1..10000.
MAX_REDIRECT_SCENE = 10000
REFUSED_ERRCODE = "43101"


class ConsentStatus(StrEnum):
    """A grant's state: usable, consumed by a send, or withdrawn by the citizen."""

    AVAILABLE = "available"
    USED = "used"
    REVOKED = "revoked"


class ConsentSource(StrEnum):
    """Where a grant came from."""

    POPUP = "popup"  # subscribe_msg_popup_event
    REDIRECT = "redirect"  # legacy 一次性订阅 confirmation page: confirmed
    REDIRECT_CANCEL = "redirect_cancel"  # the same page: cancelled (a revoked marker row)


REDIRECT_SOURCES = (ConsentSource.REDIRECT.value, ConsentSource.REDIRECT_CANCEL.value)


def template_spec(settings: Settings, template_id: str) -> tuple[str, dict[str, Any]] | None:
    """(topic, template spec) of a configured template id, or None when unknown."""
    if not template_id:
        return None
    for topic, spec in settings.push.templates.items():
        if isinstance(spec, dict) and spec.get("template_id") == template_id:
            return topic, spec
    return None


def template_topic(settings: Settings, template_id: str) -> str | None:
    """The topic whose configured template is `template_id`, or None when unknown."""
    found = template_spec(settings, template_id)
    return found[0] if found else None


def topic_template(settings: Settings, topic: str) -> dict[str, Any] | None:
    """The template spec configured for a topic, or None."""
    spec = settings.push.templates.get(topic)
    return spec if isinstance(spec, dict) and spec.get("template_id") else None


def is_long_term(settings: Settings, template_id: str) -> bool:
    """True when the template is configured for long-term consent."""
    found = template_spec(settings, template_id)
    return bool(found and found[1].get("long_term", False))


def _find(session: Session, openid: str, template_id: str, scene: str) -> Consent | None:
    return session.scalar(select(Consent).where(Consent.openid == openid,
                                                Consent.template_id == template_id,
                                                Consent.scene == scene))


def grant(session: Session, openid: str, template_id: str, *, long_term: bool, scene: str,
          source: str, now: datetime) -> bool:
    """Record consent; True when a credit was added or re-activated, False when it already was.

    Idempotent per (openid, template, scene): a one-time row under a scene already seen
    (available, used or revoked) adds nothing, so a replayed confirmation cannot mint
    credits. A long-term grant re-activates a revoked long-term row.
    """
    scene = LONG_TERM_SCENE if long_term else scene
    if not scene or (not long_term and scene == LONG_TERM_SCENE):
        raise ValueError("a one-time grant needs its own scene")
    stamp = to_utc_naive(now)
    existing = _find(session, openid, template_id, scene)
    if existing is None:
        try:
            with session.begin_nested():
                session.add(Consent(openid=openid, template_id=template_id, scene=scene,
                                    long_term=long_term, status=ConsentStatus.AVAILABLE.value,
                                    source=source, created_at=stamp, updated_at=stamp))
        except IntegrityError:  # a concurrent delivery of the same grant won the race
            existing = _find(session, openid, template_id, scene)
        else:
            log.info("consent granted oh=%s template=%s scene=%s long_term=%s source=%s",
                     openid_hash(openid), template_id, scene, long_term, source)
            return True
    if existing is not None and long_term and existing.status == ConsentStatus.REVOKED.value:
        existing.status = ConsentStatus.AVAILABLE.value
        existing.source = source
        existing.updated_at = stamp
        log.info("long-term consent re-activated oh=%s template=%s", openid_hash(openid),
                 template_id)
        return True
    return False


def available_consent(session: Session, openid: str, template_id: str) -> Consent | None:
    """The grant a send should use: long-term first, then the oldest available one-time."""
    stmt = (select(Consent)
            .where(Consent.openid == openid, Consent.template_id == template_id,
                   Consent.status == ConsentStatus.AVAILABLE.value)
            .order_by(Consent.long_term.desc(), Consent.created_at, Consent.id)
            .limit(1))
    return session.scalar(stmt)


def consume(session: Session, consent: Consent, delivery_id: int | None,
            now: datetime | None = None) -> bool:
    """Use a grant for one send: one-time rows flip to used atomically; long-term is kept.

    Returns False when another worker consumed (or the citizen revoked) it first: the
    UPDATE only matches a still-available row, and its rowcount decides.
    """
    if consent.long_term:  # never consumed; re-read so a revocation since lookup counts
        status = session.scalar(select(Consent.status).where(Consent.id == consent.id))
        return status == ConsentStatus.AVAILABLE.value
    stamp = to_utc_naive(now or datetime.now(UTC))
    result = session.execute(
        update(Consent)
        .where(Consent.id == consent.id, Consent.status == ConsentStatus.AVAILABLE.value)
        .values(status=ConsentStatus.USED.value, used_by=delivery_id, updated_at=stamp)
        .execution_options(synchronize_session=False))
    if result.rowcount != 1:
        return False
    # reflect the UPDATE on the loaded object without making it dirty
    set_committed_value(consent, "status", ConsentStatus.USED.value)
    set_committed_value(consent, "used_by", delivery_id)
    set_committed_value(consent, "updated_at", stamp)
    return True


def revoke_all(session: Session, openid: str, template_id: str, reason: str,
               now: datetime) -> int:
    """Withdraw every available grant (long-term and one-time) of a template; returns how many."""
    result = session.execute(
        update(Consent)
        .where(Consent.openid == openid, Consent.template_id == template_id,
               Consent.status == ConsentStatus.AVAILABLE.value)
        .values(status=ConsentStatus.REVOKED.value, updated_at=to_utc_naive(now))
        .execution_options(synchronize_session="fetch"))
    if result.rowcount:
        log.info("consent revoked oh=%s template=%s n=%d reason=%s", openid_hash(openid),
                 template_id, result.rowcount, reason[:60])
    return result.rowcount


def redirect_scene(session: Session, openid: str, template_id: str) -> str | None:
    """A legacy-link scene this citizen has not used for this template (None when exhausted).

    A scene already confirmed never grants again (see `grant`), so each new link gets a
    fresh scene; links shown again before a confirmation share one, which cannot add up.
    """
    taken = set(session.scalars(select(Consent.scene).where(
        Consent.openid == openid, Consent.template_id == template_id,
        Consent.source.in_(REDIRECT_SOURCES))))
    for number in range(1, MAX_REDIRECT_SCENE + 1):
        if str(number) not in taken:
            return str(number)
    return None


def redirect_decision(session: Session, openid: str, template_id: str,
                      scene: str) -> str | None:
    """The action ("confirm" / "cancel") already taken through this link's scene, or None."""
    row = _find(session, openid, template_id, scene)
    if row is None:
        return None
    return "cancel" if row.source == ConsentSource.REDIRECT_CANCEL.value else "confirm"


def decide_redirect(session: Session, openid: str, template_id: str, scene: str, action: str,
                    now: datetime) -> bool:
    """Record a link's decision once; True when this call made it (and may act on it).

    confirm: a one-time credit under the scene; cancel: a revoked marker under the scene,
    which no later confirm can turn into a credit. A concurrent or earlier decision of the
    same scene wins (unique openid, template, scene); the caller re-reads it.
    """
    if action == "confirm":
        return grant(session, openid, template_id, long_term=False, scene=scene,
                     source=ConsentSource.REDIRECT.value, now=now)
    stamp = to_utc_naive(now)
    if _find(session, openid, template_id, scene) is not None:
        return False
    try:
        with session.begin_nested():
            session.add(Consent(openid=openid, template_id=template_id, scene=scene,
                                long_term=False, status=ConsentStatus.REVOKED.value,
                                source=ConsentSource.REDIRECT_CANCEL.value, created_at=stamp,
                                updated_at=stamp))
    except IntegrityError:  # the other action (or a twin request) decided this scene first
        return False
    return True


def ledger_counts(session: Session) -> dict[str, dict[str, int]]:
    """Per template: available long-term and one-time grants, used and revoked rows."""
    stmt = (select(Consent.template_id, Consent.long_term, Consent.status, func.count())
            .group_by(Consent.template_id, Consent.long_term, Consent.status))
    counts: dict[str, dict[str, int]] = {}
    for template_id, long_term, status, n in session.execute(stmt):
        row = counts.setdefault(template_id,
                                {"long_term": 0, "one_time": 0, "used": 0, "revoked": 0})
        if status == ConsentStatus.AVAILABLE.value:
            row["long_term" if long_term else "one_time"] += n
        elif status in row:
            row[status] += n
    return counts
