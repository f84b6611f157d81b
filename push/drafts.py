"""Automatic drafts: a new or changed 主动公开 record becomes a draft campaign for its topic.

Drafts are written by the "system" actor (push.audit.SYSTEM, a name no staff account can
take) and still need a staff member to submit them and another to approve them (先审查后发布):
the approver must differ from the submitter, so a system draft is never one person's decision
(push.campaigns.approve). Which topic a record goes to is bot.vocab.record_topic; guides,
hotlines and FAQs have none: no draft. Disclosure entries of market-supervision categories
and records flagged as 便民惠企 measures go to 市场监管动态 / 便民惠企措施 (no district).
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.errors import CampaignInvalid
from bot.settings import Settings
from bot.store.models import Record
from bot.vocab import Topic, topic_of_record
from push.audit import SYSTEM
from push.campaigns import Audience, create_campaign

log = logging.getLogger("qzbot.drafts")


def _topic_of(record: Record) -> tuple[str, str | None, str | None, bool] | None:
    """(topic, district, notice kind, urgent) a record's draft goes to, or None."""
    topic = topic_of_record(record.kind, record.data)
    if topic is None:
        return None
    if topic is Topic.TRAVEL:
        return topic.value, record.district, record.notice_kind, record.urgent
    district = record.district if topic is Topic.PROJECT else None
    return topic.value, district, None, False


def drafts_for_changes(session: Session, settings: Settings, now: datetime,
                       changed_keys: list[str]) -> list[int]:
    """Create one draft per (topic, district, kind, urgency) group of changed records."""
    groups: dict[tuple, list[str]] = {}
    for key in changed_keys:
        kind, rid = key.split(":", 1)
        record = session.scalar(select(Record).where(Record.kind == kind, Record.rid == rid))
        target = _topic_of(record) if record is not None else None
        if target is not None:
            groups.setdefault(target, []).append(key)
    created = []
    for (topic, district, notice_kind, urgent), keys in groups.items():
        audience = Audience(topic=topic, district=district, notice_kind=notice_kind)
        try:
            campaign = create_campaign(session, settings, now, actor=SYSTEM, refs=keys,
                                       audience=audience, urgent=urgent, truncate=True)
        except CampaignInvalid as exc:
            log.warning("no automatic draft for %s: %s", ", ".join(keys), exc)
            continue
        created.append(campaign.id)
    return created
