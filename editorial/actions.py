"""The editorial service layer: every content use-case as one function (console pages and the
JSON API call these; see editorial/__init__.py for the workflow and the coexistence rule).

Each function takes the session, the acting account (a `Staff` row in the same session) and
plain arguments (`now` aware), authorises, audits (object_type "record", object_id
"kind:id") and returns a small frozen view; it never commits (the edge does) and never
returns an ORM object. Errors (bot.errors): NotFound, PermissionDenied, InvalidTransition
(editorial.revisions.StaleDraft is one: the live record changed under the draft), PackInvalid
(`problems` lists every validation problem, the pack validator's own words).

Roles: editors write drafts (create, update, submit, rebase, withdraw their own); reviewers
publish (approve, reject); admins do both. A reviewer never approves a draft they wrote or
edited. Any logged-in account reads.

Functions (H4's JSON API uses the same):
  list_records(session, actor, filters, page=1, per_page=50) -> RecordPage
  get_record(session, actor, kind, rid) -> RecordDetail
  history(session, actor, kind, rid) -> list[RevisionView]          (newest first)
  get_revision(session, actor, revision_id, districts) -> RevisionDetail
  compare(session, actor, kind, rid, old, new) -> list[FieldDiff]    (ids; None = live)
  review_queue(session, actor) -> list[RevisionView]
  create_draft(session, actor, kind, data, now, from_unanswered=None) -> RevisionView
  update_draft(session, actor, revision_id, data, now) -> RevisionView
  submit(session, actor, revision_id, now, districts) -> RevisionView
  approve(session, settings, actor, revision_id, now) -> PublishResult
  reject(session, actor, revision_id, now, reason) -> RevisionView
  withdraw(session, actor, revision_id, now) -> RevisionView
  rebase(session, actor, revision_id, now) -> RevisionView
  unanswered_prefill(session, actor, unanswered_id) -> dict
  draft_from_unanswered(session, actor, unanswered_id, now) -> RevisionView
  import_pack(session, settings, actor, text, now, *, source, dry_run, prune, force,
              pack_wins) -> ImportOutcome
  authorize_export(session, actor, now, include_non_public, destination) -> None
  export_text(session, actor, include_non_public) -> str
`data` is a record's pack fields in stored form (dates as ISO strings), e.g. from
editorial.revisions.parse_form or a JSON body.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session

from bot.clock import to_utc_naive
from bot.content import pack
from bot.content.schema import ID_MAX, KINDS
from bot.errors import InvalidTransition, NotFound, PackInvalid, PermissionDenied
from bot.settings import Settings
from bot.store.models import AuditEntry, Record, RecordRevision, Role, Staff, UnansweredQuery
from bot.store.queries import bump_content_revision
from editorial import revisions as rv
from editorial.revisions import (
    DRAFT,
    EDITABLE_STATES,
    IN_REVIEW,
    OPEN_STATES,
    PUBLISHED,
    REJECTED,
    WITHDRAWN,
    FieldDiff,
    StaleDraft,
)
from push import actions as push_actions
from push.audit import audit
from push.drafts import drafts_for_changes
from push.staff import require_role

PER_PAGE = 50
MAX_PER_PAGE = 200
OBJECT = "record"
EDIT_ACTIONS = ("content_draft_create", "content_draft_edit", "content_draft_rebase")
LIST_STATUSES = ("", "live", "unpaired", DRAFT, IN_REVIEW, REJECTED)


def _aware(at: datetime | None) -> datetime | None:
    return at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at


def content_digest(kind: str, rid: str, data: dict[str, Any]) -> str:
    """sha256 of a revision's content as a reviewer reads it (pins an approval to it)."""
    text = json.dumps([kind, rid, data], sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


# --- views -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RevisionView:
    """One version of a record (a draft, a published or an older version); times aware UTC.
    `editors`: every account that wrote or edited it (filled where a decision needs it)."""

    id: int
    kind: str
    rid: str
    version: int
    title: str
    data: dict[str, Any]
    state: str
    source: str
    author: str
    reviewer: str | None
    reason: str | None
    from_unanswered: int | None
    base_digest: str | None
    created_at: datetime
    updated_at: datetime
    submitted_at: datetime | None
    decided_at: datetime | None
    editors: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.rid}"

    @property
    def state_label(self) -> str:
        return rv.STATE_LABELS.get(self.state, self.state)

    @property
    def digest(self) -> str:
        """What a reviewer reads (kind, id, fields): the approve form posts it back as
        `expect`, so an approval publishes only the content that was read."""
        return content_digest(self.kind, self.rid, self.data)

    @classmethod
    def of(cls, r: RecordRevision, editors: tuple[str, ...] = ()) -> RevisionView:
        return cls(id=r.id, kind=r.kind, rid=r.rid, version=r.version, title=r.title,
                   data=dict(r.data or {}), state=r.state, source=r.source, author=r.author,
                   reviewer=r.reviewer, reason=r.reason, from_unanswered=r.from_unanswered,
                   base_digest=r.base_digest, created_at=_aware(r.created_at),
                   updated_at=_aware(r.updated_at), submitted_at=_aware(r.submitted_at),
                   decided_at=_aware(r.decided_at), editors=editors)


@dataclass(frozen=True)
class Source:
    """Where a record's live version came from: "pack" (内容包导入) or "console" (控制台编辑)."""

    origin: str
    label: str
    by: str | None
    approved_by: str | None
    at: datetime | None


@dataclass(frozen=True)
class RecordRef:
    kind: str
    rid: str
    title: str


@dataclass(frozen=True)
class Pairing:
    """Policy <-> 解读. On a policy: its embedded `interpretation` table and any catalogue
    entries that are its 解读; on a 解读 catalogue entry: its `policy`. `missing`: a policy
    without any 解读, or a 解读 whose policy is not found."""

    role: str  # "policy" | "interpretation" | ""
    interpretation: dict[str, Any] | None = None
    entries: tuple[RecordRef, ...] = ()
    policy: RecordRef | None = None
    missing: bool = False


@dataclass(frozen=True)
class RecordRow:
    """A line of the record list: a live record, or an open draft (`state` not "live")."""

    kind: str
    rid: str
    title: str
    disclosure: str | None
    district: str | None
    public: bool | None
    updated_at: datetime
    state: str
    revision_id: int | None = None  # the draft's id (draft rows)
    open_revision: int | None = None  # live rows: the record's open draft, if any
    open_state: str | None = None
    origin: str = "pack"
    unpaired: bool = False

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.rid}"


@dataclass(frozen=True)
class RecordFilters:
    """List filters; empty strings mean "any". status: "" / "live" (records), "unpaired"
    (policies without 解读), "draft" / "in_review" / "rejected" (open drafts)."""

    kind: str = ""
    disclosure: str = ""
    district: str = ""
    status: str = ""
    q: str = ""


@dataclass(frozen=True)
class RecordPage:
    rows: tuple[RecordRow, ...]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


@dataclass(frozen=True)
class RecordDetail:
    """A live record with its source, pairing, open draft and history (newest first)."""

    kind: str
    rid: str
    title: str
    data: dict[str, Any]
    public: bool
    disclosure: str | None
    district: str | None
    created_at: datetime
    updated_at: datetime
    digest: str
    source: Source
    pairing: Pairing
    open_revision: RevisionView | None
    history: tuple[RevisionView, ...]

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.rid}"


@dataclass(frozen=True)
class RevisionDetail:
    """A revision with what a decision needs: the live version it changes, every validation
    problem, whether it is stale (the live record changed since it started) and the diff."""

    revision: RevisionView
    live: dict[str, Any] | None
    problems: tuple[str, ...]
    stale: bool
    diff: tuple[FieldDiff, ...]


@dataclass(frozen=True)
class PublishResult:
    revision: RevisionView
    created: bool  # a new record (not a change of one)
    public: bool  # citizens can see it (主动公开)
    campaign_drafts: tuple[int, ...] = ()  # automatic draft campaigns (as a pack import)


@dataclass(frozen=True)
class ImportOutcome:
    report: pack.ImportReport
    campaign_drafts: tuple[int, ...] = field(default_factory=tuple)


# --- helpers ----------------------------------------------------------------------------


def _revision(session: Session, revision_id: int, lock: bool = False) -> RecordRevision:
    stmt = select(RecordRevision).where(RecordRevision.id == revision_id)
    if lock:
        stmt = stmt.with_for_update()
    rev = session.scalar(stmt)
    if rev is None:
        raise NotFound(f"no revision {revision_id}")
    return rev


def _live(session: Session, kind: str, rid: str) -> Record | None:
    return session.scalar(select(Record).where(Record.kind == kind, Record.rid == rid))


def _editors(session: Session, rev: RecordRevision) -> tuple[str, ...]:
    """Everyone who wrote or edited this revision (from its audit entries)."""
    rows = session.execute(select(AuditEntry.actor, AuditEntry.detail).where(
        AuditEntry.object_type == OBJECT, AuditEntry.object_id == f"{rev.kind}:{rev.rid}",
        AuditEntry.action.in_(EDIT_ACTIONS)))
    names = {rev.author}
    names.update(a for a, detail in rows if (detail or {}).get("revision") == rev.id)
    return tuple(sorted(names))


def _audit(session: Session, actor: Staff, action: str, now: datetime, rev: RecordRevision,
           **detail: Any) -> None:
    audit(session, actor.name, action, now, object_type=OBJECT,
          object_id=f"{rev.kind}:{rev.rid}", revision=rev.id, version=rev.version, **detail)


def _open_revision(session: Session, kind: str, rid: str) -> RecordRevision | None:
    return session.scalar(select(RecordRevision).where(
        RecordRevision.kind == kind, RecordRevision.rid == rid,
        RecordRevision.state.in_(OPEN_STATES)).order_by(RecordRevision.id.desc()).limit(1))


def _next_version(session: Session, kind: str, rid: str) -> int:
    top = session.scalar(select(func.max(RecordRevision.version)).where(
        RecordRevision.kind == kind, RecordRevision.rid == rid))
    return int(top or 0) + 1


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise NotFound(f"no record kind {kind!r}")


def _source(rec: Record, published: RecordRevision | None) -> Source:
    if published is not None and published.source == pack.SOURCE_CONSOLE:
        return Source("console", "控制台编辑", published.author, published.reviewer,
                      _aware(published.decided_at))
    at = published.decided_at if published is not None else rec.updated_at
    return Source("pack", "内容包导入", None, None, _aware(at))


def _unpaired(kind: str, data: dict[str, Any]) -> bool:
    return kind == "policy" and not data.get("interpretation")


# --- reading ---------------------------------------------------------------------------


def list_records(session: Session, actor: Staff, filters: RecordFilters, page: int = 1,
                 per_page: int = PER_PAGE) -> RecordPage:
    """One page of records (or of open drafts, by `filters.status`), newest change first;
    filtered and paginated in SQL."""
    per_page = max(1, min(int(per_page), MAX_PER_PAGE))
    page = max(1, int(page))
    if filters.status in (DRAFT, IN_REVIEW, REJECTED):
        return _list_revisions(session, filters, page, per_page)
    conds = []
    if filters.kind:
        conds.append(Record.kind == filters.kind)
    if filters.disclosure:
        conds.append(Record.disclosure == filters.disclosure)
    if filters.district:
        conds.append(Record.district == filters.district)
    if filters.q:
        conds.append(Record.title.icontains(filters.q.strip(), autoescape=True))
    if filters.status == "unpaired":
        conds += [Record.kind == "policy", Record.data["interpretation"].as_string().is_(None)]
    total = session.scalar(select(func.count()).select_from(Record).where(*conds)) or 0
    # the page's ids first (sorting narrow rows), then those rows with their data
    ids = list(session.scalars(select(Record.id).where(*conds)
                               .order_by(Record.updated_at.desc(), Record.id.desc())
                               .offset((page - 1) * per_page).limit(per_page)))
    by_id = {r.id: r for r in session.scalars(select(Record).where(Record.id.in_(ids)))}
    records = [by_id[i] for i in ids if i in by_id]
    keys = [(r.kind, r.rid) for r in records]
    published: dict[tuple[str, str], RecordRevision] = {}
    open_: dict[tuple[str, str], RecordRevision] = {}
    if keys:
        for rev in session.scalars(select(RecordRevision).where(
                tuple_(RecordRevision.kind, RecordRevision.rid).in_(keys),
                RecordRevision.state.in_((PUBLISHED, *OPEN_STATES)))):
            (published if rev.state == PUBLISHED else open_)[(rev.kind, rev.rid)] = rev
    rows = []
    for r in records:
        pub, draft = published.get((r.kind, r.rid)), open_.get((r.kind, r.rid))
        rows.append(RecordRow(
            kind=r.kind, rid=r.rid, title=r.title, disclosure=r.disclosure,
            district=r.district, public=bool(r.public), updated_at=_aware(r.updated_at),
            state="live", open_revision=draft.id if draft else None,
            open_state=draft.state if draft else None,
            origin=pub.source if pub is not None else pack.SOURCE_PACK,
            unpaired=_unpaired(r.kind, r.data or {})))
    return RecordPage(tuple(rows), int(total), page, per_page)


def _list_revisions(session: Session, filters: RecordFilters, page: int,
                    per_page: int) -> RecordPage:
    conds = [RecordRevision.state == filters.status]
    if filters.kind:
        conds.append(RecordRevision.kind == filters.kind)
    if filters.disclosure:
        conds.append(RecordRevision.data["disclosure"].as_string() == filters.disclosure)
    if filters.district:
        conds.append(RecordRevision.data["district"].as_string() == filters.district)
    if filters.q:
        conds.append(RecordRevision.title.icontains(filters.q.strip(), autoescape=True))
    total = session.scalar(select(func.count()).select_from(RecordRevision).where(*conds)) or 0
    revs = session.scalars(select(RecordRevision).where(*conds)
                           .order_by(RecordRevision.updated_at.desc(), RecordRevision.id.desc())
                           .offset((page - 1) * per_page).limit(per_page))
    rows = tuple(RecordRow(
        kind=r.kind, rid=r.rid, title=r.title, disclosure=(r.data or {}).get("disclosure"),
        district=(r.data or {}).get("district"), public=None, updated_at=_aware(r.updated_at),
        state=r.state, revision_id=r.id, origin=r.source,
        unpaired=_unpaired(r.kind, r.data or {})) for r in revs)
    return RecordPage(rows, int(total), page, per_page)


def _pairing(session: Session, kind: str, data: dict[str, Any]) -> Pairing:
    title = str(data.get("title") or "")
    if kind == "policy":
        interp = data.get("interpretation") if isinstance(data.get("interpretation"),
                                                          dict) else None
        entries: tuple[RecordRef, ...] = ()
        if title:
            entries = tuple(RecordRef(r.kind, r.rid, r.title) for r in session.scalars(
                select(Record).where(Record.kind == "disclosure",
                                     Record.title.contains(title, autoescape=True),
                                     Record.title.contains(rv.INTERPRETATION_WORD))
                .order_by(Record.rid).limit(20)))
        return Pairing("policy", interp, entries, missing=not interp and not entries)
    if rv.is_interpretation_entry(kind, data):
        name = rv.interpreted_title(title)
        policy = None
        if name:
            row = session.scalar(select(Record).where(
                Record.kind == "policy", Record.title.contains(name, autoescape=True))
                .order_by(Record.rid).limit(1))
            policy = RecordRef(row.kind, row.rid, row.title) if row is not None else None
        return Pairing("interpretation", policy=policy, missing=policy is None)
    return Pairing("")


def get_record(session: Session, actor: Staff, kind: str, rid: str) -> RecordDetail:
    """A live record: fields, where its live version came from, pairing, open draft, history."""
    _check_kind(kind)
    rec = _live(session, kind, rid)
    if rec is None:
        raise NotFound(f"no record {kind}:{rid}")
    revs = list(session.scalars(select(RecordRevision).where(
        RecordRevision.kind == kind, RecordRevision.rid == rid)
        .order_by(RecordRevision.version.desc(), RecordRevision.id.desc())))
    published = next((r for r in revs if r.state == PUBLISHED), None)
    open_rev = next((r for r in revs if r.state in OPEN_STATES), None)
    data = dict(rec.data or {})
    return RecordDetail(
        kind=kind, rid=rid, title=rec.title, data=data, public=bool(rec.public),
        disclosure=rec.disclosure, district=rec.district, created_at=_aware(rec.created_at),
        updated_at=_aware(rec.updated_at), digest=rec.digest, source=_source(rec, published),
        pairing=_pairing(session, kind, data),
        open_revision=RevisionView.of(open_rev) if open_rev is not None else None,
        history=tuple(RevisionView.of(r) for r in revs))


def history(session: Session, actor: Staff, kind: str, rid: str) -> list[RevisionView]:
    """Every version of a record, newest first (pack imports and console edits)."""
    _check_kind(kind)
    return [RevisionView.of(r) for r in session.scalars(select(RecordRevision).where(
        RecordRevision.kind == kind, RecordRevision.rid == rid)
        .order_by(RecordRevision.version.desc(), RecordRevision.id.desc()))]


def get_revision(session: Session, actor: Staff, revision_id: int,
                 districts: tuple[str, ...]) -> RevisionDetail:
    """A revision, its problems, whether it is stale, and its diff against the live record
    (against the version it replaced for a published or older one)."""
    rev = _revision(session, revision_id)
    live = _live(session, rev.kind, rev.rid)
    live_data = dict(live.data) if live is not None else None
    is_open = rev.state in OPEN_STATES
    stale = is_open and (live.digest if live is not None else None) != rev.base_digest
    if is_open:
        before = live_data
    else:
        prev = session.scalar(select(RecordRevision).where(
            RecordRevision.kind == rev.kind, RecordRevision.rid == rev.rid,
            RecordRevision.version < rev.version,
            RecordRevision.state.in_((PUBLISHED, rv.SUPERSEDED)))
            .order_by(RecordRevision.version.desc()).limit(1))
        before = dict(prev.data) if prev is not None else None
    found = tuple(rv.problems(rev.kind, rev.data, districts)) if is_open else ()
    return RevisionDetail(RevisionView.of(rev, _editors(session, rev)), live_data, found,
                          stale, tuple(rv.diff(rev.kind, before, rev.data)))


def compare(session: Session, actor: Staff, kind: str, rid: str, old: int | None,
            new: int | None) -> list[FieldDiff]:
    """Field-by-field diff between two versions of one record (revision ids; None = the live
    record)."""
    _check_kind(kind)

    def data_of(revision_id: int | None) -> dict[str, Any] | None:
        if revision_id is None:
            live = _live(session, kind, rid)
            return dict(live.data) if live is not None else None
        rev = _revision(session, revision_id)
        if (rev.kind, rev.rid) != (kind, rid):
            raise NotFound(f"revision {revision_id} is not a version of {kind}:{rid}")
        return dict(rev.data)

    return rv.diff(kind, data_of(old), data_of(new))


def review_queue(session: Session, actor: Staff) -> list[RevisionView]:
    """Drafts waiting for review that `actor` may decide (not written or edited by them)."""
    out = []
    for rev in session.scalars(select(RecordRevision).where(RecordRevision.state == IN_REVIEW)
                               .order_by(RecordRevision.submitted_at, RecordRevision.id)):
        editors = _editors(session, rev)
        if actor.name not in editors:
            out.append(RevisionView.of(rev, editors))
    return out


# --- writing drafts ---------------------------------------------------------------------


def _clean_rid(data: dict[str, Any]) -> str:
    rid = data.get("id")
    if not isinstance(rid, str) or not rid.strip():
        raise PackInvalid("draft", ["missing required field 'id'"])
    rid = rid.strip()
    if len(rid) > ID_MAX:
        raise PackInvalid("draft", [f"field 'id' is {len(rid)} characters long; at most {ID_MAX}"])
    return rid


def create_draft(session: Session, actor: Staff, kind: str, data: dict[str, Any],
                 now: datetime, from_unanswered: int | None = None) -> RevisionView:
    """A new draft (editors): of a new record, or an edit of the live record with that id
    (started from its current digest). One open draft per record (InvalidTransition)."""
    require_role(actor, Role.EDITOR)
    _check_kind(kind)
    rid = _clean_rid(data)
    data = {**data, "id": rid}
    if from_unanswered is not None and session.get(UnansweredQuery, from_unanswered) is None:
        raise NotFound(f"no unanswered question {from_unanswered}")
    existing = _open_revision(session, kind, rid)
    if existing is not None:
        raise InvalidTransition(f"{kind}:{rid} already has an open draft (#{existing.id}, "
                                f"{rv.STATE_LABELS[existing.state]}); edit that one")
    live = _live(session, kind, rid)
    stamp = to_utc_naive(now)
    rev = RecordRevision(kind=kind, rid=rid, version=_next_version(session, kind, rid),
                         title=rv.title_of(kind, data), data=data, state=DRAFT,
                         source=pack.SOURCE_CONSOLE,
                         base_digest=live.digest if live is not None else None,
                         author=actor.name, from_unanswered=from_unanswered,
                         created_at=stamp, updated_at=stamp)
    session.add(rev)
    session.flush()
    _audit(session, actor, "content_draft_create", now, rev, new_record=live is None)
    return RevisionView.of(rev)


def update_draft(session: Session, actor: Staff, revision_id: int, data: dict[str, Any],
                 now: datetime) -> RevisionView:
    """Replace a draft's fields (editors; a rejected draft becomes a draft again). The id is
    fixed once a draft exists."""
    require_role(actor, Role.EDITOR)
    rev = _revision(session, revision_id, lock=True)
    if rev.state not in EDITABLE_STATES:
        raise InvalidTransition(f"revision {rev.id} is {rev.state}; only a draft or a "
                                f"rejected draft can be edited")
    rev.data = {**data, "id": rev.rid}
    rev.title = rv.title_of(rev.kind, rev.data)
    rev.state = DRAFT
    rev.updated_at = to_utc_naive(now)
    _audit(session, actor, "content_draft_edit", now, rev)
    return RevisionView.of(rev)


def submit(session: Session, actor: Staff, revision_id: int, now: datetime,
           districts: tuple[str, ...]) -> RevisionView:
    """Hand a valid draft to review (editors). PackInvalid lists every problem."""
    require_role(actor, Role.EDITOR)
    rev = _revision(session, revision_id, lock=True)
    if rev.state not in EDITABLE_STATES:
        raise InvalidTransition(f"revision {rev.id} is {rev.state}; only a draft is submitted")
    found = rv.problems(rev.kind, rev.data, districts)
    if found:
        raise PackInvalid(f"{rev.kind}:{rev.rid}", found)
    rev.state, rev.submitted_at = IN_REVIEW, to_utc_naive(now)
    rev.updated_at = rev.submitted_at
    _audit(session, actor, "content_submit", now, rev)
    return RevisionView.of(rev)


def _decider(session: Session, actor: Staff, rev: RecordRevision) -> None:
    """Reviewers decide, never on a draft they wrote or edited."""
    require_role(actor, Role.REVIEWER)
    if actor.name in _editors(session, rev):
        raise PermissionDenied(f"{actor.name} wrote or edited revision {rev.id}; another "
                               f"reviewer must decide")
    if rev.state != IN_REVIEW:
        raise InvalidTransition(f"revision {rev.id} is {rev.state}, not in review")


def approve(session: Session, settings: Settings, actor: Staff, revision_id: int,
            now: datetime, expect: str | None = None) -> PublishResult:
    """Publish a draft in review (reviewers, not its author or an editor of it): writes the
    Record exactly as a pack import does, supersedes the previous version, bumps the content
    revision (citizens' answers change within content_check_seconds) and, like an import,
    drafts a campaign for a changed 主动公开 record. StaleDraft if the live record changed
    since the draft started. `expect` (the console's approve form: RevisionView.digest of
    the page the reviewer read): InvalidTransition if the content changed since (the author
    may re-base, edit and resubmit the same revision while a reviewer has it open)."""
    rev = _revision(session, revision_id, lock=True)
    _decider(session, actor, rev)
    if expect is not None and not hmac.compare_digest(
            content_digest(rev.kind, rev.rid, dict(rev.data or {})), expect.strip().lower()):
        raise InvalidTransition(f"revision {rev.id} changed since you read it; read the "
                                f"new version before you publish it")
    found = rv.problems(rev.kind, rev.data, settings.bot.districts)
    if found:
        raise PackInvalid(f"{rev.kind}:{rev.rid}", found)
    live = _live(session, rev.kind, rev.rid)
    if (live.digest if live is not None else None) != rev.base_digest:
        raise StaleDraft(f"{rev.kind}:{rev.rid} changed since this draft was started; "
                         f"re-base the draft (see the diff) and submit it again")
    created = live is None
    record = pack.write_record(session, rev.kind, rv.entry_of(rev.kind, rev.data), now, live)
    pack.supersede_published(session, rev.kind, [rev.rid])
    stamp = to_utc_naive(now)
    rev.state, rev.reviewer, rev.decided_at, rev.updated_at = PUBLISHED, actor.name, stamp, stamp
    rev.data = dict(record.data)
    session.flush()
    bump_content_revision(session)
    _audit(session, actor, "content_publish", now, rev, created=created,
           public=bool(record.public))
    drafts = (drafts_for_changes(session, settings, now, [record.key])
              if record.public and record.kind != "synonym" else [])
    return PublishResult(RevisionView.of(rev), created, bool(record.public), tuple(drafts))


def reject(session: Session, actor: Staff, revision_id: int, now: datetime,
           reason: str) -> RevisionView:
    """Send a draft in review back to its author with a reason (reviewers)."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidTransition("a rejection needs a reason")
    rev = _revision(session, revision_id, lock=True)
    _decider(session, actor, rev)
    stamp = to_utc_naive(now)
    rev.state, rev.reviewer, rev.reason = REJECTED, actor.name, reason[:2000]
    rev.decided_at = rev.updated_at = stamp
    _audit(session, actor, "content_reject", now, rev, reason=reason[:200])
    return RevisionView.of(rev)


def withdraw(session: Session, actor: Staff, revision_id: int, now: datetime) -> RevisionView:
    """The author (or an admin) pulls an open draft back; it stays in the history."""
    rev = _revision(session, revision_id, lock=True)
    if actor.name != rev.author and actor.role != Role.ADMIN.value:
        raise PermissionDenied(f"only {rev.author} (the author) or an admin withdraws "
                               f"revision {rev.id}")
    if rev.state not in OPEN_STATES:
        raise InvalidTransition(f"revision {rev.id} is {rev.state}; nothing to withdraw")
    rev.state, rev.updated_at = WITHDRAWN, to_utc_naive(now)
    _audit(session, actor, "content_withdraw", now, rev)
    return RevisionView.of(rev)


def rebase(session: Session, actor: Staff, revision_id: int, now: datetime) -> RevisionView:
    """Accept that the live record changed under a stale draft (editors, after reading the
    diff): the draft now starts from the current live version and goes back to draft (it
    must be submitted and reviewed again). The rebaser counts as an editor of it."""
    require_role(actor, Role.EDITOR)
    rev = _revision(session, revision_id, lock=True)
    if rev.state not in OPEN_STATES:
        raise InvalidTransition(f"revision {rev.id} is {rev.state}; only an open draft "
                                f"is re-based")
    live = _live(session, rev.kind, rev.rid)
    rev.base_digest = live.digest if live is not None else None
    rev.state, rev.updated_at = DRAFT, to_utc_naive(now)
    _audit(session, actor, "content_draft_rebase", now, rev)
    return RevisionView.of(rev)


def unanswered_prefill(session: Session, actor: Staff, unanswered_id: int) -> dict[str, Any]:
    """FAQ draft data prefilled from a citizen's unanswered question (question + an id)."""
    row = session.get(UnansweredQuery, unanswered_id)
    if row is None:
        raise NotFound(f"no unanswered question {unanswered_id}")
    base, rid, n = f"faq-q{row.id}", f"faq-q{row.id}", 1
    while (_live(session, "faq", rid) is not None
           or _open_revision(session, "faq", rid) is not None):
        n += 1
        rid = f"{base}-{n}"
    return {"id": rid, "question": row.text}


def draft_from_unanswered(session: Session, actor: Staff, unanswered_id: int,
                          now: datetime) -> RevisionView:
    """A new FAQ draft with the citizen's question as its title (the answer is still to be
    written; the draft goes through review like any other)."""
    require_role(actor, Role.EDITOR)
    data = unanswered_prefill(session, actor, unanswered_id)
    return create_draft(session, actor, "faq", data, now, from_unanswered=unanswered_id)


# --- packs -------------------------------------------------------------------------------


def import_pack(session: Session, settings: Settings, actor: Staff, text: str, now: datetime,
                *, source: str, dry_run: bool = True, prune: bool = False,
                force: bool = False, pack_wins: bool = False) -> ImportOutcome:
    """Import pack text as `qzbot content import` does (all-or-nothing; PackInvalid lists
    every problem). A dry run (any editor) writes nothing and reports what would change;
    the real import publishes without review, so it needs a reviewer or admin; audited."""
    if dry_run:
        require_role(actor, Role.EDITOR, Role.REVIEWER)
    else:
        require_role(actor, Role.REVIEWER)
    doc = pack.parse_pack(text, source)
    report = pack.import_pack(session, doc, source=source, now=now,
                              districts=settings.bot.districts, prune=prune, force=force,
                              pack_wins=pack_wins, dry_run=dry_run, author=actor.name)
    if dry_run:
        return ImportOutcome(report)
    drafts = drafts_for_changes(session, settings, now, report.changed_public)
    audit(session, actor.name, "content_import", now, object_type="pack",
          object_id=source[:160], created=report.created, updated=report.updated,
          pruned=report.pruned, unchanged=report.unchanged,
          kept_console=report.kept_console[:50], pack_wins=pack_wins, prune=prune)
    return ImportOutcome(report, tuple(drafts))


def authorize_export(session: Session, actor: Staff, now: datetime, include_non_public: bool,
                     destination: str) -> None:
    """Check and audit an export: non-public records leave only with an admin, audited as
    `content export --all` is (the edge commits this before it exports)."""
    if include_non_public:
        require_role(actor, Role.ADMIN)
        push_actions.authorize_full_export(session, actor, now, destination)


def export_text(session: Session, actor: Staff, include_non_public: bool) -> str:
    """The records as a pack (TOML); non-public ones only for admins (see authorize_export)."""
    if include_non_public:
        require_role(actor, Role.ADMIN)
    return pack.export_pack(session, include_non_public=include_non_public)
