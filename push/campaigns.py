"""Campaigns: draft -> submitted -> approved | rejected -> scheduled -> sending -> done | cancelled.

先审查后发布 (细则 二(八)): a campaign goes out only after a second staff account approved it:
the approver differs from the author, the submitter and everyone who edited it (admins too;
system-made drafts are "written" by the system, so the submitter is the first person). What
the reviewer approves is hashed (push/review.py); a change afterwards sends it back to review.
Only 主动公开 records can be attached (checked at creation and again at approval). Non-urgent
sends never start in quiet hours ([push] quiet_start/quiet_end; content-pack.md: only urgent
notices may be pushed then), whether the time came from approval or from a reschedule.
Domain functions never commit: the CLI (the edge) commits, then enqueues.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.clock import SHANGHAI, to_utc_naive
from bot.errors import CampaignInvalid, InvalidTransition, NotFound, PermissionDenied
from bot.settings import Settings
from bot.store.models import PUBLIC, AuditEntry, Campaign, Record, Role, Staff, Topic
from bot.store.models import CampaignStatus as S
from bot.store.queries import visible_by_keys
from bot.vocab import NOTICE_KINDS, topic_named, topic_of_record
from push.audience import preview
from push.audit import audit
from push.render import render_payload
from push.review import (
    RENDER_KEY,
    record_digests,
    rerender,
    review_hash,
    seal,
    send_back,
    what_changed,
)
from push.review import render_inputs as _render_inputs
from push.review import review_components as _components
from push.staff import normalise_name, require_role

MAX_OPENIDS = 30000  # an explicit list becomes one SQL IN (...) (database parameter limits)


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
        topic = topic_named(aud.topic)
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


@dataclass(frozen=True)
class RenderedDraft:
    """What a draft campaign stores for its inputs (see `render_draft`)."""

    title: str  # as stored (at most 200 characters)
    payload: dict[str, Any]  # per channel as the workers send it, + the render inputs
    template: dict[str, Any] | None  # the [push.templates] entry used, if any


def render_draft(settings: Settings, now: datetime, records: list[Record], *,
                 topic: str | None, title: str | None = None,
                 overrides: dict[str, str] | None = None, template_id: str | None = None,
                 truncate: bool | None = None, problems: list[str]) -> RenderedDraft:
    """THE rendering of a new draft: the template (the audience topic's, else the first
    record's topic's, or `template_id`), the default title ("<first title>" or "<first
    title>等N条") and the payload by push.render.render_payload. `create_campaign` stores it
    and push.actions.preview shows it, so the preview is what create stores by construction.
    Problems (unknown template, field limits) are appended to `problems`."""
    first_topic = topic_of_record(records[0].kind, records[0].data) if records else None
    template_topic = topic or (first_topic.value if first_topic else None)
    template = settings.push.templates.get(template_topic) if template_topic else None
    if template_id is not None:
        known = {spec["template_id"]: spec for spec in settings.push.templates.values()}
        template = known.get(template_id)
        if template is None:
            problems.append(f"unknown template {template_id!r} (configured: "
                            + ", ".join(sorted(known)) + ")")
    if not records:
        return RenderedDraft((title or "")[:200], {}, template)
    title = title or (records[0].title if len(records) == 1
                      else f"{records[0].title}等{len(records)}条")
    fit = settings.push.truncate_fields if truncate is None else truncate
    payload = render_payload(records, title, template, overrides or {}, fit, now, problems)
    payload[RENDER_KEY] = _render_inputs(title, overrides or {}, template, fit, records)
    return RenderedDraft(title[:200], payload, template)


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
    draft = render_draft(settings, now, records, topic=topic, title=title, overrides=overrides,
                         template_id=template_id, truncate=truncate, problems=problems)
    if problems:
        raise CampaignInvalid(problems)
    stamp = to_utc_naive(now)
    campaign = Campaign(
        title=draft.title, topic=topic, district=audience.district or None,
        notice_kind=audience.notice_kind or None, openids=audience.openids,
        all_followers=audience.all_followers, record_keys=[r.key for r in records],
        urgent=urgent, status=S.DRAFT.value, author=actor, payload=draft.payload,
        send_at=to_utc_naive(send_at) if send_at else None, created_at=stamp, updated_at=stamp)
    session.add(campaign)
    session.flush()
    campaign.audience_preview = audience_size(session, campaign)
    audit(session, actor, "create", now, campaign.id, records=campaign.record_keys,
          topic=topic, audience=campaign.audience_preview)
    return campaign


def stale_records(session: Session, campaign: Campaign) -> list[str]:
    """Attached records whose text changed since the payload was rendered."""
    rendered = ((campaign.payload or {}).get(RENDER_KEY) or {}).get("digests")
    if rendered is None:
        return []  # rendered before digests were kept: nothing to compare with
    now = record_digests(session, campaign)
    return [key for key in campaign.record_keys if rendered.get(key) != now.get(key)]


def audience_size(session: Session, campaign: Campaign) -> int:
    """How many followers the campaign would reach now."""
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


def submit(session: Session, campaign: Campaign, staff: Staff, now: datetime,
           settings: Settings | None = None) -> None:
    """Hand a draft (or a rejected campaign) to review; its audience must not be empty.

    A payload rendered from a record that has changed since is rendered again first (needs
    `settings`), so the reviewer sees the current text.
    """
    require_role(staff, Role.EDITOR)
    if campaign.status not in (S.DRAFT.value, S.REJECTED.value):
        raise InvalidTransition(f"campaign {campaign.id} is {campaign.status}; cannot submit "
                                "(allowed from: draft, rejected)")
    stale = stale_records(session, campaign)
    if stale:
        problems = (rerender(session, settings, campaign, now) if settings is not None
                    else [f"record {key} changed since the message was rendered" for key in stale])
        if problems:
            raise CampaignInvalid(problems)
    _require_audience(session, campaign)
    _transition(session, campaign, staff.name, "submit", (S.DRAFT, S.REJECTED), S.SUBMITTED,
                now, audience=campaign.audience_preview, rerendered=stale)
    campaign.submitter = staff.name
    campaign.reject_reason = None


def _require_audience(session: Session, campaign: Campaign) -> None:
    campaign.audience_preview = audience_size(session, campaign)
    if campaign.audience_preview == 0:
        raise CampaignInvalid([f"campaign {campaign.id}: the audience is empty"])


def approve(session: Session, settings: Settings, campaign: Campaign, staff: Staff,
            now: datetime, expect: str | None = None) -> datetime | None:
    """Approve what will be sent (by someone who did not write, edit or submit it); returns
    when to fan out (None = now). `expect`: the review hash (or a prefix of at least 8) the
    reviewer saw in `push status`; a campaign that changed since is refused."""
    require_role(staff, Role.REVIEWER)
    if normalise_name(staff.name) in contributors(session, campaign):
        raise PermissionDenied(f"{staff.name} wrote, edited or submitted campaign {campaign.id}; "
                               "another staff account must approve it (先审查后发布)")
    problems: list[str] = []
    resolve_records(session, campaign.record_keys, now, problems)  # still 主动公开?
    problems += [f"record {key} changed since the message was rendered: `push edit "
                 f"{campaign.id}` or reject it" for key in stale_records(session, campaign)]
    if problems:
        raise CampaignInvalid(problems)
    if expect is not None and not _matches_hash(review_hash(session, campaign), expect):
        raise CampaignInvalid([f"campaign {campaign.id} changed since you reviewed it "
                               "(review hash differs): see `push status` again"])
    _require_audience(session, campaign)
    due = when_due(settings, campaign, now)
    target = S.SCHEDULED if due is not None else S.APPROVED
    components = seal(session, campaign, now)
    _transition(session, campaign, staff.name, "approve", (S.SUBMITTED,), target, now,
                audience=campaign.audience_preview, due=due.isoformat() if due else "now",
                hash=campaign.approved_hash, review=components)
    campaign.approver = staff.name
    if due is not None:
        campaign.send_at = to_utc_naive(due)
    return due


def _matches_hash(current: str, expect: str) -> bool:
    expect = expect.strip().lower()
    return len(expect) >= 8 and current.startswith(expect)


def contributors(session: Session, campaign: Campaign) -> set[str]:
    """Everyone who shaped the campaign: author, submitter, and every create/edit/submit."""
    actors = set(session.scalars(select(AuditEntry.actor).where(
        AuditEntry.campaign_id == campaign.id,
        AuditEntry.action.in_(("create", "edit", "submit")))))
    names = {campaign.author, campaign.submitter, *actors} - {None}
    return {_normalised(n) for n in names}


def _normalised(name: str) -> str:
    try:
        return normalise_name(name)
    except PermissionDenied:  # a legacy or system name: compared as stored
        return name


def edit(session: Session, settings: Settings, campaign: Campaign, staff: Staff,
         now: datetime, *, title: str | None = None,
         overrides: dict[str, str] | None = None) -> list[str]:
    """Change the title or template fields (re-rendered and checked); returns what changed.

    A rejected campaign becomes a draft again (then `push submit`); an approved or scheduled
    one goes back to review. A campaign that is sending can only be cancelled.
    """
    require_role(staff, Role.EDITOR)
    editable = (S.DRAFT, S.REJECTED, S.SUBMITTED, S.APPROVED, S.SCHEDULED)
    if campaign.status not in {s.value for s in editable}:
        raise InvalidTransition(f"campaign {campaign.id} is {campaign.status}; cannot edit "
                                f"(allowed from: {', '.join(s.value for s in editable)})")
    before = _components(session, campaign)
    problems = rerender(session, settings, campaign, now, title=title, overrides=overrides)
    if problems:
        raise CampaignInvalid(problems)
    changed = what_changed(before, _components(session, campaign))
    changed = [] if changed == ["approval hash"] else changed
    audit(session, staff.name, "edit", now, campaign.id, title=title,
          fields=dict(overrides or {}), changed=changed)
    campaign.updated_at = to_utc_naive(now)
    if campaign.status == S.REJECTED.value:
        _transition(session, campaign, staff.name, "reopen", (S.REJECTED,), S.DRAFT, now)
    elif campaign.status in (S.APPROVED.value, S.SCHEDULED.value) and (
            campaign.approved_hash != review_hash(session, campaign)):
        send_back(session, settings, campaign, now, staff.name, changed or ["edited"])
    return changed


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
    """Set the send time: before approval it is kept; after approval it reschedules.

    A non-urgent time inside quiet hours moves to their end, exactly as an approval in quiet
    hours does (campaign.send_at is what the planner honours, so it holds the moved time).
    """
    if to_utc_naive(at) <= to_utc_naive(now):
        raise CampaignInvalid([f"--at {at.isoformat()} is in the past"])
    moved = at if campaign.urgent else after_quiet_hours(settings, at)
    detail = {"at": at.isoformat()} | ({"moved_to": moved.isoformat()} if moved != at else {})
    if campaign.status in (S.DRAFT.value, S.SUBMITTED.value, S.REJECTED.value):
        require_role(staff, Role.EDITOR)
        campaign.send_at = to_utc_naive(moved)
        audit(session, staff.name, "schedule", now, campaign.id, **detail)
        return None
    require_role(staff, Role.REVIEWER)
    campaign.send_at = to_utc_naive(moved)
    due = when_due(settings, campaign, now)
    _transition(session, campaign, staff.name, "schedule", (S.APPROVED, S.SCHEDULED),
                S.SCHEDULED, now, **detail)
    return due


def cancel(session: Session, campaign: Campaign, staff: Staff, now: datetime) -> None:
    """Cancel; a campaign already sending stops at its next batch group."""
    require_role(staff, Role.EDITOR, Role.REVIEWER)
    _transition(session, campaign, staff.name, "cancel", (S.DRAFT, S.SUBMITTED, S.APPROVED,
                                                          S.SCHEDULED, S.SENDING),
                S.CANCELLED, now)
