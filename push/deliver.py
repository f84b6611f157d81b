"""Sending one batch: claim rows in small groups, send them concurrently, record each outcome.

Exactly once, and its one exception
-----------------------------------
A batch runs under its Redis lease (push.recovery.Lease): one worker at a time. Rows go
pending -> sending in groups of at most `concurrency` rows, and that claim is committed
*before* their sends start. Each outcome (sent, failed, skipped, unknown, or back to
pending when the send surely did not go out) is committed in the transaction that claims
the next rows, and a row is claimed only for a free slot. So at any moment at most
`settings.push.concurrency` rows of a batch are `sending`, and a worker process runs one
batch job at a time.

A worker killed mid-batch leaves those rows `sending`, with no record of whether WeChat
accepted them. Once its heartbeat is gone (push.recovery.HEARTBEAT_TTL, seconds) its lease
counts as free and the sweep enqueues the batch again; the new run skips every final row
and resends the rows still `sending`. Hence:

    duplicate messages <= settings.push.concurrency per killed worker

and only for the sends that had reached WeChat in the instant before the kill
(tests/test_push_workers.py kills a real `qzbot worker` with SIGKILL and checks this).
A send with an ambiguous answer (timeout, dropped connection, garbage) is recorded
`unknown` and never resent (platform doc: no idempotency key, never blind-retry).

Send-time truth (push.sendcheck): before the first claim and every STATUS_EVERY seconds
the campaign is checked again (records still 主动公开 and not ended, unchanged since
approval); every claim re-reads its rows' followers and audience membership, so a
citizen who unfollowed or unsubscribed since planning is skipped, never sent to. A
non-urgent batch never starts, nor resumes after a back-off, inside quiet hours: it is
rescheduled to their end (push.campaigns.after_quiet_hours; urgent notices excepted).
"""

from __future__ import annotations

import logging
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import redis as redis_lib
from sqlalchemy import bindparam, case, select, update
from sqlalchemy.orm import Session

from bot.clock import to_utc_naive
from bot.errors import TransportError
from bot.runtime import Runtime, openid_hash
from bot.store.db import transaction
from bot.store.models import Campaign, CampaignStatus, Delivery, DeliveryStatus, Follower
from push import channels
from push.audience import still_in
from push.campaigns import after_quiet_hours
from push.channels import Action, Send
from push.fanout import (
    RunState,
    close_if_halted,
    finish_if_done,
    send_time_check,
    stop_campaign,
)
from push.ratelimit import Paused, reserve_slots, runtime_limiter, wait_until
from push.recovery import OPEN, Lease, lease_key, retry_delay
from push.sendcheck import row_skip

log = logging.getLogger("qzbot.push.deliver")
SENDING, PENDING = DeliveryStatus.SENDING.value, DeliveryStatus.PENDING.value
MAX_ATTEMPTS = 20  # claims of one row before it fails (a guard against endless loops)
STATUS_EVERY = 0.5  # seconds between checks that the campaign is still sending
# a run that halts for one of these ends in that state (the others set report.state)
_ENDS_THE_RUN = (RunState.HALTED, RunState.STOPPED, RunState.BACK_TO_REVIEW,
                 RunState.LEASE_LOST, RunState.MISSING)
_T = Delivery.__table__
_RECORD = (update(_T).where(_T.c.id == bindparam("_id")).values(
    status=bindparam("_status"), channel=bindparam("_channel"), errcode=bindparam("_errcode"),
    reason=bindparam("_reason"), msgid=bindparam("_msgid"), attempts=bindparam("_attempts"),
    updated_at=bindparam("_at")))


@dataclass
class BatchReport:
    """How a batch run ended: done, busy, missing, halted, stopped, back_to_review,
    lease_lost, backoff, retry or quiet (waits for the end of quiet hours)."""

    campaign_id: int
    batch: int
    state: RunState = RunState.DONE
    resume_in: float | None = None
    counts: Counter = field(default_factory=Counter)


@dataclass
class _Row:
    """What the run knows of an open row (it holds the lease: nobody else sends it)."""

    openid: str
    status: str
    channel: str | None
    attempts: int


def run_batch(rt: Runtime, campaign_id: int, batch: int,
              reschedule: Callable[[float], None] | None = None) -> BatchReport:
    """Deliver a batch's open rows; `reschedule(delay)` runs (lease still held) on a backoff."""
    lease = Lease(rt.redis, lease_key(campaign_id, batch), rt.settings.push.lease_seconds)
    if not lease.acquire():
        return BatchReport(campaign_id, batch, RunState.BUSY)
    with lease:
        report = _Batch(rt, campaign_id, batch, lease).run()
        if report.resume_in is not None and reschedule is not None:
            reschedule(report.resume_in)
    if report.state == RunState.DONE:
        with transaction(rt.sessions) as session:
            finish_if_done(session, campaign_id, rt.now())
    return report


def _record(row_id: int, status: str, attempts: int, at: Any, channel: str | None = None,
            errcode: int | None = None, reason: str | None = None,
            msgid: str | None = None) -> dict[str, Any]:
    return {"_id": row_id, "_status": status, "_channel": channel, "_errcode": errcode,
            "_reason": reason, "_msgid": msgid, "_attempts": attempts, "_at": at}


class _Batch:
    """One run of one batch under its lease."""

    def __init__(self, rt: Runtime, campaign_id: int, batch: int, lease: Lease):
        self.rt, self.campaign_id, self.lease = rt, campaign_id, lease
        self.concurrency = max(1, rt.settings.push.concurrency)
        self.report = BatchReport(campaign_id, batch)
        self.rows: dict[int, _Row] = {}
        self.queue: deque[int] = deque()
        self.payload: dict[str, Any] = {}
        self.audience = Campaign()  # the audience definition (a detached copy)
        self.urgent = False
        self.halt: RunState | None = None
        self.alerts: list[str] = []
        self._checked = time.monotonic()
        self._streak = 0  # consecutive transport errors

    def run(self) -> BatchReport:
        """Claim, send and record until the batch has no open row or something halts it."""
        with transaction(self.rt.sessions) as session:
            self._start(session)
        if self.halt is None:
            paused = runtime_limiter(self.rt).paused_for(channels.CHANNELS)
            if paused > 0:
                self.halt = self.report.state = RunState.BACKOFF
                self.report.resume_in = paused
            elif not self.urgent and self._quiet_for(0.0) > 0:
                self.halt = self.report.state = RunState.QUIET
                self.report.resume_in = self._quiet_for(0.0)
        if self.halt is None:
            self._loop()
        if self.halt in _ENDS_THE_RUN:
            self.report.state = self.halt
        if self.halt in (RunState.HALTED, RunState.STOPPED):
            with transaction(self.rt.sessions) as session:
                close_if_halted(session, self.campaign_id, self.rt.now())
        if self.report.resume_in is not None and not self.urgent:
            self.report.resume_in = self._quiet_for(self.report.resume_in)
        return self.report

    def _start(self, session: Session) -> None:
        """The campaign is still sending and still true (push.sendcheck): load the rows."""
        campaign = session.get(Campaign, self.campaign_id)
        if campaign is None or campaign.status != CampaignStatus.SENDING.value:
            self.halt = RunState.MISSING if campaign is None else RunState.HALTED
            return
        self.halt = send_time_check(session, self.rt.settings, campaign, self.rt.now())
        if self.halt is not None:
            return
        self.payload, self.urgent = campaign.payload or {}, bool(campaign.urgent)
        self.audience = Campaign(topic=campaign.topic, district=campaign.district,
                                 notice_kind=campaign.notice_kind, openids=campaign.openids,
                                 all_followers=campaign.all_followers)
        self._load(session)

    def _quiet_for(self, delay: float) -> float:
        """`delay`, or longer so a non-urgent resume lands after quiet hours (README)."""
        now = self.rt.now()
        resume = after_quiet_hours(self.rt.settings, now + timedelta(seconds=delay))
        return max(delay, (resume - now).total_seconds())

    def _load(self, session: Session) -> None:
        """The batch's open rows; rows left `sending` go first (resend)."""
        found = session.execute(select(Delivery.id, Delivery.openid, Delivery.status,
                                       Delivery.channel, Delivery.attempts)
                                .where(Delivery.campaign_id == self.campaign_id,
                                       Delivery.batch == self.report.batch,
                                       Delivery.status.in_(OPEN)).order_by(Delivery.id)).all()
        for r in found:
            self.rows[r.id] = _Row(r.openid, r.status, r.channel, r.attempts)
        self.queue.extend(r.id for r in found if r.status == SENDING)
        self.queue.extend(r.id for r in found if r.status == PENDING)

    def _loop(self) -> None:
        inflight: dict[Future, Send] = {}
        results: list[tuple[Send, Any]] = []
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="push-send") as pool:
            while True:
                self._check()
                free = self.concurrency - len(inflight)
                want = free if (self.halt is None and self.queue
                                and (not inflight or 2 * free >= self.concurrency)) else 0
                # one transaction per refill (finished sends wait for it): few commits
                if want or (results and (not inflight or self.halt is not None)):
                    sends = self._commit(results, want)
                    results = []
                    for send, slot in reserve_slots(runtime_limiter(self.rt),
                                                     [(x.channel, x) for x in sends]):
                        if isinstance(slot, float):
                            inflight[pool.submit(self._send, send, slot)] = send
                        else:  # paused or Redis down: not sent, recorded with the next
                            results.append((send, slot))
                if not inflight:
                    if self.halt is not None or not self.queue:
                        return
                    continue
                done, _ = wait(inflight, timeout=1.0, return_when=FIRST_COMPLETED)
                results.extend((inflight.pop(f), f.result()) for f in done)

    def _check(self) -> None:
        """Stop claiming when the lease is lost, the campaign is no longer sending or no
        longer true (push.sendcheck)."""
        if self.lease.lost.is_set():
            self.halt = self.halt or RunState.LEASE_LOST
        if time.monotonic() - self._checked < STATUS_EVERY:
            return
        self._checked = time.monotonic()
        with transaction(self.rt.sessions) as session:  # may stop it: send-time truth
            campaign = session.get(Campaign, self.campaign_id)
            if campaign is None or campaign.status != CampaignStatus.SENDING.value:
                self.halt = self.halt or RunState.HALTED
                return
            halt = send_time_check(session, self.rt.settings, campaign, self.rt.now())
        self.halt = self.halt or halt

    def _send(self, send: Send, slot: float) -> Any:
        """In a pool thread: wait for the send's rate-limit slot, call WeChat; never raises."""
        try:
            wait_until(slot)
            return channels.perform(channels.push_client(self.rt), send, self.payload)
        except Exception as exc:  # classified by _outcome, one row at a time
            return exc

    def _commit(self, results: list[tuple[Send, Any]], want: int) -> list[Send]:
        """One transaction: record finished sends, then claim up to `want` rows."""
        now = self.rt.now()
        with transaction(self.rt.sessions) as session:
            records = [self._outcome(session, send, outcome, now) for send, outcome in results]
            sends = self._claim(session, want, now, records) if want and not self.halt else []
            if records:
                session.execute(_RECORD, records)
        for alert in self.alerts:
            log.error("ALERT %s", alert)
        self.alerts.clear()
        return sends

    def _claim(self, session: Session, want: int, now: Any,
               records: list[dict[str, Any]]) -> list[Send]:
        """pending (or orphaned sending) -> sending on the channel WeChat allows, one UPDATE;
        a row whose recipient left the audience since planning is closed instead."""
        at = to_utc_naive(now)
        ids = [self.queue.popleft() for _ in range(min(want, len(self.queue)))]
        followers, present = self._recipients(session, ids)
        chosen: list[Send] = []
        for row_id in ids:
            row = self.rows[row_id]
            if row.attempts >= MAX_ATTEMPTS:
                records.append(_record(row_id, DeliveryStatus.FAILED.value, row.attempts, at,
                                       row.channel, reason="too_many_attempts"))
                continue
            follower = followers.get(row.openid)
            left = row_skip(row.openid, present, follower)
            if left is not None:
                records.append(self._left(row_id, left, at))
                continue
            if row.status == SENDING:  # left by a dead worker: same channel, same grant
                choice = channels.resume(session, row_id, row.channel, follower,
                                         self.payload, now, row.attempts + 1)
            else:
                choice = channels.choose(session, row_id, follower, self.payload, now,
                                         row.attempts + 1)
            if isinstance(choice, str):
                records.append(_record(row_id, DeliveryStatus.SKIPPED.value, row.attempts + 1,
                                       at, reason=choice))
                self.report.counts[f"skipped:{choice}"] += 1
            else:
                chosen.append(choice)
        if not chosen:
            return []
        claimed = set(session.scalars(update(_T).where(
            _T.c.id.in_([s.delivery_id for s in chosen]), _T.c.status.in_(OPEN)).values(
            status=SENDING, attempts=_T.c.attempts + 1, updated_at=at,
            channel=case({s.delivery_id: s.channel for s in chosen}, value=_T.c.id))
            .returning(_T.c.id)))
        for send in chosen:
            if send.delivery_id not in claimed:  # closed meanwhile (campaign stopped)
                channels.release(session, send)
                continue
            row = self.rows[send.delivery_id]
            row.status, row.channel, row.attempts = SENDING, send.channel, send.attempts
        return [s for s in chosen if s.delivery_id in claimed]

    def _left(self, row_id: int, reason: str, at: Any) -> dict[str, Any]:
        """A recipient who left the audience: never sent to (skipped), or, for a row a dead
        worker left `sending` (it may have gone out), unknown and not resent."""
        row = self.rows[row_id]
        status = DeliveryStatus.UNKNOWN if row.status == SENDING else DeliveryStatus.SKIPPED
        self.report.counts[f"{status.value}:{reason}"] += 1
        return _record(row_id, status.value, row.attempts, at, row.channel, reason=reason)

    def _recipients(self, session: Session,
                    ids: list[int]) -> tuple[dict[str, Follower], set[str]]:
        """The rows' followers as they are now, and which are still in the audience."""
        openids = {self.rows[i].openid for i in ids}
        if not openids:
            return {}, set()
        followers = {f.openid: f for f in session.scalars(
            select(Follower).where(Follower.openid.in_(sorted(openids))))}
        return followers, still_in(session, self.audience, openids)

    def _outcome(self, session: Session, send: Send, outcome: Any, now: Any) -> dict[str, Any]:
        """The row update for one finished send, with its side effects on the ledger."""
        if isinstance(outcome, Paused):  # not called at all: the try does not count
            self._backoff(outcome.seconds)
            channels.release(session, send)
            return self._requeue(send, send.attempts - 1, now, later=True)
        if isinstance(outcome, redis_lib.RedisError):  # before the HTTP call: not sent
            outcome = TransportError(f"redis: {outcome}")
        verdict = channels.judge(outcome)
        self.report.counts[verdict.action] += 1
        self._streak = self._streak + 1 if verdict.action == Action.RETRY else 0
        base = {"row_id": send.delivery_id, "attempts": send.attempts, "at": to_utc_naive(now),
                "channel": send.channel, "errcode": verdict.errcode, "reason": verdict.reason}
        if verdict.action == Action.SENT:
            return _record(**base, status=DeliveryStatus.SENT.value, msgid=verdict.msgid)
        if verdict.action == Action.FAILED:
            channels.after_failure(session, send, verdict.errcode, self.payload, now)
            return _record(**base, status=DeliveryStatus.FAILED.value)
        if verdict.action == Action.UNKNOWN:
            log.warning("campaign %s delivery %s oh=%s outcome unknown (%s): not resent",
                        self.campaign_id, send.delivery_id, openid_hash(send.openid),
                        verdict.detail[:200])
            return _record(**base, status=DeliveryStatus.UNKNOWN.value)
        channels.release(session, send)  # refused or not sent: the reservation is free again
        return self._not_sent(session, send, verdict, base, now)

    def _not_sent(self, session: Session, send: Send, verdict: channels.Verdict,
                  base: dict[str, Any], now: Any) -> dict[str, Any]:
        """Refused for the whole campaign, or surely not sent: stop, pause, or try again."""
        if verdict.action == Action.STOP:
            reason = f"WeChat errcode {verdict.errcode}: {verdict.detail}"
            if stop_campaign(session, self.campaign_id, reason, now, errcode=verdict.errcode,
                             errmsg=verdict.detail[:200]):
                self.alerts.append(f"campaign {self.campaign_id} stopped: WeChat errcode "
                                   f"{verdict.errcode} ({verdict.detail[:120]}); fix the "
                                   "campaign or the account's API permissions")
            self.halt = RunState.HALTED
            return _record(**base, status=DeliveryStatus.FAILED.value)
        if verdict.action == Action.QUOTA:  # never lost: pending until the pause is over
            self._backoff(runtime_limiter(self.rt).pause(send.channel))
            return self._requeue(send, send.attempts - 1, now, later=True)
        if verdict.action == Action.NEXT_CHANNEL:
            channels.close_window(session, send.openid)
            return self._requeue(send, send.attempts, now, later=False)
        if self._streak >= self.concurrency and self.halt != RunState.RETRY:  # unreachable
            self.halt = self.report.state = RunState.RETRY
            self.report.resume_in = retry_delay(self.rt.redis, self.campaign_id,
                                                 self.report.batch)
        return self._requeue(send, send.attempts, now, later=True)  # transport or token

    def _requeue(self, send: Send, attempts: int, now: Any, later: bool) -> dict[str, Any]:
        """Back to pending (the send surely did not go out); claimed again in this run
        (at once for a channel change, else after the others or after a pause)."""
        row = self.rows[send.delivery_id]
        row.status, row.channel, row.attempts = PENDING, None, attempts
        (self.queue.append if later else self.queue.appendleft)(send.delivery_id)
        return _record(send.delivery_id, PENDING, attempts, to_utc_naive(now))

    def _backoff(self, seconds: float) -> None:
        """Quota: stop claiming; the batch resumes after the pause (rows stay pending)."""
        self.halt = self.report.state = RunState.BACKOFF
        self.report.resume_in = max(self.report.resume_in or 0.0, seconds)
