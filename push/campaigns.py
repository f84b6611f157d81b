"""Campaigns: draft -> submitted -> approved | rejected -> scheduled -> sending -> done | cancelled.

先审查后发布 (细则 二(八)): a campaign goes out only after a second staff account approved it.
Only 主动公开 records can be attached (checked at creation and again at approval). Domain
functions never commit: the CLI (the edge) commits, then enqueues the fan-out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.clock import SHANGHAI, to_utc_naive
from bot.content.schema import NOTICE_KINDS
from bot.errors import CampaignInvalid, InvalidTransition, NotFound, PermissionDenied
from bot.settings import Settings
from bot.store.models import PUBLIC, Campaign, Record, Role, Staff, Topic
from bot.store.models import CampaignStatus as S
from bot.store.queries import visible_by_keys
from push.audit import audit
from push.render import render_payload
from push.staff import require_role

TOPIC_ALIASES = {"gov": Topic.GOV, "project": Topic.PROJECT, "travel": Topic.TRAVEL,
                 "policy": Topic.POLICY} | {t.value: t for t in Topic}
MAX_OPENIDS = 30000  # an explicit list becomes one SQL IN (...) (database parameter limits)
KIND_TOPIC = {"notice": Topic.TRAVEL, "project": Topic.PROJECT, "policy": Topic.GOV,
              "disclosure": Topic.GOV}


@dataclass
class Audience:
    """Who a campaign is for: a topic (with filters), an explicit list, or every follower."""

    topic: str | None = None
    district: str | None = None
    notice_kind: str | None = None
    openids: list[str] | None = None
    all_followers: bool = False


def get_campaign(session: Session, campaign_id: int, lock: bool = False) -> Campaign:
    """The campaign or NotFound."""
    stmt = select(Campaign).where(Campaign.id == campaign_id)
    campaign = session.scalar(stmt.with_for_update() if lock else stmt)
    if campaign is None:
        raise NotFound(f"no campaign {campaign_id}")
    return campaign


def resolve_records(session: Session, refs: list[str], now: datetime,
                    problems: list[str]) -> list[Record]:
    """Records for "kind:id" or bare ids; only visible (主动公开, not expired) ones pass."""
    found: list[Record] = []
    for ref in refs:
        kind, _, rid = ref.rpartition(":")
        stmt = select(Record).where(Record.rid == rid, Record.kind != "synonym")
        rows = list(session.scalars(stmt.where(Record.kind == kind) if kind else stmt))
        if not rows:
            problems.append(f"record {ref}: not found")
        elif len(rows) > 1:
            problems.append(f"record {ref}: ambiguous, write kind:id ("
                            + ", ".join(r.key for r in rows) + ")")
        elif not visible_by_keys(session, [rows[0].key], now):
            r = rows[0]
            why = (f"is {r.disclosure}: only {PUBLIC} records can be pushed"
                   if not r.public else "has ended (notice past ends_at)")
            problems.append(f"record {r.key} {why}")
        else:
            found.append(rows[0])
    if not refs:
        problems.append("attach at least one record (--record)")
    return found


def _check_audience(aud: Audience, settings: Settings, problems: list[str]) -> str | None:
    chosen = [aud.topic is not None, aud.openids is not None, aud.all_followers]
    if sum(chosen) != 1:
        problems.append("choose exactly one audience: --topic, --openids or --all")
    topic = None
    if aud.topic is not None:
        topic = TOPIC_ALIASES.get(aud.topic)
        if topic is None:
            problems.append(f"unknown topic {aud.topic!r} (one of "
                            + ", ".join(t.value for t in Topic) + ")")
    if aud.district and aud.district not in settings.bot.districts:
        problems.append(f"unknown district {aud.district!r}")
    if aud.notice_kind and aud.notice_kind not in NOTICE_KINDS:
        problems.append(f"unknown notice kind {aud.notice_kind!r} ({', '.join(NOTICE_KINDS)})")
    if aud.notice_kind and topic is not Topic.TRAVEL:
        problems.append("--kind filters 出行资讯 only")
    if aud.openids is not None and not aud.openids:
        problems.append("the openid list is empty")
    if aud.openids is not None and len(aud.openids) > MAX_OPENIDS:
        problems.append(f"the openid list has {len(aud.openids)} entries (at most {MAX_OPENIDS}; "
                        "use a topic or --all for larger audiences)")
    return topic.value if topic else None


def create_campaign(session: Session, settings: Settings, now: datetime, *, actor: str,
                    refs: list[str], audience: Audience, urgent: bool = False,
                    title: str | None = None, overrides: dict[str, str] | None = None,
                    template_id: str | None = None, send_at: datetime | None = None,
                    truncate: bool | None = None) -> Campaign:
    """Validate everything and create a draft; CampaignInvalid lists every problem."""
    problems: list[str] = []
    topic = _check_audience(audience, settings, problems)
    records = resolve_records(session, refs, now, problems)
    if urgent and any(r.kind != "notice" for r in records):
        problems.append("only travel notices can be urgent (they may go out in quiet hours)")
    if send_at is not None and to_utc_naive(send_at) <= to_utc_naive(now):
        problems.append(f"--at {send_at.isoformat()} is in the past")
    template_topic = topic or (KIND_TOPIC.get(records[0].kind).value
                               if records and records[0].kind in KIND_TOPIC else None)
    template = settings.push.templates.get(template_topic) if template_topic else None
    if template_id is not None:
        known = {spec["template_id"]: spec for spec in settings.push.templates.values()}
        template = known.get(template_id)
        if template is None:
            problems.append(f"unknown template {template_id!r} (configured: "
                            + ", ".join(sorted(known)) + ")")
    payload = {}
    if records:
        title = title or (records[0].title if len(records) == 1
                          else f"{records[0].title}等{len(records)}条")
        payload = render_payload(records, title, template, overrides or {},
                                 settings.push.truncate_fields if truncate is None else truncate,
                                 now, problems)
    if problems:
        raise CampaignInvalid(problems)
    stamp = to_utc_naive(now)
    campaign = Campaign(
        title=title[:200], topic=topic, district=audience.district or None,
        notice_kind=audience.notice_kind or None, openids=audience.openids,
        all_followers=audience.all_followers, record_keys=[r.key for r in records],
        urgent=urgent, status=S.DRAFT.value, author=actor, payload=payload,
        send_at=to_utc_naive(send_at) if send_at else None, created_at=stamp, updated_at=stamp)
    session.add(campaign)
    session.flush()
    campaign.audience_preview = audience_size(session, campaign)
    audit(session, actor, "create", now, campaign.id, records=campaign.record_keys,
          topic=topic, audience=campaign.audience_preview)
    return campaign


def audience_size(session: Session, campaign: Campaign) -> int:
    """How many followers the campaign would reach now."""
    from push.audience import preview

    return preview(session, campaign)


def _transition(session: Session, campaign: Campaign, actor: str, action: str,
                allowed: tuple[S, ...], target: S, now: datetime, **detail) -> None:
    if campaign.status not in {s.value for s in allowed}:
        raise InvalidTransition(f"campaign {campaign.id} is {campaign.status}; cannot {action} "
                                f"(allowed from: {', '.join(s.value for s in allowed)})")
    before = campaign.status
    campaign.status = target.value
    campaign.updated_at = to_utc_naive(now)
    audit(session, actor, action, now, campaign.id, before=before, after=target.value, **detail)


def submit(session: Session, campaign: Campaign, staff: Staff, now: datetime) -> None:
    """Hand a draft to review; its audience must not be empty."""
    require_role(staff, Role.EDITOR)
    _require_audience(session, campaign)
    _transition(session, campaign, staff.name, "submit", (S.DRAFT,), S.SUBMITTED, now,
                audience=campaign.audience_preview)


def _require_audience(session: Session, campaign: Campaign) -> None:
    campaign.audience_preview = audience_size(session, campaign)
    if campaign.audience_preview == 0:
        raise CampaignInvalid([f"campaign {campaign.id}: the audience is empty"])


def approve(session: Session, settings: Settings, campaign: Campaign, staff: Staff,
            now: datetime) -> datetime | None:
    """Approve (a different account than the author); returns when to fan out (None = now)."""
    require_role(staff, Role.REVIEWER)
    if staff.name == campaign.author:
        raise PermissionDenied(f"{staff.name} wrote campaign {campaign.id}; "
                               "another staff account must approve it (先审查后发布)")
    problems: list[str] = []
    resolve_records(session, campaign.record_keys, now, problems)  # still 主动公开?
    if problems:
        raise CampaignInvalid(problems)
    _require_audience(session, campaign)
    due = when_due(settings, campaign, now)
    target = S.SCHEDULED if due is not None else S.APPROVED
    _transition(session, campaign, staff.name, "approve", (S.SUBMITTED,), target, now,
                audience=campaign.audience_preview, due=due.isoformat() if due else "now")
    campaign.approver = staff.name
    if due is not None:
        campaign.send_at = to_utc_naive(due)
    return due


def when_due(settings: Settings, campaign: Campaign, now: datetime) -> datetime | None:
    """None to send now; else the UTC time: the scheduled time, or the end of quiet hours."""
    at = campaign.send_at
    base = now if at is None or to_utc_naive(now) >= at else at.replace(tzinfo=UTC)
    if not campaign.urgent:
        base = after_quiet_hours(settings, base)
    return None if to_utc_naive(base) <= to_utc_naive(now) else base


def after_quiet_hours(settings: Settings, moment: datetime) -> datetime:
    """`moment`, or the end of the quiet hours if it falls inside them (Asia/Shanghai)."""
    local = moment.astimezone(SHANGHAI)
    start = time.fromisoformat(settings.push.quiet_start)
    end = time.fromisoformat(settings.push.quiet_end)
    t = local.time()
    quiet = (start <= t or t < end) if start > end else (start <= t < end)
    if not quiet:
        return moment
    day = local.date() + timedelta(days=1) if (start > end and t >= start) else local.date()
    return datetime.combine(day, end, tzinfo=SHANGHAI).astimezone(moment.tzinfo)


def reject(session: Session, campaign: Campaign, staff: Staff, reason: str,
           now: datetime) -> None:
    """Send a submitted campaign back with a reason."""
    require_role(staff, Role.REVIEWER)
    if not reason.strip():
        raise CampaignInvalid(["a rejection needs a reason (--reason)"])
    _transition(session, campaign, staff.name, "reject", (S.SUBMITTED,), S.REJECTED, now,
                reason=reason)
    campaign.reject_reason = reason


def schedule(session: Session, settings: Settings, campaign: Campaign, staff: Staff,
             at: datetime, now: datetime) -> datetime | None:
    """Set the send time: before approval it is kept; after approval it reschedules."""
    if to_utc_naive(at) <= to_utc_naive(now):
        raise CampaignInvalid([f"--at {at.isoformat()} is in the past"])
    if campaign.status in (S.DRAFT.value, S.SUBMITTED.value):
        require_role(staff, Role.EDITOR)
        campaign.send_at = to_utc_naive(at)
        audit(session, staff.name, "schedule", now, campaign.id, at=at.isoformat())
        return None
    require_role(staff, Role.REVIEWER)
    campaign.send_at = to_utc_naive(at)
    due = when_due(settings, campaign, now)
    _transition(session, campaign, staff.name, "schedule", (S.APPROVED, S.SCHEDULED),
                S.SCHEDULED, now, at=at.isoformat())
    return due


def cancel(session: Session, campaign: Campaign, staff: Staff, now: datetime) -> None:
    """Cancel; a campaign already sending stops at its next batch group."""
    require_role(staff, Role.EDITOR, Role.REVIEWER)
    _transition(session, campaign, staff.name, "cancel", (S.DRAFT, S.SUBMITTED, S.APPROVED,
                                                          S.SCHEDULED, S.SENDING),
                S.CANCELLED, now)
