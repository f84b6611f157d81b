"""Delivery figures for one campaign, read-only: the funnel, channels, reasons, sends per minute.

The console's delivery page, its stats.json and the JSON API (/api/v1) all read these
functions, so a figure means the same wherever staff see it. They must stay fast on a
campaign of 100 000 delivery rows: every figure is one GROUP BY over the
(campaign_id, status) index and returns a handful of rows; no delivery row is loaded into
Python except by `delivery_rows`, the CSV export, which walks them in keyset pages.

The funnel: targeted (a row was planned for every recipient in the audience when the
campaign was sent) -> eligible (not skipped: a channel could be tried) -> sent / failed /
unknown (WeChat's answer) or still open (pending, sending). Skipped rows never reached WeChat:
the recipient unfollowed or unsubscribed since, had no channel (no consent, no open
customer-service window), or the campaign stopped. Times are stored naive UTC; the per-minute
series is labelled in Asia/Shanghai.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from bot.clock import SHANGHAI
from bot.store.models import Campaign, Delivery, DeliveryStatus
from push.campaigns import get_campaign
from push.explain import CHANNEL_LABEL, explain
from push.recovery import OPEN

SENT, FAILED = DeliveryStatus.SENT.value, DeliveryStatus.FAILED.value
SKIPPED, UNKNOWN = DeliveryStatus.SKIPPED.value, DeliveryStatus.UNKNOWN.value
PROBLEM_STATES = (FAILED, SKIPPED, UNKNOWN)
FINISHED_CAMPAIGN = ("done", "cancelled", "stopped")
EXPORT_PAGE = 5000
CSV_HEADER = ("id", "openid", "batch", "status", "channel", "reason", "errcode", "attempts",
              "updated_at")


@dataclass(frozen=True)
class Funnel:
    """targeted -> eligible -> sent / failed / unknown / open; skipped beside eligible."""

    targeted: int
    skipped: int
    eligible: int
    sent: int
    failed: int
    unknown: int
    open: int
    audience_preview: int | None  # counted at submission/approval, for comparison


@dataclass(frozen=True)
class ProblemGroup:
    """Rows that failed, were skipped or ended unknown, grouped by reason and errcode."""

    status: str
    reason: str | None
    errcode: int | None
    count: int
    explanation: str


@dataclass(frozen=True)
class DeliveryReport:
    """Everything the delivery page shows, from four GROUP BY queries."""

    campaign_id: int
    status: str
    finished: bool  # the campaign will send nothing more (the page stops refreshing)
    funnel: Funnel
    channels: dict[str, dict[str, int]]  # channel -> status -> rows
    problems: list[ProblemGroup]
    per_minute: list[dict[str, Any]] = field(default_factory=list)
    started_at: datetime | None = None  # aware UTC; the page's live fragment shows them
    finished_at: datetime | None = None


def _by_status_channel(session: Session, campaign_id: int) -> list[tuple[str, str | None, int]]:
    return [(s, c, int(n)) for s, c, n in session.execute(
        select(Delivery.status, Delivery.channel, func.count())
        .where(Delivery.campaign_id == campaign_id)
        .group_by(Delivery.status, Delivery.channel)).all()]


def funnel_of(rows: list[tuple[str, str | None, int]], audience_preview: int | None) -> Funnel:
    """The funnel from (status, channel, count) rows."""
    per: dict[str, int] = {}
    for status, _, n in rows:
        per[status] = per.get(status, 0) + n
    targeted = sum(per.values())
    skipped = per.get(SKIPPED, 0)
    return Funnel(targeted=targeted, skipped=skipped, eligible=targeted - skipped,
                  sent=per.get(SENT, 0), failed=per.get(FAILED, 0),
                  unknown=per.get(UNKNOWN, 0), open=sum(per.get(s, 0) for s in OPEN),
                  audience_preview=audience_preview)


def channels_of(rows: list[tuple[str, str | None, int]]) -> dict[str, dict[str, int]]:
    """channel -> status -> rows, for rows that were given a channel (skipped rows have none)."""
    out: dict[str, dict[str, int]] = {}
    for status, channel, n in rows:
        if channel:
            out.setdefault(channel, {})
            out[channel][status] = out[channel].get(status, 0) + n
    return dict(sorted(out.items()))


def problems(session: Session, campaign_id: int) -> list[ProblemGroup]:
    """Failed, skipped and unknown rows by (status, reason, errcode), largest group first."""
    found = session.execute(
        select(Delivery.status, Delivery.reason, Delivery.errcode, func.count())
        .where(Delivery.campaign_id == campaign_id, Delivery.status.in_(PROBLEM_STATES))
        .group_by(Delivery.status, Delivery.reason, Delivery.errcode)).all()
    groups = [ProblemGroup(status, reason, errcode, int(n), explain(reason, errcode))
              for status, reason, errcode, n in found]
    return sorted(groups, key=lambda g: (-g.count, g.status, g.reason or "", g.errcode or 0))


def _minute(session: Session) -> ColumnElement[str]:
    """updated_at truncated to the minute, as text 'YYYY-MM-DD HH:MM' (UTC)."""
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.date_trunc("minute", Delivery.updated_at), "YYYY-MM-DD HH24:MI")
    # SQLite stores DateTime as text "YYYY-MM-DD HH:MM:SS.ffffff": its first 16 characters
    # are the minute (cheaper than strftime on 100 000 rows)
    return func.substr(Delivery.updated_at, 1, 16)


def per_minute(session: Session, campaign_id: int) -> list[dict[str, Any]]:
    """Sends per minute: [{"minute": "2026-11-27T10:01+08:00", "sent": n, "failed": n,
    "unknown": n}], oldest first (minutes without an answer are left out)."""
    bucket = _minute(session).label("minute")
    found = session.execute(
        select(bucket, Delivery.status, func.count())
        .where(Delivery.campaign_id == campaign_id,
               Delivery.status.in_((SENT, FAILED, UNKNOWN)), Delivery.updated_at.is_not(None))
        .group_by(bucket, Delivery.status)).all()
    series: dict[str, dict[str, Any]] = {}
    for minute, status, n in found:
        at = datetime.strptime(minute, "%Y-%m-%d %H:%M").replace(tzinfo=UTC).astimezone(SHANGHAI)
        label = at.isoformat(timespec="minutes")
        point = series.setdefault(label, {"minute": label, SENT: 0, FAILED: 0, UNKNOWN: 0})
        point[status] += int(n)
    return [series[k] for k in sorted(series)]


def delivery_report(session: Session, campaign_id: int, *,
                    series: bool = True) -> DeliveryReport:
    """The delivery page's figures (NotFound for an unknown campaign). series=False leaves
    `per_minute` empty: the page and its 3-second progress fragment do not show it (the
    charts fetch stats.json), and it is the dearest of the GROUP BYs."""
    campaign = get_campaign(session, campaign_id)
    rows = _by_status_channel(session, campaign_id)
    f = funnel_of(rows, campaign.audience_preview)
    finished = campaign.status in FINISHED_CAMPAIGN and f.open == 0
    return DeliveryReport(campaign_id=campaign.id, status=campaign.status, finished=finished,
                          funnel=f, channels=channels_of(rows),
                          problems=problems(session, campaign_id),
                          per_minute=per_minute(session, campaign_id) if series else [],
                          started_at=_aware(campaign.started_at),
                          finished_at=_aware(campaign.finished_at))


def _aware(at: datetime | None) -> datetime | None:
    return at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at


def stats(session: Session, campaign_id: int) -> dict[str, Any]:
    """The delivery figures as JSON-ready data (console stats.json, API /api/v1):

    {"campaign_id", "status", "finished",
     "funnel": {targeted, skipped, eligible, sent, failed, unknown, open, audience_preview},
     "channels": [{"channel", "label", "counts": {status: n}}],
     "reasons": [{"status", "reason", "errcode", "count", "explanation"}],
     "per_minute": [{"minute", "sent", "failed", "unknown"}]}
    """
    report = delivery_report(session, campaign_id)
    return {"campaign_id": report.campaign_id, "status": report.status,
            "finished": report.finished, "funnel": asdict(report.funnel),
            "channels": [{"channel": ch, "label": CHANNEL_LABEL.get(ch, ch), "counts": counts}
                         for ch, counts in report.channels.items()],
            "reasons": [asdict(g) for g in report.problems],
            "per_minute": report.per_minute}


def mask_openid(openid: str) -> str:
    """first 4 + *** + last 4 (what non-admins see of a citizen's openid)."""
    if len(openid) <= 8:
        return "***"
    return f"{openid[:4]}***{openid[-4:]}"


def delivery_rows(session: Session, campaign_id: int, *, masked: bool = True,
                  page: int = EXPORT_PAGE) -> Iterator[tuple[Any, ...]]:
    """The campaign's delivery rows in id order (CSV_HEADER columns), fetched `page` rows at a
    time by keyset pagination; openids masked unless `masked` is False; times Asia/Shanghai."""
    after = 0
    columns = (Delivery.id, Delivery.openid, Delivery.batch, Delivery.status, Delivery.channel,
               Delivery.reason, Delivery.errcode, Delivery.attempts, Delivery.updated_at)
    while True:
        chunk = session.execute(select(*columns).where(
            Delivery.campaign_id == campaign_id, Delivery.id > after)
            .order_by(Delivery.id).limit(page)).all()
        for row in chunk:
            at = row.updated_at
            shown = (at.replace(tzinfo=UTC).astimezone(SHANGHAI).isoformat(timespec="seconds")
                     if at is not None else "")
            yield (row.id, mask_openid(row.openid) if masked else row.openid, row.batch,
                   row.status, row.channel or "", row.reason or "",
                   "" if row.errcode is None else row.errcode, row.attempts, shown)
        if len(chunk) < page:
            return
        after = chunk[-1].id


def campaign_exists(session: Session, campaign_id: int) -> bool:
    """True if the campaign exists (cheap: the primary key)."""
    return session.scalar(select(Campaign.id).where(Campaign.id == campaign_id)) is not None
