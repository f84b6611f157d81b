"""Read-only figures for the console (issue 9 items 6-7): citizens' questions and the audit log.

- Question outcomes per Asia/Shanghai day (question_counts, written by the webhook's
  deferred buffer, bot/presence.Unanswered): today and this week, with shares.
- Unanswered questions by frequency (unanswered_queries), paged.
- Subscribers per topic and per topic x district (reused for a minute: they read every
  subscription); consent-ledger figures per template.
- The audit log: a filter (actor, action, object, campaign, Asia/Shanghai date range), keyset
  pages newest first (fast at 100 000 entries: the id primary key, and the at / actor /
  object indexes), and CSV rows; `export_audit` authorises and audits the export itself.

Personal data: openids are shown whole to admins only. `mask_openid` keeps the first and last
four characters; `mask_detail` masks them inside audit details (under any key that names an
openid, and any string shaped like a WeChat openid). Everything here returns small frozen
views or plain values, never ORM objects; nothing commits (the edge owns the transaction).
"""

from __future__ import annotations

import json
import re
import weakref
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta
from time import monotonic
from typing import Any

from sqlalchemy import ColumnElement, Engine, and_, case, func, select
from sqlalchemy.orm import Session

from bot.clock import SHANGHAI, to_utc_naive
from bot.settings import Settings
from bot.store.models import (
    AuditEntry,
    Follower,
    QuestionCount,
    Role,
    Staff,
    Subscription,
    UnansweredQuery,
)
from bot.vocab import OUTCOME_LABELS, TOPIC_ORDER, QuestionOutcome
from push.audit import audit, shown_at
from push.consent.ledger import ledger_counts, template_topic
from push.staff import require_role

AUDIT_PAGE = 50
UNANSWERED_PAGE = 50
EXPORT_LIMIT = 100_000  # rows in one CSV export (the filter narrows a bigger log)
# searched questions: answered (one record or a list to choose from) or not
SEARCHED = (QuestionOutcome.ANSWER.value, QuestionOutcome.LIST.value,
            QuestionOutcome.FALLBACK.value)
ANY_DISTRICT = "全市（不限区县）"

# --- openids ---------------------------------------------------------------------------------

# A WeChat openid: 28 characters of [A-Za-z0-9_-], beginning "o" (observed; the platform
# documents no format), so a detail string like that is masked even under an innocent key.
_OPENID = re.compile(r"(?<![A-Za-z0-9_-])o[A-Za-z0-9_-]{27}(?![A-Za-z0-9_-])")


def mask_openid(openid: str) -> str:
    """First 4 + *** + last 4 characters ("oyOR***f0rs"); short values become "***"."""
    return f"{openid[:4]}***{openid[-4:]}" if len(openid) > 8 else "***"


def _mask_value(value: Any, named: bool) -> Any:
    if isinstance(value, str):
        return mask_openid(value) if named else _OPENID.sub(lambda m: mask_openid(m[0]), value)
    if isinstance(value, list | tuple):
        return [_mask_value(v, named) for v in value]
    if isinstance(value, dict):
        return {k: _mask_value(v, named or "openid" in str(k).lower()) for k, v in value.items()}
    return value


def mask_detail(detail: Any, full: bool) -> Any:
    """An audit detail as a viewer may see it: whole for admins (`full`), openids masked
    for everyone else."""
    return detail if full else _mask_value(detail, False)


def sees_openids(staff: Staff) -> bool:
    """Only admins see whole openids."""
    return staff.role == Role.ADMIN.value


# --- question outcomes -----------------------------------------------------------------------


@dataclass(frozen=True)
class OutcomeRow:
    """One outcome's count in a period and its share of all questions then (0..1)."""

    outcome: str
    label: str
    count: int
    share: float


@dataclass(frozen=True)
class OutcomePeriod:
    """A period's question outcomes (days in Asia/Shanghai, inclusive)."""

    name: str
    first_day: str
    last_day: str
    total: int
    rows: tuple[OutcomeRow, ...]
    # of the questions searched (answer, list, fallback): the share answered or listed
    answered_rate: float | None

    def count(self, outcome: str) -> int:
        """The count of one outcome (0 when none)."""
        return next((r.count for r in self.rows if r.outcome == outcome), 0)


def shanghai_day(now: datetime) -> date:
    """The Asia/Shanghai calendar day of an aware (or naive local) time."""
    return now.astimezone(SHANGHAI).date() if now.tzinfo else now.date()


def outcome_period(session: Session, name: str, first: date, last: date) -> OutcomePeriod:
    """Question outcomes summed over the days first..last (Asia/Shanghai)."""
    stmt = (select(QuestionCount.outcome, func.sum(QuestionCount.count))
            .where(QuestionCount.day >= first.isoformat(), QuestionCount.day <= last.isoformat())
            .group_by(QuestionCount.outcome))
    counts = {outcome: int(n or 0) for outcome, n in session.execute(stmt)}
    total = sum(counts.values())
    order = [o.value for o in QuestionOutcome]
    rows = tuple(OutcomeRow(o, OUTCOME_LABELS.get(o, o), n, n / total if total else 0.0)
                 for o, n in sorted(counts.items(),
                                    key=lambda kv: (order.index(kv[0]) if kv[0] in order
                                                    else len(order), kv[0])))
    searched = sum(counts.get(o, 0) for o in SEARCHED)
    answered = searched - counts.get(QuestionOutcome.FALLBACK.value, 0)
    return OutcomePeriod(name, first.isoformat(), last.isoformat(), total, rows,
                         answered / searched if searched else None)


def question_periods(session: Session, now: datetime) -> tuple[OutcomePeriod, OutcomePeriod]:
    """Today's and this week's (Monday to today, Asia/Shanghai) question outcomes."""
    today = shanghai_day(now)
    monday = today - timedelta(days=today.weekday())
    return (outcome_period(session, "今天", today, today),
            outcome_period(session, "本周", monday, today))


# --- unanswered questions -------------------------------------------------------------------


@dataclass(frozen=True)
class UnansweredView:
    """An unanswered question, aggregated by text; times aware UTC."""

    id: int
    text: str
    count: int
    first_at: datetime
    last_at: datetime


def unanswered_page(session: Session, page: int = 1, per_page: int = UNANSWERED_PAGE
                    ) -> tuple[list[UnansweredView], bool]:
    """One page of unanswered questions, most frequent first; (rows, has a next page)."""
    page = max(1, page)
    stmt = (select(UnansweredQuery)
            .order_by(UnansweredQuery.count.desc(), UnansweredQuery.last_at.desc(),
                      UnansweredQuery.id)
            .limit(per_page + 1).offset((page - 1) * per_page))
    found = list(session.scalars(stmt))
    rows = [UnansweredView(q.id, q.text, q.count, _aware(q.first_at), _aware(q.last_at))
            for q in found[:per_page]]
    return rows, len(found) > per_page


def _aware(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


# --- subscribers and consent ------------------------------------------------------------------


@dataclass(frozen=True)
class TopicFigures:
    """Subscribers of a topic: citizens with any subscription to it, those still reachable
    (following, not 全部退订), and the reachable ones per district ("" = any district)."""

    topic: str
    citizens: int
    reachable: int
    districts: tuple[tuple[str, int], ...]


SUBSCRIBERS_TTL = 60.0  # seconds the subscriber figures are reused (see subscriber_figures)
_subscribers_cache: weakref.WeakKeyDictionary[Engine, tuple[float, list[TopicFigures]]] = \
    weakref.WeakKeyDictionary()


def _reach_counts(session: Session, *columns: str) -> list[tuple]:
    """(*columns, reachable 0/1, citizens) over the distinct (openid, *columns) of the
    subscriptions: DISTINCT on a prefix of the unique key (openid, topic, district, ...)
    reads its index in order, cheaper than COUNT(DISTINCT) per group."""
    cols = [getattr(Subscription, c) for c in columns]
    pairs = select(Subscription.openid, *cols).distinct().subquery()
    reach = case((and_(Follower.active.is_(True), Follower.opted_out_at.is_(None)), 1),
                 else_=0)
    keys = [pairs.c[c] for c in columns]
    stmt = (select(*keys, reach, func.count())
            .select_from(pairs.outerjoin(Follower, Follower.openid == pairs.c.openid))
            .group_by(*keys, reach))
    return [tuple(row) for row in session.execute(stmt)]


def subscriber_figures(session: Session, fresh: bool = False) -> list[TopicFigures]:
    """Subscriber counts per topic (in the order citizens see topics) and district.

    Reachable = following and not 全部退订 (as push.audience). The figures read every
    subscription (about 0.3 s at 50 000 citizens on SQLite), so they are reused for
    SUBSCRIBERS_TTL seconds per database and process (`fresh` recomputes): the page says so.
    """
    engine = session.get_bind()
    cached = _subscribers_cache.get(engine)  # type: ignore[call-overload]
    if cached is not None and not fresh and cached[0] > monotonic():
        return cached[1]
    citizens: dict[str, int] = {}
    reachable: dict[str, int] = {}
    for topic, reach, n in _reach_counts(session, "topic"):
        citizens[topic] = citizens.get(topic, 0) + n
        if reach:
            reachable[topic] = reachable.get(topic, 0) + n
    per_district: dict[str, list[tuple[str, int]]] = {}
    for topic, district, reach, n in _reach_counts(session, "topic", "district"):
        if reach:
            per_district.setdefault(topic, []).append((district or ANY_DISTRICT, int(n)))
    topics = [t for t in TOPIC_ORDER if t in citizens] + sorted(set(citizens) - set(TOPIC_ORDER))
    figures = [TopicFigures(t, citizens[t], reachable.get(t, 0),
                            tuple(sorted(per_district.get(t, []), key=lambda d: (-d[1], d[0]))))
               for t in topics]
    _subscribers_cache[engine] = (monotonic() + SUBSCRIBERS_TTL, figures)  # type: ignore[index]
    return figures


@dataclass(frozen=True)
class ConsentFigures:
    """The consent ledger of one template: available long-term and one-time grants, one-time
    grants used by sends, and revoked rows; `topic` when the template is configured."""

    template_id: str
    topic: str | None
    long_term: int
    one_time: int
    used: int
    revoked: int


def consent_figures(session: Session, settings: Settings) -> list[ConsentFigures]:
    """Consent-ledger figures per template (configured topics first)."""
    rows = [ConsentFigures(tid, template_topic(settings, tid), c["long_term"], c["one_time"],
                           c["used"], c["revoked"])
            for tid, c in ledger_counts(session).items()]
    order = {t: i for i, t in enumerate(TOPIC_ORDER)}
    return sorted(rows, key=lambda r: (order.get(r.topic or "", len(order)), r.template_id))


# --- the audit log ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditFilter:
    """What the audit page filters by; empty fields filter nothing. Dates are Asia/Shanghai
    calendar days, both inclusive. Object "campaign" + id filters by campaign id."""

    actor: str = ""
    action: str = ""
    object_type: str = ""
    object_id: str = ""
    since: date | None = None
    until: date | None = None

    def as_detail(self) -> dict[str, str]:
        """The filter as plain values (for the export's own audit entry, and links)."""
        return {k: (v.isoformat() if isinstance(v, date) else v)
                for k, v in asdict(self).items() if v}


def parse_filter(args: dict[str, str]) -> tuple[AuditFilter, list[str]]:
    """A filter from the page's query parameters; unreadable values are listed as errors
    (in Chinese) and left out."""
    errors: list[str] = []

    def day(name: str, label: str) -> date | None:
        value = (args.get(name) or "").strip()
        if not value:
            return None
        try:
            found = date.fromisoformat(value)
        except ValueError:
            found = None
        if found is None or not 2000 <= found.year <= 2100:
            errors.append(f"{label}日期格式应为 年-月-日（如 2026-11-27）")
            return None
        return found

    object_type = (args.get("object_type") or "").strip()[:32]
    object_id = (args.get("object_id") or "").strip()[:160]
    number = object_id.isascii() and object_id.isdigit() and len(object_id) <= 9
    if object_type == "campaign" and object_id and not number:
        errors.append("推送编号应为数字")
        object_id = ""
    flt = AuditFilter(actor=(args.get("actor") or "").strip()[:64],
                      action=(args.get("action") or "").strip()[:32],
                      object_type=object_type, object_id=object_id,
                      since=day("since", "起始"), until=day("until", "截止"))
    return flt, errors


def _day_start(day: date) -> datetime:
    return to_utc_naive(datetime.combine(day, time(0), tzinfo=SHANGHAI))


def _conditions(flt: AuditFilter) -> list[ColumnElement[bool]]:
    found: list[ColumnElement[bool]] = []
    if flt.actor:
        found.append(AuditEntry.actor == flt.actor)
    if flt.action:
        found.append(AuditEntry.action == flt.action)
    if flt.object_type == "campaign":
        found.append(AuditEntry.campaign_id.is_not(None))
        if flt.object_id:
            found.append(AuditEntry.campaign_id == int(flt.object_id))
    elif flt.object_type:
        found.append(AuditEntry.object_type == flt.object_type)
        if flt.object_id:
            found.append(AuditEntry.object_id == flt.object_id)
    elif flt.object_id:  # an id without a type: any object of that id
        found.append(AuditEntry.object_id == flt.object_id)
    if flt.since:
        found.append(AuditEntry.at >= _day_start(flt.since))
    if flt.until:
        found.append(AuditEntry.at < _day_start(flt.until + timedelta(days=1)))
    return found


@dataclass(frozen=True)
class AuditRow:
    """An audit entry as a viewer may see it: time shown in Asia/Shanghai, detail masked."""

    id: int
    at: str
    actor: str
    action: str
    object_type: str
    object_id: str
    detail: str  # JSON text (escaped when rendered)


def _row(entry: AuditEntry, full: bool) -> AuditRow:
    if entry.campaign_id is not None:
        object_type, object_id = "campaign", str(entry.campaign_id)
    else:
        object_type, object_id = entry.object_type or "", entry.object_id or ""
    if object_id and not full:
        object_id = _mask_value(object_id, object_type in ("follower", "openid"))
    detail = json.dumps(mask_detail(entry.detail or {}, full), ensure_ascii=False,
                        sort_keys=True, default=str)
    return AuditRow(entry.id, shown_at(entry.at), entry.actor, entry.action, object_type,
                    object_id, detail)


def audit_page(session: Session, viewer: Staff, flt: AuditFilter, before: int | None = None,
               per_page: int = AUDIT_PAGE) -> tuple[list[AuditRow], int | None]:
    """One page of the filtered log, newest first; (rows, the `before` of the next page or
    None). Keyset paging on the id: as fast on the last page as on the first."""
    require_role(viewer, Role.REVIEWER)
    stmt = select(AuditEntry).where(*_conditions(flt))
    if before is not None:
        stmt = stmt.where(AuditEntry.id < before)
    found = list(session.scalars(stmt.order_by(AuditEntry.id.desc()).limit(per_page + 1)))
    full = sees_openids(viewer)
    rows = [_row(e, full) for e in found[:per_page]]
    return rows, (rows[-1].id if len(found) > per_page else None)


CSV_HEADER = ("编号", "时间", "操作人", "操作", "对象类型", "对象编号", "详情")


@dataclass(frozen=True)
class AuditExport:
    """An authorised, audited export: what to write (`export_rows`) and for whom."""

    filter: AuditFilter
    full_openids: bool


def export_audit(session: Session, viewer: Staff, flt: AuditFilter, now: datetime
                 ) -> AuditExport:
    """Authorise and audit a CSV export of the filtered log (action "audit_export" with the
    filter). The caller commits the entry, then writes `export_rows` (in any session)."""
    require_role(viewer, Role.REVIEWER)
    audit(session, viewer.name, "audit_export", now, object_type="audit_log",
          object_id=None, filter=flt.as_detail())
    return AuditExport(flt, sees_openids(viewer))


def export_rows(session: Session, export: AuditExport) -> Iterator[tuple[str, ...]]:
    """The export's CSV rows: the header, then the filtered entries newest first (at most
    EXPORT_LIMIT), read in chunks."""
    yield CSV_HEADER
    stmt = (select(AuditEntry).where(*_conditions(export.filter))
            .order_by(AuditEntry.id.desc()).limit(EXPORT_LIMIT)
            .execution_options(yield_per=1000))
    for entry in session.scalars(stmt):
        r = _row(entry, export.full_openids)
        yield tuple(_cell(v) for v in (str(r.id), r.at, r.actor, r.action, r.object_type,
                                       r.object_id, r.detail))


def _cell(value: str) -> str:
    """A CSV cell a spreadsheet will not run as a formula (=, +, -, @ lead a formula)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def audit_object_types(session: Session) -> list[str]:
    """Object types present in the log (for the filter's choices), "campaign" first."""
    found = session.scalars(select(AuditEntry.object_type).distinct()
                            .where(AuditEntry.object_type.is_not(None)))
    return ["campaign", *sorted(t for t in found if t and t != "campaign")]
