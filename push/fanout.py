"""The planner and the campaign's ledger-level transitions.

`plan_fanout` marks a due approved/scheduled campaign `sending` and inserts one delivery
row per recipient (unique per campaign and openid: INSERT ... ON CONFLICT DO NOTHING)
in chunks of `batch_size`, walking the audience by keyset pagination; each chunk is one
batch, committed, then handed to `on_batch` (which enqueues its job: after commit). It is
idempotent and resumable: a re-run continues after the highest openid already planned.
Once every row exists an audit entry `fanout_planned` says so; only then can the
campaign become `done` (`finish_if_done`), when no row is pending or sending.
Send-time truth (push.sendcheck): `send_time_check` runs when the campaign starts and
before every chunk is planned (and in push.deliver before and during every batch); a
record no longer 主动公开 or past its end stops the campaign, a change since approval
sends it back to review.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import exists, func, or_, select, update
from sqlalchemy.orm import Session

from bot.clock import to_utc_naive
from bot.runtime import Runtime
from bot.settings import Settings
from bot.store.db import transaction
from bot.store.models import Campaign, CampaignStatus, Delivery, DeliveryStatus
from bot.store.queries import upsert_insert
from push.audience import audience_page
from push.audit import SYSTEM, audit
from push.recovery import DUE, HALTED, OPEN, PLANNED, Lease, is_planned, lease_key
from push.review import recheck
from push.sendcheck import STOP_REASONS, record_problem

log = logging.getLogger("qzbot.push.fanout")
SENDING = CampaignStatus.SENDING.value


class RunState(StrEnum):
    """How a planner run (PlanReport) or a batch run (push.deliver.BatchReport) ended, and
    what halts a batch; the job results and logs carry it. Never stored in the database."""

    SENDING = "sending"  # planner: the campaign is sending, its rows planned so far
    DONE = "done"  # batch: no open row left
    BUSY = "busy"  # another worker holds the lease
    MISSING = "missing"  # no such campaign
    NOT_DUE = "not_due"  # planner: approved or scheduled, not due yet
    HALTED = "halted"  # the campaign is no longer sending (stopped, cancelled, an error)
    STOPPED = "stopped"  # send-time truth: a record is no longer visible (push.sendcheck)
    BACK_TO_REVIEW = "back_to_review"  # changed since approval (push.review.recheck)
    LEASE_LOST = "lease_lost"  # the lease was taken over: stop claiming
    BACKOFF = "backoff"  # batch: a channel quota is paused; resumes later
    RETRY = "retry"  # batch: WeChat unreachable; resumes after retry_delay
    QUIET = "quiet"  # batch: waits for the end of quiet hours


@dataclass
class PlanReport:
    """What one planner run did: a RunState, or the status of a campaign that is not due."""

    state: RunState | CampaignStatus
    rows: int = 0
    batches: int = 0


def start_campaign(session: Session, campaign_id: int, now: datetime) -> Campaign | None:
    """approved/scheduled and due -> sending (once); the campaign if it is sending now."""
    at = to_utc_naive(now)
    result = session.execute(update(Campaign).where(
        Campaign.id == campaign_id, Campaign.status.in_(DUE),
        or_(Campaign.send_at.is_(None), Campaign.send_at <= at)).values(
        status=SENDING, started_at=at, updated_at=at))
    if result.rowcount:
        audit(session, SYSTEM, "sending", now, campaign_id=campaign_id)
        log.info("campaign %s: sending", campaign_id)
    campaign = session.get(Campaign, campaign_id, populate_existing=True)
    return campaign if campaign is not None and campaign.status == SENDING else None


def insert_rows(session: Session, campaign_id: int, batch: int, openids: list[str],
                now: datetime) -> int:
    """One pending row per openid; rows that exist already are left alone."""
    if not openids:
        return 0
    at = to_utc_naive(now)
    stmt = upsert_insert(session, Delivery.__table__).on_conflict_do_nothing(
        index_elements=["campaign_id", "openid"])
    rows = [{"campaign_id": campaign_id, "openid": o, "batch": batch,
             "status": DeliveryStatus.PENDING.value, "attempts": 0, "updated_at": at}
            for o in openids]
    return len(session.execute(stmt.returning(Delivery.__table__.c.id), rows).all())


def _resume_point(session: Session, campaign_id: int) -> tuple[int, str | None]:
    """(highest batch, highest openid) planned so far, in the database's own ordering."""
    row = session.execute(select(func.max(Delivery.batch), func.max(Delivery.openid))
                          .where(Delivery.campaign_id == campaign_id)).one()
    return int(row[0] or 0), row[1]


def open_batches(session: Session, campaign_id: int) -> list[int]:
    """Batches of the campaign that still have pending or sending rows."""
    return list(session.scalars(select(Delivery.batch).where(
        Delivery.campaign_id == campaign_id, Delivery.status.in_(OPEN))
        .group_by(Delivery.batch).order_by(Delivery.batch)))


def plan_fanout(rt: Runtime, campaign_id: int,
                on_batch: Callable[[int], None]) -> PlanReport:
    """Start the campaign if due and plan every delivery row; `on_batch(n)` after each commit."""
    lease = Lease(rt.redis, lease_key(campaign_id), rt.settings.push.lease_seconds)
    if not lease.acquire():
        return PlanReport(RunState.BUSY)
    with lease:
        with transaction(rt.sessions) as session:
            campaign = start_campaign(session, campaign_id, rt.now())
            if campaign is None:
                found = session.get(Campaign, campaign_id)
                if found is None:
                    return PlanReport(RunState.MISSING)
                return PlanReport(RunState.NOT_DUE if found.status in DUE
                                  else CampaignStatus(found.status))
            halt = send_time_check(session, rt.settings, campaign, rt.now())
            if halt is not None:
                return PlanReport(halt)
            planned = is_planned(session, campaign_id)
            batch, cursor = _resume_point(session, campaign_id)
            resumed = open_batches(session, campaign_id) if batch else []
        for number in resumed:  # a previous planner may have died before enqueueing these
            on_batch(number)
        report = PlanReport(RunState.SENDING, batches=batch)
        if not planned:
            _plan_chunks(rt, campaign_id, batch, cursor, lease, on_batch, report)
        with transaction(rt.sessions) as session:
            finish_if_done(session, campaign_id, rt.now())
        return report


def _plan_chunks(rt: Runtime, campaign_id: int, batch: int, cursor: str | None,
                 lease: Lease, on_batch: Callable[[int], None], report: PlanReport) -> None:
    """Insert chunk after chunk; each chunk is committed, then its batch enqueued."""
    size = rt.settings.push.batch_size
    while not lease.lost.is_set():
        with transaction(rt.sessions) as session:
            campaign = session.get(Campaign, campaign_id, populate_existing=True)
            if campaign is None or campaign.status != SENDING:
                report.state = RunState.HALTED
                return
            halt = send_time_check(session, rt.settings, campaign, rt.now())
            if halt is not None:
                report.state = halt
                return
            page = audience_page(session, campaign, cursor, size)
            if not page:
                audit(session, SYSTEM, PLANNED, rt.now(), campaign_id=campaign_id,
                      rows=report.rows, batches=batch)
                log.info("campaign %s: planned %d rows in %d batches", campaign_id,
                         report.rows, batch)
                return
            batch += 1
            report.rows += insert_rows(session, campaign_id, batch, page, rt.now())
        cursor = page[-1]
        report.batches = batch
        on_batch(batch)
    report.state = RunState.LEASE_LOST


def finish_if_done(session: Session, campaign_id: int, now: datetime) -> bool:
    """sending -> done when every row is planned and none is pending or sending."""
    if not is_planned(session, campaign_id):
        return False
    if session.scalar(select(exists().where(Delivery.campaign_id == campaign_id,
                                            Delivery.status.in_(OPEN)))):
        return False
    at = to_utc_naive(now)
    result = session.execute(update(Campaign).where(
        Campaign.id == campaign_id, Campaign.status == SENDING).values(
        status=CampaignStatus.DONE.value, finished_at=at, updated_at=at))
    if not result.rowcount:
        return False
    counts = campaign_counts(session, campaign_id)
    audit(session, SYSTEM, "done", now, campaign_id=campaign_id, status=counts["status"],
          reason=counts["reason"])
    log.info("campaign %s: done %s", campaign_id, counts["status"])
    return True


def send_time_check(session: Session, settings: Settings, campaign: Campaign,
                    now: datetime) -> RunState | None:
    """None while a sending campaign may go on; else STOPPED (a record is no longer
    visible: stopped, audited, rows skipped) or BACK_TO_REVIEW (changed since approval)."""
    problem = record_problem(session, campaign, now)
    if problem is not None:
        reason, key = problem
        if stop_campaign(session, campaign.id, reason, now, skip_reason=reason, record=key):
            log.warning("campaign %s stopped: %s (%s)", campaign.id, reason, key)
        return RunState.STOPPED
    if not recheck(session, settings, campaign, now):  # it audited the way back to review
        log.warning("campaign %s changed since approval: back to review", campaign.id)
        return RunState.BACK_TO_REVIEW
    return None


def stop_campaign(session: Session, campaign_id: int, reason: str, now: datetime,
                  skip_reason: str = "campaign_stopped", **detail: Any) -> bool:
    """sending -> stopped (a campaign-level error), audited as the system; the rows not
    sent are skipped (`skip_reason`). True when this call stopped it (the caller alerts)."""
    at = to_utc_naive(now)
    result = session.execute(update(Campaign).where(
        Campaign.id == campaign_id, Campaign.status.in_((SENDING, *DUE))).values(
        status=CampaignStatus.STOPPED.value, stop_reason=reason[:500], finished_at=at,
        updated_at=at))
    if result.rowcount:
        audit(session, SYSTEM, "stopped", now, campaign_id=campaign_id, reason=reason[:200],
              **detail)
    skip_remaining(session, campaign_id, skip_reason, now)
    return bool(result.rowcount)


def skip_remaining(session: Session, campaign_id: int, reason: str, now: datetime) -> int:
    """Pending rows of a halted campaign become skipped with `reason` (never dropped)."""
    result = session.execute(update(Delivery).where(
        Delivery.campaign_id == campaign_id,
        Delivery.status == DeliveryStatus.PENDING.value).values(
        status=DeliveryStatus.SKIPPED.value, reason=reason, updated_at=to_utc_naive(now)))
    return result.rowcount or 0


def halt_reason(status: str, stop_reason: str | None) -> str:
    """The skip reason of a halted campaign's unsent rows: a send-time truth reason
    (record_not_public / record_expired) or campaign_<status>."""
    return stop_reason if stop_reason in STOP_REASONS else f"campaign_{status}"


def close_if_halted(session: Session, campaign_id: int, now: datetime) -> int:
    """A stopped or cancelled campaign: its rows not yet sent are skipped, not dropped."""
    found = session.execute(select(Campaign.status, Campaign.stop_reason).where(
        Campaign.id == campaign_id)).first()
    if found is None or found.status not in HALTED:
        return 0
    return skip_remaining(session, campaign_id, halt_reason(*found), now)


def campaign_counts(session: Session, campaign_id: int) -> dict[str, Any]:
    """Progress: rows per status, per reason, per errcode and per channel."""
    rows = session.execute(select(Delivery.status, Delivery.reason, Delivery.errcode,
                                  Delivery.channel, func.count())
                           .where(Delivery.campaign_id == campaign_id)
                           .group_by(Delivery.status, Delivery.reason, Delivery.errcode,
                                     Delivery.channel)).all()
    by: dict[str, Counter] = {k: Counter() for k in ("status", "reason", "errcode", "channel")}
    total = 0
    for status, reason, errcode, channel, n in rows:
        total += n
        by["status"][status] += n
        if reason:
            by["reason"][reason] += n
        if errcode is not None:
            by["errcode"][str(errcode)] += n
        if channel:
            by["channel"][channel] += n
    return {"total": total, **{k: dict(v) for k, v in by.items()}}
