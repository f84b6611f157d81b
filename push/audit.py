"""The audit log: every staff action and campaign transition (who, when, what).

Times are stored naive UTC and shown in Asia/Shanghai with their offset (`shown_at`).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.clock import SHANGHAI, to_utc_naive
from bot.store.models import AuditEntry

SYSTEM = "system"  # automatic drafts, the push engine
BOOTSTRAP = "bootstrap"  # the first staff account creates itself


def audit(session: Session, actor: str, action: str, now: datetime,
          campaign_id: int | None = None, *, object_type: str | None = None,
          object_id: str | None = None, **detail) -> None:
    """Append an audit entry in the caller's transaction. A non-campaign object acted on is
    named by `object_type`/`object_id` (("staff", name), ("record", "faq:x"), ...)."""
    session.add(AuditEntry(at=to_utc_naive(now), actor=actor, action=action,
                           campaign_id=campaign_id, detail=detail,
                           object_type=object_type, object_id=object_id))


def trail(session: Session, campaign_id: int) -> list[AuditEntry]:
    """A campaign's audit entries, oldest first."""
    return list(session.scalars(select(AuditEntry).where(AuditEntry.campaign_id == campaign_id)
                                .order_by(AuditEntry.id)))


def shown_at(at: datetime) -> str:
    """An audit time (UTC, naive or aware) as Asia/Shanghai local time with its offset (+08:00)."""
    return at.replace(tzinfo=UTC).astimezone(SHANGHAI).isoformat(timespec="seconds")
