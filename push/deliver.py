"""Sending one batch: claim rows in small groups, send them concurrently, record each outcome.

Exactly once, and its one exception
-----------------------------------
A batch runs under its Redis lease (push.recovery.Lease): one worker at a time. Rows go
pending -> sending in groups of at most `concurrency` rows, and that claim is committed
*before* their sends start. Each outcome (sent, failed, skipped, unknown, or back to
pending when the send surely did not go out) is committed in the transaction that claims
the next rows, and a row is claimed only when a slot is free. So at any moment at most
`settings.push.concurrency` rows of a batch are `sending`, and a worker process runs one
batch job at a time.

A worker killed mid-batch leaves those rows `sending`, with no record of whether WeChat
accepted them. Once its lease lapses (`lease_seconds`) the sweep enqueues the batch
again; the new run skips every final row and resends the rows still `sending`. Hence:

    duplicate messages <= settings.push.concurrency per killed worker

and only for the sends that had reached WeChat in the instant before the kill
(tests/test_push_kill.py kills a real `qzbot worker` with SIGKILL and checks this bound).
A send with an ambiguous answer (timeout, dropped connection, garbage) is recorded
`unknown` and never resent (platform doc: no idempotency key, never blind-retry).
"""

from __future__ import annotations

import logging
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import redis as redis_lib
from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from bot.clock import to_utc_naive
from bot.errors import TransportError
from bot.jobs import wechat_client
from bot.runtime import Runtime, openid_hash
from bot.store.db import transaction
from bot.store.models import Campaign, CampaignStatus, Delivery, DeliveryStatus, Follower
from push.channels import CHANNELS, CS_LIMIT, Send, choose, judge, perform, release, resume
from push.consent import revoke_all
from push.fanout import finish_if_done, skip_remaining, stop_campaign
from push.ratelimit import LocalRateLimiter, Paused, RateLimiter, limiter_for
from push.recovery import HALTED, OPEN, Lease, lease_key

log = logging.getLogger("qzbot.push.deliver")
SENDING = CampaignStatus.SENDING.value
MAX_ATTEMPTS = 5  # claims of one row (transport errors, channel changes) before it fails
RETRY_DELAY = 5.0  # seconds before a batch halted by transport errors runs again
STATUS_EVERY = 0.5  # seconds between checks that the campaign is still sending
_T = Delivery.__table__
_ROW = (update(_T).where(_T.c.id == bindparam("_id")).values(
    status=bindparam("_status"), channel=bindparam("_channel"), errcode=bindparam("_errcode"),
    reason=bindparam("_reason"), msgid=bindparam("_msgid"), attempts=bindparam("_attempts"),
    updated_at=bindparam("_at")))


@dataclass
class BatchReport:
    """How a batch run ended: done, busy, missing, halted, lease_lost, backoff or retry."""

    campaign_id: int
    batch: int
    state: str = "done"
    resume_in: float | None = None
    counts: Counter = field(default_factory=Counter)


def limiter(rt: Runtime) -> RateLimiter | LocalRateLimiter:
    """The process's rate limiter (shared through Redis with every other worker)."""
    found = rt.extras.get("push_limiter")
    if found is None:
        found = rt.extras["push_limiter"] = limiter_for(rt.redis, rt.settings.push.rate_limits)
    return found


def run_batch(rt: Runtime, campaign_id: int, batch: int,
              reschedule: Callable[[float], None] | None = None) -> BatchReport:
    """Deliver a batch's open rows; `reschedule(delay)` runs (lease still held) on a backoff."""
    lease = Lease(rt.redis, lease_key(campaign_id, batch), rt.settings.push.lease_seconds)
    if not lease.acquire():
        return BatchReport(campaign_id, batch, "busy")
    with lease:
        report = _Batch(rt, campaign_id, batch, lease).run()
        if report.resume_in is not None and reschedule is not None:
            reschedule(report.resume_in)
    if report.state == "done":
        with transaction(rt.sessions) as session:
            finish_if_done(session, campaign_id, rt.now())
    return report


def _row(send_id: int, status: str, attempts: int, at: Any, channel: str | None = None,
         errcode: int | None = None, reason: str | None = None,
         msgid: str | None = None) -> dict[str, Any]:
    return {"_id": send_id, "_status": status, "_channel": channel, "_errcode": errcode,
            "_reason": reason, "_msgid": msgid, "_attempts": attempts, "_at": at}


class _Batch:
    """One run of one batch under its lease."""

    def __init__(self, rt: Runtime, campaign_id: int, batch: int, lease: Lease):
        self.rt = rt
        self.campaign_id = campaign_id
        self.lease = lease
        self.concurrency = max(1, rt.settings.push.concurrency)
        self.report = BatchReport(campaign_id, batch)
        self.queue: deque[int] = deque()
        self.payload: dict[str, Any] = {}
        self.halt: str | None = None
        self.alerts: list[str] = []
        self._checked = time.monotonic()
        self._streak = 0  # consecutive transport errors

    def run(self) -> BatchReport:
        """Claim, send and record until the batch has no open row or something halts it."""
        paused = limiter(self.rt).paused_for(CHANNELS)
        if paused > 0:
            self.report.state, self.report.resume_in = "backoff", paused
            return self.report
        with transaction(self.rt.sessions) as session:
            campaign = session.get(Campaign, self.campaign_id)
            if campaign is None or campaign.status != SENDING:
                self.report.state = "missing" if campaign is None else "halted"
                if campaign is not None and campaign.status in HALTED:
                    skip_remaining(session, self.campaign_id, f"campaign_{campaign.status}",
                                   self.rt.now())
                return self.report
            self.payload = campaign.payload or {}
            rows = session.execute(select(Delivery.id, Delivery.status).where(
                Delivery.campaign_id == self.campaign_id, Delivery.batch == self.report.batch,
                Delivery.status.in_(OPEN)).order_by(Delivery.id)).all()
        # rows still `sending` were left by a dead worker: resend them first
        self.queue.extend(r.id for r in rows if r.status == DeliveryStatus.SENDING.value)
        self.queue.extend(r.id for r in rows if r.status == DeliveryStatus.PENDING.value)
        self._loop()
        if self.halt in ("halted", "lease_lost"):
            self.report.state = self.halt
        if self.halt == "halted":
            self._close_halted()
        return self.report

    def _close_halted(self) -> None:
        """A stopped or cancelled campaign: its rows not yet sent are skipped, not dropped."""
        with transaction(self.rt.sessions) as session:
            status = session.scalar(select(Campaign.status).where(
                Campaign.id == self.campaign_id))
            if status in HALTED:
                skip_remaining(session, self.campaign_id, f"campaign_{status}", self.rt.now())

    def _loop(self) -> None:
        inflight: dict[Future, Send] = {}
        results: list[tuple[Send, Any]] = []
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="push-send") as pool:
            while True:
                self._check()
                free = self.concurrency - len(inflight)
                want = free if (self.halt is None and self.queue
                                and (not inflight or 2 * free >= self.concurrency)) else 0
                if results or want:
                    for send in self._commit(results, want):
                        inflight[pool.submit(self._send, send)] = send
                    results = []
                if not inflight:
                    if self.halt is not None or not self.queue:
                        return
                    continue
                done, _ = wait(inflight, timeout=1.0, return_when=FIRST_COMPLETED)
                results = [(inflight.pop(f), f.result()) for f in done]

    def _check(self) -> None:
        """Stop claiming when the lease is lost or the campaign is no longer sending."""
        if self.lease.lost.is_set():
            self.halt = self.halt or "lease_lost"
        if time.monotonic() - self._checked < STATUS_EVERY:
            return
        self._checked = time.monotonic()
        with self.rt.sessions() as session:
            status = session.scalar(select(Campaign.status).where(
                Campaign.id == self.campaign_id))
        if status != SENDING:
            self.halt = self.halt or "halted"

    def _send(self, send: Send) -> Any:
        """In a pool thread: wait for the rate limit, call WeChat; never raises."""
        try:
            limiter(self.rt).acquire(send.channel)
            return perform(wechat_client(self.rt), send, self.payload)
        except Exception as exc:  # classified by _record, one row at a time
            return exc

    def _commit(self, results: list[tuple[Send, Any]], want: int) -> list[Send]:
        """One transaction: record finished sends, then claim up to `want` rows."""
        now = self.rt.now()
        with transaction(self.rt.sessions) as session:
            rows = [self._record(session, send, outcome, now) for send, outcome in results]
            if rows:  # before claiming: a row put back to pending may be claimed again now
                session.execute(_ROW, rows)
            sends: list[Send] = []
            if want and self.halt is None:
                claimed: list[dict[str, Any]] = []
                sends = self._claim(session, want, now, claimed)
                if claimed:
                    session.execute(_ROW, claimed)
        for alert in self.alerts:
            log.error("ALERT %s", alert)
        self.alerts.clear()
        return sends

    def _claim(self, session: Session, want: int, now: Any,
               rows: list[dict[str, Any]]) -> list[Send]:
        """pending (or orphaned sending) -> sending with the channel WeChat allows."""
        ids = [self.queue.popleft() for _ in range(min(want, len(self.queue)))]
        found = session.execute(select(Delivery.id, Delivery.openid, Delivery.status,
                                       Delivery.channel, Delivery.attempts)
                                .where(Delivery.id.in_(ids), Delivery.status.in_(OPEN))
                                .order_by(Delivery.id)).all()
        followers = {f.openid: f for f in session.scalars(
            select(Follower).where(Follower.openid.in_({r.openid for r in found})))}
        at = to_utc_naive(now)
        sends = []
        for r in found:
            attempts = r.attempts + 1
            if attempts > MAX_ATTEMPTS:
                rows.append(_row(r.id, DeliveryStatus.FAILED.value, r.attempts, at, r.channel,
                                 reason="too_many_attempts"))
                continue
            follower = followers.get(r.openid)
            if r.status == DeliveryStatus.SENDING.value:
                choice = resume(session, r.id, r.channel, follower, self.payload, now, attempts)
            else:
                choice = choose(session, r.id, follower, self.payload, now, attempts)
            if isinstance(choice, str):
                rows.append(_row(r.id, DeliveryStatus.SKIPPED.value, attempts, at,
                                 reason=choice))
                self.report.counts[f"skipped:{choice}"] += 1
            else:
                rows.append(_row(r.id, DeliveryStatus.SENDING.value, attempts, at,
                                 choice.channel))
                sends.append(choice)
        return sends

    def _record(self, session: Session, send: Send, outcome: Any, now: Any) -> dict[str, Any]:
        """The row update for one finished send, with its side effects on the ledger."""
        at = to_utc_naive(now)
        if isinstance(outcome, Paused):  # not called at all: the try does not count
            self._backoff(outcome.seconds)
            release(session, send)
            return _row(send.delivery_id, DeliveryStatus.PENDING.value, send.attempts - 1, at)
        if isinstance(outcome, redis_lib.RedisError):  # before the HTTP call: not sent
            outcome = TransportError(f"redis: {outcome}")
        verdict = judge(outcome)
        self.report.counts[verdict.action] += 1
        self._streak = self._streak + 1 if verdict.action == "retry" else 0
        base = {"send_id": send.delivery_id, "attempts": send.attempts, "at": at,
                "channel": send.channel, "errcode": verdict.errcode, "reason": verdict.reason}
        if verdict.action == "sent":
            return _row(**base, status=DeliveryStatus.SENT.value, msgid=verdict.msgid)
        if verdict.action == "failed":
            self._recipient_failed(session, send, verdict.errcode, now)
            return _row(**base, status=DeliveryStatus.FAILED.value)
        if verdict.action == "unknown":
            log.warning("campaign %s delivery %s oh=%s outcome unknown (%s): not resent",
                        self.campaign_id, send.delivery_id, openid_hash(send.openid),
                        verdict.detail[:200])
            return _row(**base, status=DeliveryStatus.UNKNOWN.value)
        if verdict.action == "stop":
            release(session, send)
            if stop_campaign(session, self.campaign_id, verdict.errcode or 0, verdict.detail,
                             now):
                self.alerts.append(f"campaign {self.campaign_id} stopped: WeChat errcode "
                                   f"{verdict.errcode} ({verdict.detail[:120]}); fix the "
                                   "campaign or the account's API permissions")
            self.halt = "halted"
            return _row(**base, status=DeliveryStatus.FAILED.value)
        release(session, send)
        return self._not_sent(session, send, verdict.action, base)

    def _not_sent(self, session: Session, send: Send, action: str,
                  base: dict[str, Any]) -> dict[str, Any]:
        """A send that surely did not go out: pending again (or failed after many tries)."""
        if action == "quota":  # never lost: pending until the pause is over (uncounted)
            self._backoff(limiter(self.rt).pause(send.channel))
            base["attempts"] = send.attempts - 1
        elif action == "next_channel":  # the window is closed for us: pick another channel
            session.execute(update(Follower).where(Follower.openid == send.openid).values(
                cs_sent=CS_LIMIT).execution_options(synchronize_session=False))
            self.queue.appendleft(send.delivery_id)
        elif send.attempts >= MAX_ATTEMPTS:
            return _row(**base, status=DeliveryStatus.FAILED.value)
        else:  # retry: transport or token; again later in this run, or after a pause
            self.queue.append(send.delivery_id)
            if self._streak >= self.concurrency:
                self.halt = "retry"
                self.report.state, self.report.resume_in = "retry", RETRY_DELAY
        base.update(channel=None, errcode=None, reason=None)
        return _row(**base, status=DeliveryStatus.PENDING.value)

    def _recipient_failed(self, session: Session, send: Send, errcode: int | None,
                          now: Any) -> None:
        """43004: the citizen no longer follows; 43101: consent gone, revoke it."""
        if errcode == 43004:
            session.execute(update(Follower).where(Follower.openid == send.openid).values(
                active=False, unfollowed_at=to_utc_naive(now))
                .execution_options(synchronize_session=False))
        elif errcode == 43101:
            template_id = (self.payload.get("template") or {}).get("template_id", "")
            revoke_all(session, send.openid, template_id, "43101", now)

    def _backoff(self, seconds: float) -> None:
        """Quota: stop claiming; the batch resumes after the pause (rows stay pending)."""
        self.halt = "backoff"
        self.report.state = "backoff"
        self.report.resume_in = max(self.report.resume_in or 0.0, seconds)

