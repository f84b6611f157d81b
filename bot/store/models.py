"""SQLAlchemy 2.x models. Times are naive UTC; openids are personal data (never logged whole).

The enums stored in these tables (Kind, Topic, Role, CampaignStatus, DeliveryStatus) and the
disclosure values are defined in bot.vocab and re-exported here.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# The stored vocabulary lives in bot.vocab; re-exported here for the tables' users.
from bot.vocab import (  # noqa: F401
    DISCLOSURE_VALUES,
    PUBLIC,
    CampaignStatus,
    DeliveryStatus,
    Kind,
    Role,
    Topic,
)


class Base(DeclarativeBase):
    """Declarative base of every table."""


class Record(Base):
    """One content-pack record; `data` holds its pack fields, the columns what queries need."""

    __tablename__ = "records"
    # lookups go by (kind, rid); visibility is filtered on those few rows
    __table_args__ = (UniqueConstraint("kind", "rid", name="uq_records_kind_rid"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    rid: Mapped[str] = mapped_column(String(128))
    title: Mapped[str] = mapped_column(Text)
    disclosure: Mapped[str | None] = mapped_column(String(16))
    # public is derived at import: kinds without a disclosure field are public by nature
    public: Mapped[bool] = mapped_column(Boolean)
    district: Mapped[str | None] = mapped_column(String(32))
    notice_kind: Mapped[str | None] = mapped_column(String(16))
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    starts_at: Mapped[datetime | None] = mapped_column(DateTime)
    ends_at: Mapped[datetime | None] = mapped_column(DateTime)
    data: Mapped[dict] = mapped_column(JSON)
    digest: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)

    @property
    def key(self) -> str:
        """The search key "kind:id"."""
        return f"{self.kind}:{self.rid}"


class Meta(Base):
    """Small key/value facts, e.g. the content revision that invalidates search indexes."""

    __tablename__ = "meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Follower(Base):
    """A citizen who follows (or followed) the account."""

    __tablename__ = "followers"

    openid: Mapped[str] = mapped_column(String(64), primary_key=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    source: Mapped[str | None] = mapped_column(String(128))
    followed_at: Mapped[datetime | None] = mapped_column(DateTime)
    unfollowed_at: Mapped[datetime | None] = mapped_column(DateTime)
    # customer-service window: WeChat allows custom messages 48 h after a citizen message
    last_message_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_interaction_at: Mapped[datetime | None] = mapped_column(DateTime)
    # customer-service messages sent since the citizen's last message (WeChat allows 5)
    cs_sent: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    location_at: Mapped[datetime | None] = mapped_column(DateTime)
    # 全部退订: set when the citizen opts out of everything (broadcasts too), cleared by 订阅
    opted_out_at: Mapped[datetime | None] = mapped_column(DateTime)


class Interaction(Base):
    """A recorded citizen event that needs no answer (VIEW, LOCATION, SCAN, CLICK...)."""

    __tablename__ = "interactions"
    __table_args__ = (Index("ix_interactions_openid_at", "openid", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    openid: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    detail: Mapped[dict] = mapped_column(JSON)
    at: Mapped[datetime] = mapped_column(DateTime)


class UnansweredQuery(Base):
    """A question the bot could not answer, aggregated by normalised text, for staff."""

    __tablename__ = "unanswered_queries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    text: Mapped[str] = mapped_column(String(200), unique=True)
    count: Mapped[int] = mapped_column(Integer, default=1)
    first_at: Mapped[datetime] = mapped_column(DateTime)
    last_at: Mapped[datetime] = mapped_column(DateTime)


# --- push: staff, subscriptions, consent, campaigns, deliveries, audit -------------


class Staff(Base):
    """A bureau staff account; `key_hash` authenticates CLI actions."""

    __tablename__ = "staff"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    # console login (issue 9): argon2id hash; None = no console password yet
    password_hash: Mapped[str | None] = mapped_column(String(200))
    # TOTP (RFC 6238) secret, encrypted with the app's secret key; enabled once confirmed
    totp_secret: Mapped[str | None] = mapped_column(String(200))
    totp_enabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # bumped on password reset, disable or role change: every older console session ends
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False,
                                                       server_default="0")
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime)
    # casework (issue 10): roles beside `role` ("registrar", "handler", "office_head"; None =
    # none) and the department whose cases the account handles
    case_roles: Mapped[list | None] = mapped_column(JSON)
    department_id: Mapped[int | None] = mapped_column(Integer)


class ApiToken(Base):
    """A per-account API token for /api/v1: scoped, revocable, stored only as a sha256 hash."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    staff_id: Mapped[int] = mapped_column(Integer, index=True)
    name: Mapped[str] = mapped_column(String(64))
    prefix: Mapped[str] = mapped_column(String(16))  # shown in lists: "qzt_ab12cd"
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list] = mapped_column(JSON)  # e.g. ["read", "write"]
    created_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)


class RecordRevision(Base):
    """One version of a record as staff edit it: draft -> in_review -> published (or rejected,
    withdrawn, superseded). `data` holds the full pack fields of that version."""

    __tablename__ = "record_revisions"
    __table_args__ = (Index("ix_record_revisions_key", "kind", "rid", "version"),
                      Index("ix_record_revisions_state", "state"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    rid: Mapped[str] = mapped_column(String(128))
    version: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(Text)
    data: Mapped[dict] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(16))  # "console" | "pack"
    # the live record's digest when the draft was started: a stale draft is detected
    base_digest: Mapped[str | None] = mapped_column(String(64))
    author: Mapped[str] = mapped_column(String(64))
    reviewer: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text)
    from_unanswered: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime)


class QuestionCount(Base):
    """Citizens' text questions per day (Asia/Shanghai) and outcome, for the console."""

    __tablename__ = "question_counts"
    __table_args__ = (UniqueConstraint("day", "outcome", name="uq_question_counts"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[str] = mapped_column(String(10))  # ISO date in Asia/Shanghai
    outcome: Mapped[str] = mapped_column(String(16))  # answer, list, fallback, smalltalk, ...
    count: Mapped[int] = mapped_column(Integer, default=0)


class Subscription(Base):
    """A citizen's topic subscription, optionally narrowed by district and notice kind."""

    __tablename__ = "subscriptions"
    __table_args__ = (UniqueConstraint("openid", "topic", "district", "notice_kind",
                                       name="uq_subscription"),
                      Index("ix_subscriptions_topic", "topic", "district", "notice_kind"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    openid: Mapped[str] = mapped_column(String(64), index=True)
    topic: Mapped[str] = mapped_column(String(16))
    # "" = any (not NULL, so the unique constraint works on every database)
    district: Mapped[str] = mapped_column(String(32), default="")
    notice_kind: Mapped[str] = mapped_column(String(16), default="")
    source: Mapped[str] = mapped_column(String(32), default="message")
    created_at: Mapped[datetime] = mapped_column(DateTime)


class Consent(Base):
    """WeChat subscription consent per citizen and template.

    Long-term consent is one row with scene "long_term". Each one-time acceptance is a row
    (scene = popup create time or the legacy redirect's scene) that a send consumes.
    """

    __tablename__ = "consents"
    __table_args__ = (UniqueConstraint("openid", "template_id", "scene", name="uq_consent"),
                      Index("ix_consents_lookup", "openid", "template_id", "status"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    openid: Mapped[str] = mapped_column(String(64))
    template_id: Mapped[str] = mapped_column(String(128))
    scene: Mapped[str] = mapped_column(String(64))
    long_term: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="available")  # used, revoked
    source: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    used_by: Mapped[int | None] = mapped_column(Integer)  # delivery id that consumed it


class Campaign(Base):
    """A reviewed push of one or more 主动公开 records to an audience."""

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    topic: Mapped[str | None] = mapped_column(String(16))
    district: Mapped[str | None] = mapped_column(String(32))
    notice_kind: Mapped[str | None] = mapped_column(String(16))
    openids: Mapped[list | None] = mapped_column(JSON)
    all_followers: Mapped[bool] = mapped_column(Boolean, default=False)
    record_keys: Mapped[list] = mapped_column(JSON)
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), index=True)
    author: Mapped[str] = mapped_column(String(64))
    submitter: Mapped[str | None] = mapped_column(String(64))
    approver: Mapped[str | None] = mapped_column(String(64))
    # sha256 of what the reviewer saw (payload per channel, template, audience definition);
    # a change after approval sends the campaign back to review
    approved_hash: Mapped[str | None] = mapped_column(String(64))
    approved_at: Mapped[datetime | None] = mapped_column(DateTime)
    reject_reason: Mapped[str | None] = mapped_column(Text)
    stop_reason: Mapped[str | None] = mapped_column(Text)
    audience_preview: Mapped[int | None] = mapped_column(Integer)
    payload: Mapped[dict] = mapped_column(JSON)  # rendered message per channel, checked at create
    send_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)


class Delivery(Base):
    """One (campaign, recipient) row: the SQL ledger is the truth, Redis only transport."""

    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("campaign_id", "openid", name="uq_delivery"),
                      Index("ix_deliveries_campaign_status", "campaign_id", "status"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(Integer, index=True)
    openid: Mapped[str] = mapped_column(String(64))
    batch: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    channel: Mapped[str | None] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(200))
    errcode: Mapped[int | None] = mapped_column(Integer)
    msgid: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime)


class AuditEntry(Base):
    """Who did what, when: every staff action and campaign transition."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at"), Index("ix_audit_log_actor", "actor"),
                      Index("ix_audit_log_object", "object_type", "object_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    campaign_id: Mapped[int | None] = mapped_column(Integer, index=True)
    detail: Mapped[dict] = mapped_column(JSON)
    # the object acted on when it is not a campaign: ("staff", name), ("record", "faq:x"), ...
    object_type: Mapped[str | None] = mapped_column(String(32))
    object_id: Mapped[str | None] = mapped_column(String(160))


# --- casework (issue 10): working-day calendar, 依申请公开 applications, 网民留言 ------------


class CalendarYear(Base):
    """A year of the working-day calendar: "official" (from the State Council's holiday notice,
    with its source) or "provisional" (statutory holidays, no make-up days, until it is)."""

    __tablename__ = "calendar_years"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    status: Mapped[str] = mapped_column(String(16))  # official | provisional
    source: Mapped[str | None] = mapped_column(Text)  # URL or package of the official notice
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class CalendarDay(Base):
    """A day that differs from Monday-Friday: a holiday (休) or a make-up working day (班)."""

    __tablename__ = "calendar_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))  # holiday | workday
    name: Mapped[str] = mapped_column(String(32), default="")


class Department(Base):
    """A department cases are assigned to (局各科室, 市道管处, 市水运处 ...)."""

    __tablename__ = "departments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class Case(Base):
    """One 依申请公开 application (kind "application") or 网民留言 (kind "message").

    `applicant` holds the article-29 fields (personal data: shown masked to roles that do not
    need them); `state` is the workflow state; due dates live in CaseClock rows."""

    __tablename__ = "cases"
    __table_args__ = (Index("ix_cases_kind_state", "kind", "state"),
                      Index("ix_cases_openid", "openid"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(24), unique=True)  # tracking number
    kind: Mapped[str] = mapped_column(String(16))  # application | message
    state: Mapped[str] = mapped_column(String(24))
    channel: Mapped[str] = mapped_column(String(16))  # h5 chat letter fax email in_person
    openid: Mapped[str | None] = mapped_column(String(64))
    query_code_hash: Mapped[str] = mapped_column(String(64))  # 查询码, sha256 (shown once)
    applicant: Mapped[dict] = mapped_column(JSON)
    applicant_type: Mapped[str | None] = mapped_column(String(16))  # 自然人, 商业企业, ...
    subject: Mapped[str] = mapped_column(Text)  # description of the information / 留言 text
    document_no: Mapped[str | None] = mapped_column(String(64))  # 文号
    category: Mapped[str | None] = mapped_column(String(16))  # 留言: 咨询 建议 投诉举报 求助
    delivery_form: Mapped[str | None] = mapped_column(String(32))  # 纸质 / 电子 ...
    delivery_way: Mapped[str | None] = mapped_column(String(32))  # 邮寄 / 自取 / 电子邮件 / 微信
    submitted_at: Mapped[datetime] = mapped_column(DateTime)
    received_on: Mapped[date | None] = mapped_column(Date)  # article 31 receipt date
    due_on: Mapped[date | None] = mapped_column(Date)  # the running answer deadline (copy)
    due_provisional: Mapped[bool] = mapped_column(Boolean, default=False)
    department_id: Mapped[int | None] = mapped_column(Integer, index=True)
    handler: Mapped[str | None] = mapped_column(String(64))
    answer_type: Mapped[str | None] = mapped_column(String(24))  # 予以公开 ... (report rows)
    answer_reason: Mapped[str | None] = mapped_column(String(64))  # sub-row of the report
    answer_text: Mapped[str | None] = mapped_column(Text)
    answer_author: Mapped[str | None] = mapped_column(String(64))
    answer_reviewer: Mapped[str | None] = mapped_column(String(64))
    answered_on: Mapped[date | None] = mapped_column(Date)
    delivered_on: Mapped[date | None] = mapped_column(Date)
    delivered_how: Mapped[str | None] = mapped_column(String(32))
    rating: Mapped[str | None] = mapped_column(String(8))  # 满意 基本满意 不满意
    converted_from: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime)


class CaseEvent(Base):
    """The case's timeline: every transition and note, with actor and time (also audited)."""

    __tablename__ = "case_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(Integer, index=True)
    at: Mapped[datetime] = mapped_column(DateTime)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str | None] = mapped_column(String(24))
    to_state: Mapped[str | None] = mapped_column(String(24))
    detail: Mapped[dict] = mapped_column(JSON)


class CaseClock(Base):
    """One segment of a case's legal clock: the answer period (20 working days), a 补正
    notice (7), a third-party consultation (15, not counted in the answer period), an
    extension (+20), a 留言 sign-for or reply limit. due = `started_on` + `working_days` +
    `paused_days` working days, recomputed when the calendar changes."""

    __tablename__ = "case_clocks"
    __table_args__ = (Index("ix_case_clocks_open", "status", "due_on"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(Integer, index=True)
    kind: Mapped[str] = mapped_column(String(16))  # answer correction consultation sign_for reply
    started_on: Mapped[date] = mapped_column(Date)
    working_days: Mapped[int] = mapped_column(Integer)
    paused_days: Mapped[int] = mapped_column(Integer, default=0)
    paused_on: Mapped[date | None] = mapped_column(Date)  # set while paused
    due_on: Mapped[date] = mapped_column(Date)
    provisional: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(12))  # running paused done lapsed
    ended_on: Mapped[date | None] = mapped_column(Date)


class CaseFile(Base):
    """An uploaded file (identity proof, answer document), stored outside the web root."""

    __tablename__ = "case_files"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int | None] = mapped_column(Integer, index=True)
    purpose: Mapped[str] = mapped_column(String(24))  # identity_proof | answer | other
    filename: Mapped[str] = mapped_column(String(200))  # the uploader's name (display only)
    stored_name: Mapped[str] = mapped_column(String(80))  # random name in [cases] upload_dir
    content_type: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime)


class CaseAlert(Base):
    """A due-soon / overdue alert sent for one clock at one level: unique, so the scheduled
    alert job is idempotent."""

    __tablename__ = "case_alerts"
    __table_args__ = (UniqueConstraint("clock_id", "level", "due_on", name="uq_case_alert"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(Integer, index=True)
    clock_id: Mapped[int] = mapped_column(Integer)
    level: Mapped[str] = mapped_column(String(8))  # T-5 T-2 T-0 overdue
    due_on: Mapped[date] = mapped_column(Date)
    sent_at: Mapped[datetime] = mapped_column(DateTime)
