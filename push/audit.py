"""The audit log: every staff action and campaign transition (who, when, what)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from bot.clock import to_utc_naive
from bot.store.models import AuditEntry

SYSTEM = "system"


def audit(session: Session, actor: str, action: str, now: datetime,
          campaign_id: int | None = None, **detail) -> None:
    """Append an audit entry in the caller's transaction."""
    session.add(AuditEntry(at=to_utc_naive(now), actor=actor, action=action,
                           campaign_id=campaign_id, detail=detail))
