"""The staff service layer: every staff use-case as one function (CLI today, console next).

Each use-case takes the session, the acting account (`actor = login(session, name, key)`, in
the same session), plain arguments and `now`, and returns a small frozen view (never an ORM
object, so nothing leaks past the session). It owns authorisation, locking (a campaign is
loaded FOR UPDATE before it changes) and the audit log, and raises the project's errors
(bot/errors.py: NotFound, PermissionDenied, InvalidTransition, CampaignInvalid).

The edge owns the transaction: it commits, and only after the commit enqueues what a result
asks for (`result.fan_out`: push.jobs.enqueue_fanout), so a fast worker always finds the row.
Nothing here commits, reads the environment or imports RQ.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.errors import PermissionDenied
from bot.settings import Settings
from bot.store.models import Campaign, Role, Staff
from bot.store.models import CampaignStatus as S
from push import audit as audit_log
from push import campaigns, review, staff
from push.campaigns import Audience
from push.fanout import campaign_counts

__all__ = ["Audience", "AuditView", "CampaignResult", "CampaignStatusView", "CampaignView",
           "FanOut", "StaffKey", "StaffView", "add_staff", "approve", "authorize_full_export",
           "cancel", "create", "describe_audience", "disable_staff", "edit", "list_campaigns",
           "list_staff", "login", "needs_login", "reject", "rotate_key", "schedule", "status",
           "submit"]

LIST_LIMIT = 100  # `push list` shows the newest campaigns only


# --- results -------------------------------------------------------------------------


def _aware(at: datetime | None) -> datetime | None:
    return at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at


@dataclass(frozen=True)
class CampaignView:
    """A campaign as the edges show it; times are aware UTC."""

    id: int
    title: str
    status: str
    topic: str | None
    author: str
    submitter: str | None
    approver: str | None
    audience_preview: int | None
    record_keys: tuple[str, ...]
    send_at: datetime | None
    approved_hash: str | None
    approved_at: datetime | None
    reject_reason: str | None
    stop_reason: str | None
    audience: str = ""  # the definition in words: "all subscribers of 出行资讯"

    @classmethod
    def of(cls, c: Campaign) -> CampaignView:
        """The view of a loaded campaign."""
        return cls(id=c.id, title=c.title, status=c.status, topic=c.topic, author=c.author,
                   submitter=c.submitter, approver=c.approver,
                   audience_preview=c.audience_preview, record_keys=tuple(c.record_keys or ()),
                   send_at=_aware(c.send_at), approved_hash=c.approved_hash,
                   approved_at=_aware(c.approved_at), reject_reason=c.reject_reason,
                   stop_reason=c.stop_reason, audience=describe_audience(c))


def describe_audience(c: Campaign) -> str:
    """Who a campaign is for, as staff read it (the definition; its size is counted apart)."""
    if c.all_followers:
        return "every active follower (--all)"
    if c.openids is not None:
        return f"an explicit list of {len(set(c.openids))} openids"
    filters = [f"in {c.district}"] if c.district else []
    filters += [f"kind {c.notice_kind}"] if c.notice_kind else []
    if not filters:
        return f"all subscribers of {c.topic}"
    return f"subscribers of {c.topic} {', '.join(filters)}"


@dataclass(frozen=True)
class FanOut:
    """What the edge enqueues after its commit: push.jobs.fan_out now (`at` None) or at `at`."""

    campaign_id: int
    at: datetime | None = None


@dataclass(frozen=True)
class CampaignResult:
    """A campaign after a use-case, and what the edge must do once it has committed."""

    campaign: CampaignView
    fan_out: FanOut | None = None
    review: tuple[str, ...] = ()  # approve: exactly what was approved (push.review.describe)
    changed: tuple[str, ...] = ()  # edit: the parts that changed
    moved_to: datetime | None = None  # schedule: the time quiet hours moved the send to


@dataclass(frozen=True)
class AuditView:
    """One audit entry; `at` is aware UTC."""

    at: datetime
    actor: str
    action: str
    detail: dict[str, Any]


@dataclass(frozen=True)
class CampaignStatusView:
    """What `push status` shows: the campaign, what is approved, its trail and its counts."""

    campaign: CampaignView
    review: tuple[str, ...]
    trail: tuple[AuditView, ...]
    counts: dict[str, Any]


@dataclass(frozen=True)
class StaffView:
    """A staff account without its key hash."""

    name: str
    role: str
    active: bool

    @classmethod
    def of(cls, s: Staff) -> StaffView:
        """The view of a loaded account."""
        return cls(name=s.name, role=s.role, active=bool(s.active))


@dataclass(frozen=True)
class StaffKey:
    """An account and its new key (shown once: only its scrypt hash is stored)."""

    account: StaffView
    key: str


# --- staff accounts ------------------------------------------------------------------


def login(session: Session, name: str, key: str | None) -> Staff:
    """The acting account: active, and `key` is its key; NotFound / PermissionDenied otherwise."""
    return staff.authenticate(session, name, key)


def needs_login(session: Session) -> bool:
    """True once any account exists (only the very first account is created without one)."""
    return staff.staff_count(session) > 0


def add_staff(session: Session, actor: Staff | None, name: str, role: str,
              now: datetime) -> StaffKey:
    """Create an account (an admin acts; `actor` None only for the first, an admin itself)."""
    if actor is None:
        if needs_login(session):
            raise PermissionDenied("an admin must log in (--as ADMIN) once an account "
                                         "exists")
        by = audit_log.BOOTSTRAP
    else:
        staff.require_role(actor, Role.ADMIN)
        by = actor.name
    account, key = staff.add_staff(session, name, role, now, by)
    return StaffKey(StaffView.of(account), key)


def disable_staff(session: Session, actor: Staff, name: str, now: datetime) -> StaffView:
    """Disable an account (admins only; never the last active admin; audited)."""
    return StaffView.of(staff.disable_staff(session, name, actor, now))


def rotate_key(session: Session, actor: Staff, name: str, now: datetime) -> StaffKey:
    """A new key for `name` (an admin, or the account itself; audited); the old one stops."""
    account, key = staff.rotate_key(session, name, actor, now)
    return StaffKey(StaffView.of(account), key)


def list_staff(session: Session, actor: Staff) -> list[StaffView]:
    """Every account by name (any logged-in account: names are internal)."""
    return [StaffView.of(s) for s in staff.all_staff(session)]


def authorize_full_export(session: Session, actor: Staff, now: datetime,
                          destination: str) -> None:
    """Audit that `actor` exports every record, non-public ones included; the edge commits
    this before it exports."""
    audit_log.audit(session, actor.name, "content_export_all", now, output=destination)


# --- campaigns -----------------------------------------------------------------------


def create(session: Session, settings: Settings, actor: Staff, now: datetime, *,
           refs: list[str], audience: Audience, urgent: bool = False, title: str | None = None,
           overrides: dict[str, str] | None = None, template_id: str | None = None,
           send_at: datetime | None = None) -> CampaignView:
    """Create a draft campaign (editors); CampaignInvalid lists every problem."""
    staff.require_role(actor, Role.EDITOR)
    campaign = campaigns.create_campaign(
        session, settings, now, actor=actor.name, refs=list(refs), audience=audience,
        urgent=urgent, title=title, overrides=overrides or {}, template_id=template_id,
        send_at=send_at)
    return CampaignView.of(campaign)


def _locked(session: Session, campaign_id: int) -> Campaign:
    """The campaign, locked for this transaction (NotFound if there is none)."""
    return campaigns.get_campaign(session, campaign_id, lock=True)


def submit(session: Session, settings: Settings, actor: Staff, campaign_id: int,
           now: datetime) -> CampaignResult:
    """Hand a draft (or a rejected campaign) to review."""
    c = _locked(session, campaign_id)
    campaigns.submit(session, c, actor, now, settings)
    return CampaignResult(CampaignView.of(c))


def approve(session: Session, settings: Settings, actor: Staff, campaign_id: int,
            now: datetime, expect: str | None = None) -> CampaignResult:
    """Approve what will be sent (another account than author/editors/submitter); the result
    carries what was approved and the fan-out to enqueue (now, or when due)."""
    c = _locked(session, campaign_id)
    due = campaigns.approve(session, settings, c, actor, now, expect=expect)
    lines = tuple(review.describe(session, c))
    return CampaignResult(CampaignView.of(c), fan_out=FanOut(c.id, due), review=lines)


def reject(session: Session, settings: Settings, actor: Staff, campaign_id: int,
           now: datetime, reason: str) -> CampaignResult:
    """Send a submitted campaign back to its author with a reason (reviewers)."""
    c = _locked(session, campaign_id)
    campaigns.reject(session, c, actor, reason, now)
    return CampaignResult(CampaignView.of(c))


def schedule(session: Session, settings: Settings, actor: Staff, campaign_id: int,
             now: datetime, at: datetime) -> CampaignResult:
    """Set or change the send time (quiet hours move a non-urgent one to the morning)."""
    c = _locked(session, campaign_id)
    due = campaigns.schedule(session, settings, c, actor, at, now)
    send_at = _aware(c.send_at)
    moved = send_at if send_at is not None and send_at != at else None
    fan_out = (FanOut(c.id, due) if due is not None or c.status == S.SCHEDULED.value
               else None)  # a reschedule of an approved campaign re-plans it
    return CampaignResult(CampaignView.of(c), fan_out=fan_out, moved_to=moved)


def edit(session: Session, settings: Settings, actor: Staff, campaign_id: int, now: datetime,
         *, title: str | None = None,
         overrides: dict[str, str] | None = None) -> CampaignResult:
    """Change the title or template fields; an approved campaign goes back to review."""
    c = _locked(session, campaign_id)
    changed = campaigns.edit(session, settings, c, actor, now, title=title,
                             overrides=overrides)
    return CampaignResult(CampaignView.of(c), changed=tuple(changed))


def cancel(session: Session, settings: Settings, actor: Staff, campaign_id: int,
           now: datetime) -> CampaignResult:
    """Cancel a campaign (one that is sending stops at its next batch group)."""
    c = _locked(session, campaign_id)
    campaigns.cancel(session, c, actor, now)
    return CampaignResult(CampaignView.of(c))


def status(session: Session, actor: Staff, campaign_id: int) -> CampaignStatusView:
    """A campaign, what its reviewer approves, its audit trail and per-status delivery counts."""
    c = campaigns.get_campaign(session, campaign_id)
    counts = campaign_counts(session, campaign_id)
    lines = tuple(review.describe(session, c))
    trail = tuple(AuditView(at=_aware(e.at), actor=e.actor, action=e.action,
                            detail=dict(e.detail or {}))
                  for e in audit_log.trail(session, c.id))
    return CampaignStatusView(CampaignView.of(c), lines, trail, counts)


def list_campaigns(session: Session, actor: Staff,
                   status: str | None = None) -> list[CampaignView]:
    """The newest campaigns first (at most LIST_LIMIT), optionally in one status."""
    stmt = select(Campaign).order_by(Campaign.id.desc()).limit(LIST_LIMIT)
    if status:
        stmt = stmt.where(Campaign.status == status)
    return [CampaignView.of(c) for c in session.scalars(stmt)]

