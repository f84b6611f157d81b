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

from redis import Redis, RedisError
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from bot.clock import to_utc_naive
from bot.errors import NotFound, PermissionDenied
from bot.settings import Settings
from bot.store.models import AuditEntry, Campaign, Delivery, Record, Role, Staff
from bot.store.models import CampaignStatus as S
from bot.store.queries import visible_clause
from bot.vocab import NOTICE_KIND_LABEL, topic_named
from push import accounts, apitokens, campaigns, reports, review, staff
from push import audit as audit_log
from push.audience import preview as preview_count
from push.campaigns import Audience
from push.explain import explain
from push.fanout import campaign_counts

__all__ = ["AccountView", "Audience", "AudienceSize", "AuditView", "CampaignDetail",
           "CampaignResult", "CampaignStatusView", "CampaignView", "DemoLogin", "DraftPreview",
           "FanOut", "RecordChoice", "StaffKey", "StaffView", "TemporaryPassword", "account_view",
           "add_account", "add_staff", "approve", "audience_size", "audience_words",
           "authorize_delivery_export", "authorize_full_export", "campaign_detail", "cancel",
           "change_own_password", "change_role", "changes_since", "confirm_totp", "create",
           "describe_audience", "disable_account", "disable_staff", "edit", "enable_staff",
           "enrol_totp", "ensure_demo_admin", "find_campaigns", "list_campaigns", "list_staff",
           "login", "login_refused", "login_succeeded", "logout", "needs_login", "password_login",
           "pending_account", "preview", "pushable_records", "reject", "reset_password",
           "reset_totp", "review_queue", "rotate_key", "schedule", "set_password", "status",
           "submit", "template_fields", "totp_login"]

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


# --- API tokens ----------------------------------------------------------------------


def create_api_token(session: Session, settings: Settings, actor: Staff, now: datetime,
                     name: str, scopes: list[str]) -> apitokens.NewApiToken:
    """A new API token for the acting account itself (any role), expiring after [console]
    api_token_days; the secret is in the result once, only its sha256 is stored. Audited."""
    return apitokens.create_token(session, actor, name, scopes, now,
                                  settings.console.api_token_days)


def list_api_tokens(session: Session, actor: Staff, now: datetime,
                    everyone: bool = False) -> list[apitokens.ApiTokenView]:
    """The acting account's tokens; `everyone` (admins only) every account's."""
    return apitokens.list_tokens(session, actor, now, everyone=everyone)


def revoke_api_token(session: Session, actor: Staff, token_id: int,
                     now: datetime) -> apitokens.ApiTokenView:
    """Revoke one's own token, or (admins) anyone's; audited."""
    return apitokens.revoke_token(session, actor, token_id, now)


def token_login(session: Session, secret: str, now: datetime) -> apitokens.TokenCheck:
    """The account a presented API token acts as, its scopes, or why it is refused; may touch
    the token's last_used_at (the edge commits)."""
    return apitokens.authenticate(session, secret, now)


@dataclass(frozen=True)
class DeliveryRowView:
    """A delivery row for the API; `openid` masked unless the viewer is an admin."""

    id: int
    openid: str
    status: str
    channel: str | None
    reason: str | None
    errcode: int | None
    explanation: str | None
    attempts: int
    updated_at: datetime | None


FULL_READ_AUDIT_SECONDS = 600  # an admin paging through full openids: one audit per 10 min
FULL_READ_KEY = "qzbot:audit:delivery-read-full:{staff_id}:{campaign_id}"


def delivery_page(session: Session, actor: Staff, campaign_id: int, now: datetime,
                  redis_client: Redis | None, *, after: int = 0, limit: int = 50,
                  status: str | None = None) -> tuple[list[DeliveryRowView], int | None]:
    """A campaign's delivery rows in id order after row `after` (keyset: as fast on the last
    page as on the first); (rows, the `after` of the next page or None). Any logged-in
    account; openids whole for admins only (push.reports.mask_openid), and an admin's read
    of full openids is audited ("delivery_read_full", as the CSV export is), at most once
    per (admin, campaign) per FULL_READ_AUDIT_SECONDS (a Redis key; without Redis, every
    time). The edge commits the audit entry."""
    campaigns.get_campaign(session, campaign_id)
    if actor.role == Role.ADMIN.value and _first_full_read(redis_client, actor, campaign_id):
        audit_log.audit(session, actor.name, "delivery_read_full", now, campaign_id,
                        after=after, limit=limit, status=status)
    stmt = select(Delivery).where(Delivery.campaign_id == campaign_id, Delivery.id > after)
    if status:
        stmt = stmt.where(Delivery.status == status)
    found = list(session.scalars(stmt.order_by(Delivery.id).limit(limit + 1)))
    full = actor.role == Role.ADMIN.value
    rows = [DeliveryRowView(
        id=d.id, openid=d.openid if full else reports.mask_openid(d.openid), status=d.status,
        channel=d.channel, reason=d.reason, errcode=d.errcode,
        explanation=explain(d.reason, d.errcode) if d.reason or d.errcode else None,
        attempts=d.attempts or 0, updated_at=_aware(d.updated_at)) for d in found[:limit]]
    return rows, (rows[-1].id if len(found) > limit else None)


def _first_full_read(redis_client: Redis | None, actor: Staff, campaign_id: int) -> bool:
    """True unless this admin's reads of this campaign were audited in the last
    FULL_READ_AUDIT_SECONDS (SET NX EX: one atomic check-and-mark). Redis down: True."""
    if redis_client is None:
        return True
    key = FULL_READ_KEY.format(staff_id=actor.id, campaign_id=campaign_id)
    try:
        return bool(redis_client.set(key, "1", nx=True, ex=FULL_READ_AUDIT_SECONDS))
    except RedisError:
        return True  # no throttle without Redis: audit every read


# --- console campaigns ---------------------------------------------------------------
# What the console's campaign pages need beyond the use-cases above: records that may be
# pushed, the audience size and the rendered message before a draft exists, the review
# queue, a campaign's full detail with its review hash, and the audited delivery export.


TRAIL_SHOWN = 50  # a campaign page shows its newest audit entries; the audit page has all


@dataclass(frozen=True)
class RecordChoice:
    """A record staff may attach to a campaign (主动公开, not ended, not a synonym)."""

    key: str
    title: str
    kind: str
    district: str | None


@dataclass(frozen=True)
class AudienceSize:
    """An audience as staff read it ("出行资讯 · 鲤城区") and how many it reaches now."""

    words: str
    count: int
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class DraftPreview:
    """The message per channel that `create` would store (nothing is stored)."""

    title: str
    payload: dict[str, Any]  # text / once / template, exactly as the workers send them
    problems: tuple[str, ...]
    template_fields: dict[str, str]  # the template's fields and their sources


@dataclass(frozen=True)
class CampaignDetail:
    """A campaign page: the view, its extras, what the reviewer approves and the trail."""

    campaign: CampaignView
    district: str | None
    notice_kind: str | None
    urgent: bool
    audience_words: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    payload: dict[str, Any]
    review_hash: str
    components: dict[str, Any]  # push.review.review_components: what the hash covers
    review: tuple[str, ...]
    contributors: frozenset[str]
    trail: tuple[AuditView, ...]
    counts: dict[str, Any]
    overrides: dict[str, str]
    contributed: bool  # the actor wrote, edited or submitted it: may not approve it
    trail_total: int = 0  # audit entries in all; `trail` may hold only the newest of them


def audience_words(topic: str | None, district: str | None = None,
                   notice_kind: str | None = None, all_followers: bool = False,
                   openids: list[str] | None = None) -> str:
    """Who a campaign is for, in Chinese: "出行资讯 · 鲤城区 · 公交", "全部关注者"."""
    if all_followers:
        return "全部关注者"
    if openids is not None:
        return f"指定名单（{len(set(openids))} 个 openid）"
    parts = [topic or "（未选栏目）"]
    parts += [district] if district else []
    parts += [NOTICE_KIND_LABEL.get(notice_kind, notice_kind)] if notice_kind else []
    return " · ".join(parts)


def pushable_records(session: Session, actor: Staff, now: datetime, query: str = "",
                     limit: int = 50) -> list[RecordChoice]:
    """Records that may be pushed now, newest first, matching `query` in key or title."""
    stmt = select(Record.kind, Record.rid, Record.title, Record.district).where(
        visible_clause(now))
    query = query.strip()
    if query:
        pattern = f"%{query.replace('%', '').replace('_', '')}%"
        stmt = stmt.where(or_(Record.title.like(pattern), Record.rid.like(pattern),
                              (Record.kind + ":" + Record.rid).like(pattern)))
    found = session.execute(stmt.order_by(Record.updated_at.desc(), Record.id.desc())
                            .limit(limit)).all()
    return [RecordChoice(f"{r.kind}:{r.rid}", r.title, r.kind, r.district) for r in found]


def _audience_problems(settings: Settings, aud: Audience) -> list[str]:
    problems: list[str] = []
    if not aud.all_followers and aud.openids is None:
        if not aud.topic:
            problems.append("请选择栏目")
        elif topic_named(aud.topic) is None:
            problems.append(f"未知栏目 {aud.topic}")
    if aud.district and aud.district not in settings.bot.districts:
        problems.append(f"未知区县 {aud.district}")
    if aud.notice_kind and aud.notice_kind not in NOTICE_KIND_LABEL:
        problems.append(f"未知出行类别 {aud.notice_kind}")
    return problems


def audience_size(session: Session, settings: Settings, actor: Staff,
                  audience: Audience) -> AudienceSize:
    """How many citizens an audience definition reaches now (counted, nothing stored)."""
    topic = topic_named(audience.topic) if audience.topic else None
    words = audience_words(topic.value if topic else audience.topic, audience.district,
                           audience.notice_kind, audience.all_followers, audience.openids)
    problems = _audience_problems(settings, audience)
    if problems:
        return AudienceSize(words, 0, tuple(problems))
    probe = Campaign(topic=topic.value if topic else None, district=audience.district or None,
                     notice_kind=audience.notice_kind or None, openids=audience.openids,
                     all_followers=audience.all_followers)  # transient: never added
    return AudienceSize(words, preview_count(session, probe))


def preview(session: Session, settings: Settings, actor: Staff, now: datetime, *,
            refs: list[str], audience: Audience, title: str | None = None,
            overrides: dict[str, str] | None = None,
            template_id: str | None = None) -> DraftPreview:
    """Render what `create` would store for these inputs, with push.campaigns.render_draft
    (the function `create` renders with); every problem `create` would report about the
    records, the template and its field limits is listed."""
    problems: list[str] = []
    records = campaigns.resolve_records(session, list(refs), now, problems)
    topic = topic_named(audience.topic) if audience.topic else None
    draft = campaigns.render_draft(settings, now, records, topic=topic.value if topic else None,
                                   title=title, overrides=overrides, template_id=template_id,
                                   problems=problems)
    if not records:
        return DraftPreview(draft.title, {}, tuple(problems), {})
    sent = {k: v for k, v in draft.payload.items() if k != review.RENDER_KEY}
    return DraftPreview(draft.title, sent, tuple(problems),
                        {k: str(v) for k, v in ((draft.template or {}).get("fields") or {})
                         .items()})


def template_fields(settings: Settings, topic: str | None) -> dict[str, str]:
    """The configured template's fields for a topic (key -> source), for the compose form."""
    found = topic_named(topic) if topic else None
    spec = settings.push.templates.get(found.value) if found else None
    return {k: str(v) for k, v in ((spec or {}).get("fields") or {}).items()}


def find_campaigns(session: Session, actor: Staff, *, status: str | None = None,
                   mine: bool = False) -> list[CampaignView]:
    """The newest campaigns (at most LIST_LIMIT), optionally in one status and/or the
    actor's own (written or submitted by them)."""
    stmt = select(Campaign).order_by(Campaign.id.desc()).limit(LIST_LIMIT)
    if status:
        stmt = stmt.where(Campaign.status == status)
    if mine:
        stmt = stmt.where(or_(Campaign.author == actor.name, Campaign.submitter == actor.name))
    return [CampaignView.of(c) for c in session.scalars(stmt)]


def review_queue(session: Session, actor: Staff) -> list[CampaignView]:
    """Submitted campaigns the actor may review: not written, edited or submitted by them
    (empty for an account that cannot review)."""
    if actor.role not in (Role.REVIEWER.value, Role.ADMIN.value):
        return []
    me = staff.normalise_name(actor.name)
    stmt = (select(Campaign).where(Campaign.status == S.SUBMITTED.value)
            .order_by(Campaign.updated_at, Campaign.id).limit(LIST_LIMIT))
    return [CampaignView.of(c) for c in session.scalars(stmt)
            if me not in campaigns.contributors(session, c)]


def _recent_trail(session: Session, campaign_id: int,
                  limit: int) -> tuple[tuple[AuditView, ...], int]:
    """The newest `limit` audit entries of a campaign, oldest first, and how many there are
    (the (campaign_id) index: a count and a LIMIT, not every entry loaded)."""
    total = session.scalar(select(func.count()).select_from(AuditEntry)
                           .where(AuditEntry.campaign_id == campaign_id)) or 0
    newest = session.execute(select(AuditEntry.at, AuditEntry.actor, AuditEntry.action,
                                    AuditEntry.detail)
                             .where(AuditEntry.campaign_id == campaign_id)
                             .order_by(AuditEntry.id.desc()).limit(limit)).all()
    return tuple(AuditView(at=_aware(e.at), actor=e.actor, action=e.action,
                           detail=dict(e.detail or {})) for e in reversed(newest)), int(total)


def campaign_detail(session: Session, actor: Staff, campaign_id: int, *,
                    page: bool = False, trail_limit: int | None = None) -> CampaignDetail:
    """Everything a campaign page shows, with the review hash the approve form pins.

    page=True is what the console's pages read (fast at 100 000 deliveries and thousands of
    audit entries): the newest TRAIL_SHOWN trail entries (`trail_total` counts them all), and
    neither the reviewer's lines (push.review.describe counts the audience now) nor the
    delivery counts (the delivery page reads push/reports.py): `review` is () and `counts`
    {}. The default (the CLI's view) has all of them; `trail_limit` (the JSON API) keeps the
    reviewer's lines and the counts but only the newest `trail_limit` trail entries (the whole
    trail is paged through /api/v1/audit)."""
    c = campaigns.get_campaign(session, campaign_id)
    if page:
        trail, total = _recent_trail(session, c.id, TRAIL_SHOWN)
        view = CampaignStatusView(CampaignView.of(c), (), trail, {})
    elif trail_limit is not None:
        trail, total = _recent_trail(session, c.id, trail_limit)
        view = CampaignStatusView(CampaignView.of(c), tuple(review.describe(session, c)),
                                  trail, campaign_counts(session, c.id))
    else:
        view = status(session, actor, campaign_id)
        total = len(view.trail)
    inputs = (c.payload or {}).get(review.RENDER_KEY) or {}
    shapers = frozenset(campaigns.contributors(session, c))
    return CampaignDetail(
        campaign=view.campaign, district=c.district, notice_kind=c.notice_kind,
        urgent=bool(c.urgent),
        audience_words=audience_words(c.topic, c.district, c.notice_kind,
                                      bool(c.all_followers), c.openids),
        created_at=_aware(c.created_at), started_at=_aware(c.started_at),
        finished_at=_aware(c.finished_at), payload=review.sent_payload(c),
        review_hash=review.review_hash(session, c),
        components=review.review_components(session, c), review=view.review,
        contributors=shapers, trail=view.trail, counts=view.counts,
        overrides=dict(inputs.get("overrides") or {}),
        contributed=staff.normalise_name(actor.name) in shapers, trail_total=total)


def changes_since(session: Session, actor: Staff, campaign_id: int,
                  seen: dict[str, Any] | None) -> list[str]:
    """What differs between the review components a reviewer saw and the campaign now
    (push.review.what_changed names: "title", "payload.text", "record notice:n1", ...)."""
    c = campaigns.get_campaign(session, campaign_id)
    current = review.review_components(session, c)
    if seen == current:
        return []
    return review.what_changed(seen if isinstance(seen, dict) else None, current)


def authorize_delivery_export(session: Session, actor: Staff, campaign_id: int,
                              now: datetime) -> bool:
    """May the actor export full openids? Admins yes (audited `delivery_export`, the edge
    commits before exporting); everyone else gets masked openids (False)."""
    campaigns.get_campaign(session, campaign_id)
    if actor.role != Role.ADMIN.value:
        return False
    audit_log.audit(session, actor.name, "delivery_export", now, campaign_id,
                    openids="full")
    return True


# --- console accounts ----------------------------------------------------------------
# Console logins, passwords, TOTP and roles (issue 9; push/accounts.py holds the crypto).
# Every change that must end an account's console sessions bumps Staff.session_epoch
# (password set or reset, TOTP reset, role change, disable); every action is audited with
# object_type="staff", object_id=<name>. No password or code ever reaches the audit log.

ANONYMOUS = "anonymous"  # the audit actor of a failed login with an unknown name


@dataclass(frozen=True)
class AccountView:
    """A staff account as the console's account pages show it (no hashes, no secrets)."""

    name: str
    role: str
    active: bool
    has_password: bool
    totp_enabled: bool
    must_change_password: bool
    last_login_at: datetime | None  # aware UTC
    created_at: datetime | None

    @classmethod
    def of(cls, s: Staff) -> AccountView:
        """The view of a loaded account."""
        return cls(name=s.name, role=s.role, active=bool(s.active),
                   has_password=s.password_hash is not None,
                   totp_enabled=bool(s.totp_enabled),
                   must_change_password=bool(s.must_change_password),
                   last_login_at=_aware(s.last_login_at), created_at=_aware(s.created_at))


@dataclass(frozen=True)
class TemporaryPassword:
    """An account and its one-time temporary console password (shown once; its holder must
    choose a new password at the first login)."""

    account: AccountView
    password: str


def _staff_named(session: Session, name: str) -> Staff:
    found = staff.find_staff(session, name)
    if found is None:
        raise NotFound(f"没有账号 {name!r}")
    return found


def _end_sessions(account: Staff) -> None:
    account.session_epoch = (account.session_epoch or 0) + 1


def _audit_staff(session: Session, by: str, action: str, now: datetime, account: str,
                 **detail: Any) -> None:
    audit_log.audit(session, by, action, now, object_type="staff", object_id=account,
                    **detail)


def _require_admin(actor: Staff) -> None:
    if actor.role != Role.ADMIN.value:
        raise PermissionDenied("只有管理员可以管理账号")


def _keep_an_admin(session: Session, account: Staff) -> None:
    """PermissionDenied if `account` is the last active admin (it would lock everyone out)."""
    if (account.role == Role.ADMIN.value and account.active
            and staff.active_admins(session) <= 1):
        raise PermissionDenied(f"{account.name} 是最后一个在用的管理员，不能停用或降级")


def _check_policy(password: str, name: str) -> None:
    problems = accounts.password_problems(password, name)
    if problems:
        raise accounts.PasswordRefused(problems)


def list_accounts(session: Session, actor: Staff) -> list[AccountView]:
    """Every account by name, with its console state (admins only)."""
    _require_admin(actor)
    return [AccountView.of(s) for s in staff.all_staff(session)]


def account_view(session: Session, actor: Staff, name: str | None = None) -> AccountView:
    """One account's console state: one's own, or (admins) anyone's."""
    if name is None:
        return AccountView.of(actor)
    account = _staff_named(session, name)
    if account.id != actor.id:
        _require_admin(actor)
    return AccountView.of(account)


def add_account(session: Session, actor: Staff, name: str, role: str,
                now: datetime) -> TemporaryPassword:
    """Create an account for the console (admins only): a temporary password, shown once,
    to be changed at the first login. Its CLI key is made too but not shown (an admin gives
    it one with `qzbot staff rotate-key` if it needs scripts)."""
    _require_admin(actor)
    created = add_staff(session, actor, name, role, now)
    account = _staff_named(session, created.account.name)
    password = accounts.temporary_password()
    account.password_hash = accounts.hash_password(password)
    account.must_change_password = True
    return TemporaryPassword(AccountView.of(account), password)


def pending_account(session: Session, staff_id: int, epoch: int) -> Staff | None:
    """The account a half-finished login (password checked, next step pending) belongs to,
    if it is still active and nothing ended its sessions since."""
    account = session.get(Staff, staff_id)
    if account is None or not account.active or (account.session_epoch or 0) != epoch:
        return None
    return account


def password_login(session: Session, name: str, password: str, now: datetime,
                   address: str) -> Staff | None:
    """The active account `name` if `password` is its console password; otherwise None and
    an audited failure. Unknown names cost the same argon2 work (no timing oracle). A hash
    with outdated parameters is re-hashed (the edge commits)."""
    account = staff.find_staff(session, name)
    ok = accounts.verify_password(account.password_hash if account else None, password)
    if ok and account is not None and account.active:
        if accounts.needs_rehash(account.password_hash or ""):
            account.password_hash = accounts.hash_password(password)
        return account
    reason = ("unknown_name" if account is None else "disabled" if not account.active and ok
              else "no_password" if account.password_hash is None else "wrong_password")
    audit_log.audit(session, account.name if account else ANONYMOUS, "console_login_failed",
                    now, object_type="staff" if account else None,
                    object_id=account.name if account else None, name=name[:64],
                    address=address, reason=reason)
    return None


def login_refused(session: Session, name: str, now: datetime, address: str,
                  action: str) -> None:
    """Audit a login refused by the throttle: "console_lockout" when a lockout starts,
    "console_login_locked" for an attempt during one."""
    account = staff.find_staff(session, name)
    audit_log.audit(session, account.name if account else ANONYMOUS, action, now,
                    object_type="staff" if account else None,
                    object_id=account.name if account else None, name=name[:64],
                    address=address)


def totp_login(session: Session, settings: Settings, redis_client: Redis, account: Staff,
               code: str, now: datetime, address: str) -> bool:
    """True if `code` is the account's current TOTP code (±1 step, each step once); a
    failure is audited (without the code)."""
    secret = accounts.decrypt_secret(settings.security.secret_key, account.id,
                                     account.totp_secret)
    if account.totp_enabled and accounts.verify_totp(redis_client, account.id, secret, code,
                                                     now):
        return True
    _audit_staff(session, account.name, "console_totp_failed", now, account.name,
                 address=address, readable=secret is not None)
    return False


def login_succeeded(session: Session, account: Staff, now: datetime, address: str,
                    totp: bool) -> AccountView:
    """Record a completed console login (last_login_at, audit)."""
    account.last_login_at = to_utc_naive(now)
    _audit_staff(session, account.name, "console_login", now, account.name, address=address,
                 totp=totp)
    return AccountView.of(account)


def logout(session: Session, actor: Staff, now: datetime, address: str) -> None:
    """Audit a console logout and end every console session of the account (the session is
    a signed cookie: clearing the browser's copy alone would leave a stolen copy working);
    the edge clears the session."""
    _end_sessions(actor)
    _audit_staff(session, actor.name, "console_logout", now, actor.name, address=address)


def change_own_password(session: Session, actor: Staff, old_password: str,
                        new_password: str, now: datetime) -> AccountView:
    """The account changes its own console password, proving the old one. Its other
    sessions end (the edge logs the current one in again on the new epoch)."""
    if not accounts.verify_password(actor.password_hash, old_password):
        _audit_staff(session, actor.name, "staff_password_failed", now, actor.name)
        raise PermissionDenied("原密码不正确")
    if accounts.verify_password(actor.password_hash, new_password):
        raise accounts.PasswordRefused(["新密码不能与原密码相同"])
    _check_policy(new_password, actor.name)
    actor.password_hash = accounts.hash_password(new_password)
    actor.must_change_password = False
    _end_sessions(actor)
    _audit_staff(session, actor.name, "staff_password_change", now, actor.name)
    return AccountView.of(actor)


def set_password(session: Session, actor: Staff, name: str, new_password: str,
                 now: datetime) -> AccountView:
    """Set `name`'s console password (the account itself, authenticated by its CLI key, or
    an admin: then its holder must change it at the first login). Sessions end."""
    account = _staff_named(session, name)
    if account.id != actor.id:
        _require_admin(actor)
    _check_policy(new_password, account.name)
    account.password_hash = accounts.hash_password(new_password)
    account.must_change_password = account.id != actor.id
    _end_sessions(account)
    _audit_staff(session, actor.name, "staff_password_set", now, account.name)
    return AccountView.of(account)


def reset_password(session: Session, actor: Staff, name: str,
                   now: datetime) -> TemporaryPassword:
    """An admin resets `name`'s console password to a temporary one (shown once, changed at
    the next login); the account's sessions end and its API tokens are revoked (a reset is
    what an admin does when an account may be compromised). TOTP stays as it is."""
    _require_admin(actor)
    account = _staff_named(session, name)
    password = accounts.temporary_password()
    account.password_hash = accounts.hash_password(password)
    account.must_change_password = True
    _end_sessions(account)
    apitokens.revoke_all(session, account, actor.name, now, "password_reset")
    _audit_staff(session, actor.name, "staff_password_reset", now, account.name)
    return TemporaryPassword(AccountView.of(account), password)


def enrol_totp(session: Session, settings: Settings, actor: Staff,
               now: datetime) -> accounts.TotpEnrolment:
    """Start (or show again) the account's own TOTP enrolment: a secret stored encrypted,
    not yet enabled; `confirm_totp` enables it. Refused once TOTP is on (an admin resets)."""
    if actor.totp_enabled:
        raise PermissionDenied("双重验证已启用；如需更换手机，请管理员重置")
    key = settings.security.secret_key
    secret = accounts.decrypt_secret(key, actor.id, actor.totp_secret)
    if secret is None:
        secret = accounts.new_totp_secret()
        actor.totp_secret = accounts.encrypt_secret(key, actor.id, secret)
        _audit_staff(session, actor.name, "staff_totp_enrol", now, actor.name)
    return accounts.TotpEnrolment.of(secret, actor.name)


def confirm_totp(session: Session, settings: Settings, redis_client: Redis, actor: Staff,
                 code: str, now: datetime) -> bool:
    """Enable the enrolled TOTP once the account shows a current code from it (True)."""
    if actor.totp_enabled:
        raise PermissionDenied("双重验证已启用")
    secret = accounts.decrypt_secret(settings.security.secret_key, actor.id, actor.totp_secret)
    if secret is None:
        raise PermissionDenied("请先开始绑定双重验证")
    if not accounts.verify_totp(redis_client, actor.id, secret, code, now):
        _audit_staff(session, actor.name, "console_totp_failed", now, actor.name,
                     stage="enrol")
        return False
    actor.totp_enabled = True
    _audit_staff(session, actor.name, "staff_totp_enable", now, actor.name)
    return True


def reset_totp(session: Session, actor: Staff, name: str, now: datetime) -> AccountView:
    """An admin removes `name`'s TOTP (lost phone); it enrols again at its next login (if
    its role requires TOTP). The account's sessions end."""
    _require_admin(actor)
    account = _staff_named(session, name)
    account.totp_secret = None
    account.totp_enabled = False
    _end_sessions(account)
    _audit_staff(session, actor.name, "staff_totp_reset", now, account.name)
    return AccountView.of(account)


def change_role(session: Session, actor: Staff, name: str, role: str,
                now: datetime) -> AccountView:
    """An admin changes `name`'s role (never demoting the last active admin); the account's
    sessions end, so the new role applies from its next login."""
    _require_admin(actor)
    if role not in {r.value for r in Role}:
        raise PermissionDenied(f"未知角色 {role!r}（editor, reviewer, admin）")
    account = _staff_named(session, name)
    if account.role == role:
        return AccountView.of(account)
    if role != Role.ADMIN.value:
        _keep_an_admin(session, account)
    old = account.role
    account.role = role
    _end_sessions(account)
    _audit_staff(session, actor.name, "staff_role_change", now, account.name, name=account.name,
                 old_role=old, role=role)
    return AccountView.of(account)


def enable_staff(session: Session, actor: Staff, name: str, now: datetime) -> AccountView:
    """An admin enables a disabled account again."""
    _require_admin(actor)
    account = _staff_named(session, name)
    if not account.active:
        account.active = True
        _audit_staff(session, actor.name, "staff_enable", now, account.name, name=account.name)
    return AccountView.of(account)


def disable_account(session: Session, actor: Staff, name: str, now: datetime) -> AccountView:
    """An admin disables an account (never the last active admin); its sessions end."""
    _require_admin(actor)
    _keep_an_admin(session, _staff_named(session, name))
    disable_staff(session, actor, name, now)
    return AccountView.of(_staff_named(session, name))


@dataclass(frozen=True)
class DemoLogin:
    """The embedded demo's admin login, printed at start: name, password, TOTP secret."""

    name: str
    password: str
    totp_secret: str
    totp_uri: str


def ensure_demo_admin(session: Session, settings: Settings, name: str,
                      now: datetime) -> DemoLogin:
    """The local demo only (`qzbot serve --demo`): make sure the admin `name` exists, is
    active and can log in to the console; a fresh password each start, TOTP kept (so an
    authenticator app that scanned it keeps working) or enrolled. Audited as "system"."""
    account = staff.find_staff(session, name)
    if account is None:
        if staff.staff_count(session):
            account, _ = staff.add_staff(session, name, Role.ADMIN.value, now, audit_log.SYSTEM)
        else:
            account, _ = staff.add_staff(session, name, Role.ADMIN.value, now,
                                         audit_log.BOOTSTRAP)
        session.flush()
    account.role, account.active = Role.ADMIN.value, True
    password = accounts.temporary_password()
    account.password_hash = accounts.hash_password(password)
    account.must_change_password = False
    key = settings.security.secret_key
    secret = accounts.decrypt_secret(key, account.id, account.totp_secret)
    if secret is None or not account.totp_enabled:
        secret = accounts.new_totp_secret()
        account.totp_secret = accounts.encrypt_secret(key, account.id, secret)
        account.totp_enabled = True
    _audit_staff(session, audit_log.SYSTEM, "staff_demo_login", now, account.name)
    return DemoLogin(account.name, password, secret, accounts.provisioning_uri(secret,
                                                                                account.name))
