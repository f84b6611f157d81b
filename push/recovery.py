"""What survives a dead worker: Redis leases per batch and the sweep's view of stranded work.

A batch job holds the lease `qzbot:push:lease:<campaign>:<batch>` while it runs and a
thread refreshes it every third of `lease_seconds`; a killed worker stops refreshing, so
its lease lapses after at most `lease_seconds`. The sweep (`push.jobs.sweep`, at worker
start and periodically) then finds the batch's non-final rows with no live lease and
enqueues the batch again. The planner holds the lease `...:<campaign>:plan` the same way.
"""

from __future__ import annotations

import logging
import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import redis as redis_lib
from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session

from bot.clock import to_utc_naive
from bot.store.models import AuditEntry, Campaign, CampaignStatus, Delivery, DeliveryStatus

log = logging.getLogger("qzbot.push.recovery")
PREFIX = "qzbot:push"
OPEN = (DeliveryStatus.PENDING.value, DeliveryStatus.SENDING.value)
PLANNED = "fanout_planned"  # audit action written once every delivery row exists
DUE = (CampaignStatus.APPROVED.value, CampaignStatus.SCHEDULED.value)
HALTED = (CampaignStatus.STOPPED.value, CampaignStatus.CANCELLED.value)
RETRY_DELAY, RETRY_MAX = 5.0, 300.0  # seconds (transport errors: WeChat unreachable)


def lease_key(campaign_id: int, batch: int | None = None) -> str:
    """The lease of one batch (or of the campaign's planner when batch is None)."""
    return f"{PREFIX}:lease:{campaign_id}:{'plan' if batch is None else batch}"


def lease_alive(redis: Any, key: str) -> bool:
    """True while some worker holds and refreshes the lease."""
    return bool(redis.exists(key))


class Lease:
    """A Redis lease refreshed by a background thread while the holder works."""

    def __init__(self, redis: Any, key: str, seconds: float):
        self.redis = redis
        self.key = key
        self.ms = max(1000, int(seconds * 1000))
        self.token = secrets.token_hex(12)
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> bool:
        """Take the lease if nobody holds it."""
        return bool(self.redis.set(self.key, self.token, nx=True, px=self.ms))

    def _if_ours(self, action: str) -> bool:
        """Refresh or delete the key only while it still holds our token (WATCH/MULTI)."""
        with self.redis.pipeline() as pipe:
            try:
                pipe.watch(self.key)
                current = pipe.get(self.key)
                if current is None or current.decode() != self.token:
                    pipe.unwatch()
                    return False
                pipe.multi()
                if action == "refresh":
                    pipe.pexpire(self.key, self.ms)
                else:
                    pipe.delete(self.key)
                pipe.execute()
                return True
            except redis_lib.WatchError:
                return False

    def _keep(self) -> None:
        while not self._stop.wait(self.ms / 3000.0):
            try:
                if not self._if_ours("refresh"):
                    log.error("lease %s lost: another worker may take this work over", self.key)
                    self.lost.set()
                    return
            except redis_lib.RedisError as exc:  # keep trying until the lease runs out
                log.warning("lease %s not refreshed: %s", self.key, exc)

    def __enter__(self) -> Lease:
        self._thread = threading.Thread(target=self._keep, daemon=True,
                                        name=f"lease-{self.key}")
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            self._if_ours("release")
        except redis_lib.RedisError as exc:
            log.warning("lease %s not released (it lapses by itself): %s", self.key, exc)


def retry_delay(redis: Any, campaign_id: int, batch: int) -> float:
    """Delay before a batch halted by transport errors runs again: 5 s, doubling, <= 5 min."""
    key = f"{PREFIX}:retries:{campaign_id}:{batch}"
    halts = int(redis.incr(key))
    redis.expire(key, 3600)
    return min(RETRY_MAX, RETRY_DELAY * 2 ** (halts - 1))


def is_planned(session: Session, campaign_id: int) -> bool:
    """True once the planner has inserted every delivery row of the campaign."""
    return bool(session.scalar(select(exists().where(
        AuditEntry.campaign_id == campaign_id, AuditEntry.action == PLANNED))))


@dataclass
class Stranded:
    """Work the sweep should (re-)enqueue or close."""

    fanouts: list[int] = field(default_factory=list)  # campaigns needing the planner
    batches: list[tuple[int, int]] = field(default_factory=list)  # (campaign, batch)
    finishable: list[int] = field(default_factory=list)  # sending, planned, no open row
    halted: list[int] = field(default_factory=list)  # stopped/cancelled with open rows


def find_stranded(session: Session, redis: Any, now: datetime) -> Stranded:
    """Campaigns and batches whose work no live worker holds."""
    found = Stranded()
    due_at = to_utc_naive(now)
    due = session.scalars(select(Campaign.id).where(
        Campaign.status.in_(DUE),
        (Campaign.send_at.is_(None)) | (Campaign.send_at <= due_at))).all()
    found.fanouts.extend(due)
    for campaign_id in session.scalars(select(Campaign.id).where(
            Campaign.status == CampaignStatus.SENDING.value)).all():
        planned = is_planned(session, campaign_id)
        if not planned and not lease_alive(redis, lease_key(campaign_id)):
            found.fanouts.append(campaign_id)
        batches = session.scalars(select(Delivery.batch).where(
            Delivery.campaign_id == campaign_id, Delivery.status.in_(OPEN))
            .group_by(Delivery.batch).order_by(Delivery.batch)).all()
        for batch in batches:
            if not lease_alive(redis, lease_key(campaign_id, batch)):
                found.batches.append((campaign_id, batch))
        if planned and not batches:
            found.finishable.append(campaign_id)
    found.halted.extend(session.scalars(
        select(Campaign.id).where(Campaign.status.in_(HALTED), exists().where(
            Delivery.campaign_id == Campaign.id, Delivery.status.in_(OPEN)))).all())
    return found


def abandon_batch(session: Session, campaign_id: int, batch: int, now: datetime) -> int:
    """Close a batch whose job keeps failing: pending rows failed, in-flight rows unknown."""
    at = to_utc_naive(now)
    total = 0
    for status, new in ((DeliveryStatus.PENDING, DeliveryStatus.FAILED),
                        (DeliveryStatus.SENDING, DeliveryStatus.UNKNOWN)):
        result = session.execute(update(Delivery).where(
            Delivery.campaign_id == campaign_id, Delivery.batch == batch,
            Delivery.status == status.value).values(
            status=new.value, reason="job_failed", updated_at=at))
        total += result.rowcount or 0
    return total


def close_orphans(session: Session, redis: Any, campaign_id: int, now: datetime) -> int:
    """Rows a dead worker left `sending` in a halted campaign: unknown, never resent."""
    batches = session.scalars(select(Delivery.batch).where(
        Delivery.campaign_id == campaign_id,
        Delivery.status == DeliveryStatus.SENDING.value).group_by(Delivery.batch)).all()
    total = 0
    for batch in batches:
        if lease_alive(redis, lease_key(campaign_id, batch)):
            continue  # a live worker is still recording its in-flight sends
        result = session.execute(update(Delivery).where(
            Delivery.campaign_id == campaign_id, Delivery.batch == batch,
            Delivery.status == DeliveryStatus.SENDING.value).values(
            status=DeliveryStatus.UNKNOWN.value, reason="interrupted",
            updated_at=to_utc_naive(now)))
        total += result.rowcount or 0
    return total
