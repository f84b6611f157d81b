"""RQ entry points of the push engine: module-level, ids only, thin wrappers; and the sweep.

Call `enqueue_fanout(rt, campaign_id, at=None)` after the approve/schedule commit. The
planner job (`fan_out`) enqueues one `send_batch` job per batch as it commits each chunk.

Job ids are deterministic: `qzbot-push-fanout-<campaign>` and
`qzbot-push-batch-<campaign>-<batch>`. Running the same work again (a quota backoff, a
batch whose worker died, a failed job) takes the id plus `-r<n>` from a per-key counter,
so an earlier job's record, e.g. in RQ's failed registry, is never overwritten. Redis
remembers the latest job per key, and enqueueing is skipped while it is still waiting.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from rq import Queue, get_current_job
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from bot.jobs import job_runtime
from bot.runtime import Runtime
from bot.store.db import transaction
from bot.store.models import Campaign
from push import deliver, fanout, recovery
from push.audit import SYSTEM, audit

log = logging.getLogger("qzbot.push.jobs")
PUSH_QUEUE = "qzbot-push"
PREFIX = "qzbot:push"
JOB_TIMEOUT = 3600  # a batch stops claiming long before; the lease covers a dead worker
RESULT_TTL = 3600
FAILURE_TTL = 7 * 86400  # failed jobs stay in RQ's failed registry this long
POINTER_TTL = 30 * 86400
OVERDUE = 30.0  # a scheduled job this late means no scheduler runs (its lock died with a worker)
MAX_JOB_FAILURES = 5  # failed runs of one batch before the sweep closes its rows
WAITING = (JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.SCHEDULED)


def _scheduled_at(rt: Runtime, job: Job) -> datetime | None:
    try:
        when = Queue(job.origin, connection=rt.redis).scheduled_job_registry \
            .get_scheduled_time(job)
    except NoSuchJobError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _waiting(rt: Runtime, job_id: str, at: datetime | None) -> bool:
    """Is the job still to run (at `at`, or soon when at is None)?"""
    try:
        job = Job.fetch(job_id, connection=rt.redis)
    except NoSuchJobError:
        return False
    status = job.get_status(refresh=False)
    if status not in WAITING:
        return False
    if status != JobStatus.SCHEDULED:
        # "queued" but no longer in the queue: dequeued by a worker that died before it
        # started the job (RQ would requeue it only at its 10-minute maintenance)
        queued = Queue(job.origin, connection=rt.redis).get_job_position(job_id) is not None
        return at is None and queued
    when = _scheduled_at(rt, job)
    now = datetime.now(UTC)
    if when is None or when < now - timedelta(seconds=OVERDUE):
        return False
    return at is None or abs((when - at).total_seconds()) < 1.0


def _submit(rt: Runtime, key: str, base_id: str, func: Any, args: tuple, *,
            at: datetime | None = None, force: bool = False) -> str | None:
    """Enqueue func(*args) (at `at`) unless the latest job for `key` is still waiting."""
    pointer = f"{PREFIX}:job:{key}"
    current = rt.redis.get(pointer)
    if current is not None and not force and _waiting(rt, current.decode(), at):
        return None
    n = rt.redis.incr(f"{PREFIX}:gen:{key}")
    rt.redis.expire(f"{PREFIX}:gen:{key}", POINTER_TTL)
    job_id = base_id if n == 1 else f"{base_id}-r{n - 1}"
    queue = Queue(PUSH_QUEUE, connection=rt.redis)
    options = {"job_id": job_id, "job_timeout": JOB_TIMEOUT, "result_ttl": RESULT_TTL,
               "failure_ttl": FAILURE_TTL}
    if at is None:
        queue.enqueue(func, *args, **options)
    else:
        queue.enqueue_at(at, func, *args, **options)
    rt.redis.set(pointer, job_id, ex=POINTER_TTL)
    return job_id


def enqueue_fanout(rt: Runtime, campaign_id: int, at: datetime | None = None) -> str | None:
    """Plan and send the campaign now, or at `at` (call after the approve/schedule commit).

    Idempotent: returns the new job id, or None when a planner job for that time waits.
    """
    if at is not None:
        at = at if at.tzinfo else at.replace(tzinfo=UTC)  # stored times are naive UTC
        if at <= rt.now():
            at = None
    return _submit(rt, f"fanout:{campaign_id}", f"qzbot-push-fanout-{campaign_id}", fan_out,
                   (campaign_id,), at=at)


def enqueue_batch(rt: Runtime, campaign_id: int, batch: int,
                  delay: float | None = None) -> str | None:
    """Send a batch now (unless its job waits or runs), or again after `delay` seconds."""
    key = f"batch:{campaign_id}:{batch}"
    base = f"qzbot-push-batch-{campaign_id}-{batch}"
    if delay is not None:
        at = datetime.now(UTC) + timedelta(seconds=max(0.0, delay))
        return _submit(rt, key, base, send_batch, (campaign_id, batch), at=at, force=True)
    if recovery.lease_alive(rt.redis, recovery.lease_key(campaign_id, batch)):
        return None
    return _submit(rt, key, base, send_batch, (campaign_id, batch))


def fan_out(campaign_id: int) -> dict:
    """RQ job: start a due campaign and plan its delivery rows, enqueueing batch jobs."""
    rt = job_runtime()
    with _failures_recorded(rt, campaign_id, None):
        report = fanout.plan_fanout(rt, campaign_id,
                                    lambda batch: enqueue_batch(rt, campaign_id, batch))
    log.info("campaign %s planner: %s rows=%d batches=%d", campaign_id, report.state,
             report.rows, report.batches)
    return {"state": report.state, "rows": report.rows, "batches": report.batches}


def send_batch(campaign_id: int, batch: int) -> dict:
    """RQ job: deliver one batch; re-enqueued with a delay after a quota or transport halt."""
    rt = job_runtime()
    with _failures_recorded(rt, campaign_id, batch):
        report = deliver.run_batch(
            rt, campaign_id, batch,
            reschedule=lambda delay: enqueue_batch(rt, campaign_id, batch, delay=delay))
    log.info("campaign %s batch %s: %s %s%s", campaign_id, batch, report.state,
             dict(report.counts), f" resume in {report.resume_in:.1f}s"
             if report.resume_in is not None else "")
    return {"state": report.state, "counts": dict(report.counts),
            "resume_in": report.resume_in}


@contextmanager
def _failures_recorded(rt: Runtime, campaign_id: int, batch: int | None) -> Iterator[None]:
    """Log a failing job, note it in the campaign's audit log and count it; re-raise for RQ."""
    try:
        yield
    except Exception as exc:
        job = get_current_job()
        job_id = job.id if job is not None else None
        log.exception("push job %s failed (campaign %s batch %s)", job_id, campaign_id, batch)
        try:
            rt.redis.incr(f"{PREFIX}:fails:{campaign_id}:{'plan' if batch is None else batch}")
            with transaction(rt.sessions) as session:
                audit(session, SYSTEM, "job_failed", rt.now(), campaign_id=campaign_id,
                      job_id=job_id, batch=batch, error=f"{type(exc).__name__}: {exc}"[:500])
        except Exception:  # the job's own failure matters more; RQ records it next
            log.exception("could not record the failure of push job %s", job_id)
        raise


def _failures(rt: Runtime, campaign_id: int, batch: int | str) -> int:
    return int(rt.redis.get(f"{PREFIX}:fails:{campaign_id}:{batch}") or 0)


def _give_up_planning(rt: Runtime, campaign_id: int) -> int:
    """The planner failed MAX_JOB_FAILURES times: stop the campaign, alert."""
    reason = f"fan-out failed {MAX_JOB_FAILURES} times (audit: job_failed)"
    with transaction(rt.sessions) as session:
        stopped = fanout.stop_campaign(session, campaign_id, reason, rt.now())
    if stopped:
        log.error("ALERT campaign %s stopped: %s", campaign_id, reason)
    return int(stopped)


def sweep(rt: Runtime) -> dict[str, int]:
    """Re-enqueue stranded work (due campaigns, dead planners, leaseless batches).

    Also closes what cannot go on: rows of stopped/cancelled campaigns, campaigns with no
    open row left, batches whose job failed MAX_JOB_FAILURES times.
    """
    done: Counter[str] = Counter()
    now = rt.now()
    with transaction(rt.sessions) as session:
        found = recovery.find_stranded(session, rt.redis, now)
        for campaign_id in found.halted:
            halted = session.get(Campaign, campaign_id)
            done["skipped"] += fanout.skip_remaining(
                session, campaign_id, fanout.halt_reason(halted.status, halted.stop_reason), now)
            done["interrupted"] += recovery.close_orphans(session, rt.redis, campaign_id, now)
        for campaign_id in found.finishable:
            done["finished"] += fanout.finish_if_done(session, campaign_id, now)
        retry = []
        for campaign_id, batch in found.batches:
            if _failures(rt, campaign_id, batch) < MAX_JOB_FAILURES:
                retry.append((campaign_id, batch))
                continue
            done["abandoned"] += recovery.abandon_batch(session, campaign_id, batch, now)
            audit(session, SYSTEM, "batch_abandoned", now, campaign_id=campaign_id,
                  batch=batch, failures=MAX_JOB_FAILURES)
            log.error("ALERT campaign %s batch %s failed %d times: its open rows are closed "
                      "(reason job_failed)", campaign_id, batch, MAX_JOB_FAILURES)
    for campaign_id in dict.fromkeys(found.fanouts):
        if _failures(rt, campaign_id, "plan") >= MAX_JOB_FAILURES:
            done["stopped"] += _give_up_planning(rt, campaign_id)
        elif _submit(rt, f"fanout:{campaign_id}", f"qzbot-push-fanout-{campaign_id}", fan_out,
                     (campaign_id,)) is not None:
            done["fanouts"] += 1
    for campaign_id, batch in retry:
        if enqueue_batch(rt, campaign_id, batch) is not None:
            done["batches"] += 1
    done = Counter({k: n for k, n in done.items() if n})
    if done:
        log.info("push sweep: %s", dict(done))
    return dict(done)
