"""What survives a dead worker: Redis leases per batch, worker heartbeats, and the sweep's
view of stranded work.

A batch job holds the lease `qzbot:push:lease:<campaign>:<batch>` while it runs and a
thread refreshes it every third of `lease_seconds`. The lease's value names its holder
(`<worker id>|<token>`), and every process holding a lease keeps a heartbeat key
`qzbot:push:hb:<worker id>` alive with a short TTL (HEARTBEAT_TTL, refreshed by a thread).
A killed worker stops both; its heartbeat is gone within HEARTBEAT_TTL seconds, and from
then on its leases count as free (`lease_alive` is False, `Lease.acquire` takes them
over), long before `lease_seconds` would let them lapse. The sweep (`push.jobs.sweep`, at
worker start and every few seconds) then finds the batch's non-final rows with no live
lease and enqueues the batch again. The planner holds the lease `...:<campaign>:plan`
the same way.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
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
# A holder's heartbeat lives this long unrefreshed: the time a dead worker's leases stay
# taken. Refreshed three times per TTL, so only a stall of seconds loses it (then the
# lease may be taken over and the stalled holder stops claiming: Lease.lost).
HEARTBEAT_TTL = 5.0


def lease_key(campaign_id: int, batch: int | None = None) -> str:
    """The lease of one batch (or of the campaign's planner when batch is None)."""
    return f"{PREFIX}:lease:{campaign_id}:{'plan' if batch is None else batch}"


def heartbeat_key(worker: str) -> str:
    """The liveness key of one lease-holding worker process."""
    return f"{PREFIX}:hb:{worker}"


def lease_owner(value: bytes | str | None) -> str | None:
    """The worker named by a lease value (None: no lease, or a value naming nobody)."""
    if value is None:
        return None
    text = value.decode() if isinstance(value, bytes) else value
    owner, sep, _ = text.rpartition("|")
    return owner if sep and owner else None


def _value_alive(redis: Any, value: bytes | None) -> bool:
    """A lease value is alive unless it names a worker whose heartbeat is gone."""
    if value is None:
        return False
    owner = lease_owner(value)
    return owner is None or bool(redis.exists(heartbeat_key(owner)))


def lease_alive(redis: Any, key: str) -> bool:
    """True while some live worker holds the lease (its heartbeat is still beating)."""
    return _value_alive(redis, redis.get(key))


class _Heartbeat:
    """This process's heartbeat: one key, kept alive while any of its leases is held.

    Per process, not per RQ worker: a forking worker's leases are held by the job's work
    horse, and a killed horse must free them even though its parent lives on.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid = 0
        self._worker = ""
        self._holders = 0
        self._stop = threading.Event()
        self._redis: Any = None

    @property
    def worker(self) -> str:
        """This process's worker id (a fork gets its own)."""
        if self._pid != os.getpid():
            self._pid, self._holders = os.getpid(), 0  # a parent's thread is not ours
            self._worker = f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"
        return self._worker

    def hold(self, redis: Any) -> str:
        """One more lease holder: beat now (before a lease names us) and keep beating."""
        with self._lock:
            worker = self.worker
            redis.set(heartbeat_key(worker), "1", px=int(HEARTBEAT_TTL * 1000))
            self._holders += 1
            if self._holders == 1:
                self._redis, self._stop = redis, threading.Event()
                threading.Thread(target=self._beat, args=(worker, redis, self._stop),
                                 daemon=True, name="push-heartbeat").start()
            return worker

    def drop(self) -> None:
        """One holder fewer; the last one stops the beat and removes the key."""
        with self._lock:
            if self._pid != os.getpid() or self._holders == 0:
                return
            self._holders -= 1
            if self._holders:
                return
            self._stop.set()
            try:
                self._redis.delete(heartbeat_key(self._worker))
            except redis_lib.RedisError as exc:  # it expires by itself
                log.warning("heartbeat not removed: %s", exc)

    @staticmethod
    def _beat(worker: str, redis: Any, stop: threading.Event) -> None:
        while not stop.wait(HEARTBEAT_TTL / 3):
            try:
                redis.set(heartbeat_key(worker), "1", px=int(HEARTBEAT_TTL * 1000))
            except redis_lib.RedisError as exc:  # keep trying until the TTL runs out
                log.warning("heartbeat not refreshed: %s", exc)


    def forked(self) -> None:
        """In a forked child: nothing of the parent's beat (or its lock) carries over."""
        self._lock = threading.Lock()
        self._pid, self._holders = 0, 0


HEARTBEAT = _Heartbeat()
os.register_at_fork(after_in_child=HEARTBEAT.forked)


class Lease:
    """A Redis lease naming its holder, refreshed by a background thread while it works."""

    def __init__(self, redis: Any, key: str, seconds: float):
        self.redis = redis
        self.key = key
        self.ms = max(1000, int(seconds * 1000))
        self.token = secrets.token_hex(12)
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._holding = False

    def acquire(self) -> bool:
        """Take the lease if nobody holds it, or if its holder's heartbeat is gone."""
        self.token = f"{HEARTBEAT.hold(self.redis)}|{secrets.token_hex(12)}"
        try:
            taken = bool(self.redis.set(self.key, self.token, nx=True, px=self.ms)) \
                or self._take_over()
        except BaseException:
            HEARTBEAT.drop()
            raise
        if not taken:
            HEARTBEAT.drop()
        self._holding = taken
        return taken

    def _take_over(self) -> bool:
        """Replace a dead worker's lease (WATCH/MULTI: only if it is still that lease)."""
        with self.redis.pipeline() as pipe:
            try:
                pipe.watch(self.key)
                current = pipe.get(self.key)
                if _value_alive(pipe, current):
                    pipe.unwatch()
                    return False
                pipe.multi()
                pipe.set(self.key, self.token, px=self.ms)
                pipe.execute()
            except redis_lib.WatchError:
                return False
        if current is not None:
            log.warning("lease %s taken over from dead worker %s", self.key,
                        lease_owner(current))
        return True

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
        finally:
            if self._holding:
                self._holding = False
                HEARTBEAT.drop()


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
    held: list[str] = field(default_factory=list)  # leases on open work a live worker holds


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
        if not planned:
            if lease_alive(redis, lease_key(campaign_id)):
                found.held.append(lease_key(campaign_id))
            else:
                found.fanouts.append(campaign_id)
        batches = session.scalars(select(Delivery.batch).where(
            Delivery.campaign_id == campaign_id, Delivery.status.in_(OPEN))
            .group_by(Delivery.batch).order_by(Delivery.batch)).all()
        for batch in batches:
            if lease_alive(redis, lease_key(campaign_id, batch)):
                found.held.append(lease_key(campaign_id, batch))
            else:
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
