"""Marshmallow schemas of /api/v1: what goes in (validated, 422 otherwise) and what comes out.

The OpenAPI document is generated from these, so a field added here is documented. Strings
coming in refuse control characters (a NUL would otherwise reach the database); times without
an offset are read as Asia/Shanghai, and every time going out is ISO 8601 with its offset.
"""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from bot.clock import SHANGHAI

CONTROL = {chr(c) for c in range(32)} - {"\n", "\t"} | {"\x7f"}


def _no_control(value: str) -> None:
    if any(c in CONTROL for c in value) or any(0xD800 <= ord(c) <= 0xDFFF for c in value):
        raise ma.ValidationError("control characters are not allowed")


class Text(fields.String):
    """A string without control characters (newlines and tabs allowed)."""

    def __init__(self, *, max_length: int = 2000, min_length: int = 0, **kwargs) -> None:
        validators = [_no_control, validate.Length(min=min_length, max=max_length)]
        super().__init__(validate=validators, **kwargs)


def When(**kwargs) -> fields.AwareDateTime:  # noqa: N802 - a field factory, read like a type
    """An ISO 8601 time; without an offset it means Asia/Shanghai."""
    return fields.AwareDateTime(default_timezone=SHANGHAI, **kwargs)


class Paging(ma.Schema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=100_000))
    per_page = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))


class PageMeta(ma.Schema):
    page = fields.Integer(required=True)
    per_page = fields.Integer(required=True)
    total = fields.Integer(required=True)


# --- campaigns -------------------------------------------------------------------------


class CampaignFilter(ma.Schema):
    status = fields.String(validate=validate.OneOf(
        ["draft", "submitted", "approved", "rejected", "scheduled", "sending", "done",
         "cancelled"]))


class CampaignOut(ma.Schema):
    id = fields.Integer(required=True)
    title = fields.String(required=True)
    status = fields.String(required=True)
    topic = fields.String(allow_none=True)
    author = fields.String(required=True)
    submitter = fields.String(allow_none=True)
    approver = fields.String(allow_none=True)
    audience_preview = fields.Integer(allow_none=True)
    audience = fields.String()
    record_keys = fields.List(fields.String())
    send_at = fields.DateTime(allow_none=True)
    approved_hash = fields.String(allow_none=True)
    approved_at = fields.DateTime(allow_none=True)
    reject_reason = fields.String(allow_none=True)
    stop_reason = fields.String(allow_none=True)


class CampaignList(ma.Schema):
    items = fields.List(fields.Nested(CampaignOut), required=True)


class TrailEntry(ma.Schema):
    at = fields.DateTime(required=True)
    actor = fields.String(required=True)
    action = fields.String(required=True)
    detail = fields.Dict()


class CampaignDetail(ma.Schema):
    campaign = fields.Nested(CampaignOut, required=True)
    review = fields.List(fields.String(), metadata={
        "description": "exactly what a reviewer approves, as lines"})
    review_hash = fields.String(metadata={
        "description": "name it in POST .../approve {\"hash\"} (pins the approval)"})
    trail = fields.List(fields.Nested(TrailEntry), metadata={
        "description": "the newest 50 audit entries, oldest first (all: GET /audit)"})
    trail_total = fields.Integer(metadata={"description": "audit entries in all"})
    counts = fields.Dict(metadata={"description": "delivery rows per status, reason, "
                                                  "errcode and channel"})


class CampaignResultOut(ma.Schema):
    campaign = fields.Nested(CampaignOut, required=True)
    review = fields.List(fields.String())
    changed = fields.List(fields.String())
    moved_to = fields.DateTime(allow_none=True)
    sending = fields.String(allow_none=True, metadata={
        "description": "\"now\", an ISO time, or null when nothing is queued"})


class CampaignCreate(ma.Schema):
    title = Text(max_length=200, allow_none=True, load_default=None)
    topic = Text(max_length=32, allow_none=True, load_default=None)
    district = Text(max_length=32, allow_none=True, load_default=None)
    notice_kind = Text(max_length=32, allow_none=True, load_default=None)
    records = fields.List(Text(max_length=160, min_length=1), required=True,
                          validate=validate.Length(min=1, max=20))
    openids = fields.List(Text(max_length=64, min_length=1), allow_none=True,
                          load_default=None, validate=validate.Length(min=1, max=30000))
    all_followers = fields.Boolean(load_default=False)
    urgent = fields.Boolean(load_default=False)
    overrides = fields.Dict(keys=Text(max_length=32, min_length=1), values=Text(max_length=400),
                            load_default=dict, validate=validate.Length(max=20))
    template_id = Text(max_length=128, allow_none=True, load_default=None)
    send_at = When(allow_none=True, load_default=None)


class ApproveIn(ma.Schema):
    hash = Text(required=True, min_length=8, max_length=64, metadata={
        "description": "the review_hash shown by GET /campaigns/{id} (or its first 8+ "
                       "characters): refused if the campaign changed since"})


class DraftApproveIn(ma.Schema):
    expect = Text(required=True, min_length=64, max_length=64, metadata={
        "description": "the draft's `digest` from GET /records/drafts/{id}: the approval "
                       "publishes only the content the reviewer read (409 if it changed)"})


class RejectIn(ma.Schema):
    reason = Text(required=True, min_length=1, max_length=500)


class ScheduleIn(ma.Schema):
    at = When(required=True)


# --- deliveries ---------------------------------------------------------------------------


class DeliveryOut(ma.Schema):
    id = fields.Integer(required=True)
    openid = fields.String(required=True, metadata={
        "description": "masked (first 4 + *** + last 4) unless the caller is an admin"})
    status = fields.String(required=True)
    channel = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)
    errcode = fields.Integer(allow_none=True)
    explanation = fields.String(allow_none=True, metadata={"description": "plain Chinese"})
    attempts = fields.Integer()
    updated_at = fields.DateTime(allow_none=True)


class DeliveryFilter(ma.Schema):
    after = fields.Integer(load_default=0, validate=validate.Range(min=0, max=2**62))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
    status = fields.String(validate=validate.OneOf(
        ["pending", "sending", "sent", "failed", "skipped", "unknown"]))


class DeliveryPage(ma.Schema):
    items = fields.List(fields.Nested(DeliveryOut), required=True)
    next_after = fields.Integer(allow_none=True, required=True)


class StatsOut(ma.Schema):
    campaign_id = fields.Integer(required=True)
    status = fields.String(required=True)
    finished = fields.Boolean(required=True)
    funnel = fields.Dict(required=True, metadata={
        "description": "targeted, skipped, eligible, sent, failed, unknown, open, "
                       "audience_preview"})
    channels = fields.List(fields.Dict(), metadata={
        "description": "[{channel, label, counts: {status: n}}]"})
    reasons = fields.List(fields.Dict(), metadata={
        "description": "[{status, reason, errcode, count, explanation}]"})
    per_minute = fields.List(fields.Dict(), metadata={
        "description": "[{minute, sent, failed, unknown}] (Asia/Shanghai)"})


# --- accounts -------------------------------------------------------------------------------


class MeOut(ma.Schema):
    name = fields.String(required=True)
    role = fields.String(required=True)
    via = fields.String(required=True, metadata={"description": "\"token\" or \"session\""})
    scopes = fields.List(fields.String(), required=True)


class StaffOut(ma.Schema):
    name = fields.String(required=True)
    role = fields.String(required=True)
    active = fields.Boolean(required=True)


class StaffList(ma.Schema):
    items = fields.List(fields.Nested(StaffOut), required=True)


class AccountOut(ma.Schema):
    name = fields.String(required=True)
    role = fields.String(required=True)
    active = fields.Boolean(required=True)
    has_password = fields.Boolean()
    totp_enabled = fields.Boolean()
    must_change_password = fields.Boolean()
    last_login_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime(allow_none=True)


class AccountList(ma.Schema):
    items = fields.List(fields.Nested(AccountOut), required=True)


# --- audit log ------------------------------------------------------------------------------


class AuditQuery(ma.Schema):
    actor = Text(max_length=64)
    action = Text(max_length=32)
    object_type = Text(max_length=32, metadata={"description": "\"campaign\", \"staff\", "
                                                               "\"record\", \"api_token\" ..."})
    object_id = Text(max_length=160)
    since = fields.Date(metadata={"description": "first day (Asia/Shanghai), inclusive"})
    until = fields.Date(metadata={"description": "last day (Asia/Shanghai), inclusive"})
    before = fields.Integer(validate=validate.Range(min=1, max=2**62), metadata={
        "description": "entries older than this id (the previous answer's next_before)"})
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


class AuditOut(ma.Schema):
    id = fields.Integer(required=True)
    at = fields.String(required=True, metadata={"description": "ISO time, Asia/Shanghai"})
    actor = fields.String(required=True)
    action = fields.String(required=True)
    object_type = fields.String()
    object_id = fields.String()
    detail = fields.Dict(metadata={"description": "openids masked unless you are an admin"})


class AuditPage(ma.Schema):
    items = fields.List(fields.Nested(AuditOut), required=True)
    next_before = fields.Integer(allow_none=True, required=True)


# --- citizens' questions ----------------------------------------------------------------------


class OutcomeOut(ma.Schema):
    outcome = fields.String(required=True)
    label = fields.String(required=True)
    count = fields.Integer(required=True)
    share = fields.Float(required=True)


class PeriodOut(ma.Schema):
    name = fields.String(required=True)
    first_day = fields.String(required=True)
    last_day = fields.String(required=True)
    total = fields.Integer(required=True)
    rows = fields.List(fields.Nested(OutcomeOut), required=True)
    answered_rate = fields.Float(allow_none=True)


class DistrictCount(ma.Schema):
    district = fields.String(required=True)
    reachable = fields.Integer(required=True)


class TopicOut(ma.Schema):
    topic = fields.String(required=True)
    citizens = fields.Integer(required=True)
    reachable = fields.Integer(required=True)
    districts = fields.List(fields.Nested(DistrictCount), required=True)


class ConsentOut(ma.Schema):
    template_id = fields.String(required=True)
    topic = fields.String(allow_none=True)
    long_term = fields.Integer(required=True)
    one_time = fields.Integer(required=True)
    used = fields.Integer(required=True)
    revoked = fields.Integer(required=True)


class QuestionSummary(ma.Schema):
    today = fields.Nested(PeriodOut, required=True)
    week = fields.Nested(PeriodOut, required=True)
    subscribers = fields.List(fields.Nested(TopicOut), required=True)
    consent = fields.List(fields.Nested(ConsentOut), required=True)


class UnansweredOut(ma.Schema):
    id = fields.Integer(required=True)
    text = fields.String(required=True)
    count = fields.Integer(required=True)
    first_at = fields.DateTime(required=True)
    last_at = fields.DateTime(required=True)


class UnansweredPage(ma.Schema):
    items = fields.List(fields.Nested(UnansweredOut), required=True)
    page = fields.Integer(required=True)
    has_next = fields.Boolean(required=True)


# --- records --------------------------------------------------------------------------------


class RecordQuery(Paging):
    kind = Text(max_length=16)
    disclosure = Text(max_length=32)
    district = Text(max_length=32)
    status = fields.String(validate=validate.OneOf(
        ["live", "unpaired", "draft", "in_review", "rejected"]))
    q = Text(max_length=100)


class RecordRowOut(ma.Schema):
    kind = fields.String(required=True)
    rid = fields.String(required=True)
    title = fields.String(required=True)
    disclosure = fields.String(allow_none=True)
    district = fields.String(allow_none=True)
    public = fields.Boolean(allow_none=True)
    updated_at = fields.DateTime(allow_none=True)
    state = fields.String(required=True)
    revision_id = fields.Integer(allow_none=True)
    open_revision = fields.Integer(allow_none=True)
    open_state = fields.String(allow_none=True)
    origin = fields.String()
    unpaired = fields.Boolean()


class RecordPageOut(PageMeta):
    items = fields.List(fields.Nested(RecordRowOut), required=True)


class RevisionOut(ma.Schema):
    id = fields.Integer(required=True)
    kind = fields.String(required=True)
    rid = fields.String(required=True)
    version = fields.Integer(required=True)
    title = fields.String(required=True)
    data = fields.Dict(required=True)
    digest = fields.String(metadata={"description": "pins an approval: POST .../approve "
                                                    "{\"expect\": digest}"})
    state = fields.String(required=True)
    source = fields.String(required=True)
    author = fields.String(required=True)
    reviewer = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)
    from_unanswered = fields.Integer(allow_none=True)
    created_at = fields.DateTime(allow_none=True)
    updated_at = fields.DateTime(allow_none=True)
    submitted_at = fields.DateTime(allow_none=True)
    decided_at = fields.DateTime(allow_none=True)


class RevisionList(ma.Schema):
    items = fields.List(fields.Nested(RevisionOut), required=True)


class SourceOut(ma.Schema):
    origin = fields.String(required=True)
    label = fields.String(required=True)
    by = fields.String(allow_none=True)
    approved_by = fields.String(allow_none=True)
    at = fields.DateTime(allow_none=True)


class RecordOut(ma.Schema):
    kind = fields.String(required=True)
    rid = fields.String(required=True)
    title = fields.String(required=True)
    data = fields.Dict(required=True)
    public = fields.Boolean(required=True)
    disclosure = fields.String(allow_none=True)
    district = fields.String(allow_none=True)
    created_at = fields.DateTime(allow_none=True)
    updated_at = fields.DateTime(allow_none=True)
    digest = fields.String()
    source = fields.Nested(SourceOut)
    open_revision = fields.Nested(RevisionOut, allow_none=True)
    history = fields.List(fields.Nested(RevisionOut))


class RevisionDetailOut(ma.Schema):
    revision = fields.Nested(RevisionOut, required=True)
    live = fields.Dict(allow_none=True)
    problems = fields.List(fields.String())
    stale = fields.Boolean()


class DraftCreate(ma.Schema):
    kind = Text(required=True, min_length=1, max_length=16)
    data = fields.Dict(keys=Text(max_length=64), required=True, metadata={
        "description": "the record's pack fields (content-pack format), \"id\" included"})
    from_unanswered = fields.Integer(allow_none=True, load_default=None,
                                     validate=validate.Range(min=1, max=2**62))


class DraftUpdate(ma.Schema):
    data = fields.Dict(keys=Text(max_length=64), required=True)


class PublishOut(ma.Schema):
    revision = fields.Nested(RevisionOut, required=True)
    created = fields.Boolean(required=True)
    public = fields.Boolean(required=True)
    campaign_drafts = fields.List(fields.Integer())
