"""RQ workers: `qzbot worker` (fork per job, with scheduler) and the embedded in-thread worker.

A composition root: both listen on both queues, the citizen side's replies queue
(push.followups' customer-service texts) first, then the push queue (push.jobs). The fork
rule for jobs of either queue is bot.runtime.Runtime.after_fork; here a worker claims its
process (the in-thread worker's jobs share its pool) and disposes the pool before forking.

Both sweep for stranded push work at start and then every few seconds (push.jobs.sweep):
a batch whose worker was killed is enqueued again once that worker's heartbeat is gone
(push.recovery), so restarting `qzbot worker` finishes every campaign without a manual
step. `qzbot worker --burst` does too: before it exits it waits while live workers hold
push work (a worker killed a moment ago still looks alive for HEARTBEAT_TTL seconds) or
a push job is due within BURST_HORIZON, and takes over whatever they leave. The forking
worker sweeps from a separate (spawned) process: a thread in a process that forks a work
horse per job could be holding a lock (a connection pool's, a statement cache's) at the
fork, and the horse would wait for it forever.
"""

from __future__ import annotations

import importlib
import logging
import multiprocessing
import os
import threading
import time
from datetime import timedelta
from multiprocessing.process import BaseProcess

from rq import Queue, SimpleWorker, Worker
from rq.registry import ScheduledJobRegistry
from rq.timeouts import TimerDeathPenalty
from sqlalchemy import select

from bot import jobs
from bot.clock import to_utc_naive
from bot.logs import setup_logging
from bot.runtime import Runtime, build_runtime
from bot.settings import Settings
from bot.store.db import transaction
from bot.store.models import CaseEvent
from cases import jobs as case_jobs
from cases import notify as case_notify
from push import (
    followups,  # noqa: F401 - the replies job: loaded once, not per forked job
    recovery,
)
from push import jobs as push_jobs

log = logging.getLogger("qzbot.worker")
QUEUES = [jobs.REPLIES_QUEUE, push_jobs.PUSH_QUEUE]
BURST_HORIZON = 60.0  # seconds: a --burst worker waits for push jobs scheduled this soon
BURST_POLL = 0.5


def queue_names() -> list[str]:
    """Every queue a qzbot worker listens on, highest priority first."""
    return list(QUEUES)


class ThreadWorker(SimpleWorker):
    """A SimpleWorker that can run in a non-main thread (no signal handlers, timer timeouts)."""

    death_penalty_class = TimerDeathPenalty

    def _install_signal_handlers(self) -> None:  # signals only work in the main thread
        pass


def sweep_interval(rt: Runtime) -> float:
    """Seconds between sweeps: a dead worker's batch waits < HEARTBEAT_TTL + this."""
    return max(1.0, min(rt.settings.push.lease_seconds / 2, recovery.HEARTBEAT_TTL))


def safe_sweep(rt: Runtime) -> dict[str, int]:
    """One sweep; an error is logged (with traceback), never fatal to the worker."""
    try:
        done = push_jobs.sweep(rt)
    except Exception:  # process boundary: the next sweep tries again
        log.exception("push sweep failed")
        done = {}
    try:
        casework_tick(rt)
    except Exception:  # process boundary: the next tick tries again
        log.exception("casework alerts failed")
    return done


CASE_TICK_SECONDS = 600  # casework alerts and lost notices: every 10 minutes, one process
CASE_TICK_KEY = "qzbot:cases:tick"
NOTICE_GRACE = timedelta(minutes=15)  # a notice this old with no final record was lost


def casework_tick(rt: Runtime, force: bool = False) -> dict[str, int] | None:
    """Every CASE_TICK_SECONDS, in one process of all (a Redis SET NX lease): record the due-soon
    and overdue alerts and close lapsed corrections (cases.jobs.run_alerts, idempotent), then
    queue the citizen notices those produced and any notice whose enqueue was lost (Redis
    down at the time). None when another process had the tick."""
    if not force and not rt.redis.set(CASE_TICK_KEY, str(os.getpid()), nx=True,
                                      ex=CASE_TICK_SECONDS):
        return None
    now = rt.now()
    with transaction(rt.sessions) as session:
        run = case_jobs.run_alerts(session, rt.settings, now)
    with rt.sessions() as session:
        unsent = case_notify.unsent_notices(session)
        cutoff = to_utc_naive(now - NOTICE_GRACE)
        lost = [e.id for e in session.scalars(select(CaseEvent).where(
            CaseEvent.id.in_(unsent or [0]), CaseEvent.at < cutoff))
            if e.id not in run.notices]
    queued = case_notify.enqueue_notices(rt, [*run.notices, *lost])
    if run.total or run.lapsed or lost:
        log.info("casework tick: %d clock(s) checked, alerts %s, lapsed %d, notices queued %d",
                 run.checked, run.sent, len(run.lapsed), queued)
    return {"checked": run.checked, "alerts": run.total, "lapsed": len(run.lapsed),
            "queued": queued}


def start_sweeper(rt: Runtime, interval: float | None = None) -> threading.Event:
    """Sweep every `interval` seconds in a daemon thread; set the returned event to stop."""
    stop = threading.Event()
    period = interval or sweep_interval(rt)

    def loop() -> None:
        while not stop.wait(period):
            safe_sweep(rt)

    threading.Thread(target=loop, daemon=True, name="push-sweep").start()
    return stop


def _sweep_forever(settings: Settings, interval: float, parent: int) -> None:
    """The sweeper process: its own runtime; it ends when the worker that started it has."""
    setup_logging(logging.WARNING)  # the CLI's format: offset times, openids redacted
    logging.getLogger("qzbot").setLevel(settings.log.level.upper())
    rt = build_runtime(settings)
    try:
        while os.getppid() == parent:
            safe_sweep(rt)
            deadline = time.monotonic() + interval
            while time.monotonic() < deadline and os.getppid() == parent:
                time.sleep(min(0.5, interval))
    finally:
        rt.close()


def start_sweeper_process(rt: Runtime, interval: float | None = None) -> BaseProcess:
    """Sweep every `interval` seconds from a spawned process (for a forking worker)."""
    process = multiprocessing.get_context("spawn").Process(
        target=_sweep_forever, args=(rt.settings, interval or sweep_interval(rt), os.getpid()),
        name="qzbot-push-sweep", daemon=True)
    process.start()
    return process


def start_thread_worker(rt: Runtime) -> threading.Thread:
    """Run a worker inside this process (embedded Redis has no other process to reach)."""
    jobs.use_runtime(rt)
    rt.claim_process()  # jobs run in this very process: keep its pool
    queues = [Queue(name, connection=rt.redis) for name in queue_names()]
    worker = ThreadWorker(queues, connection=rt.redis)
    safe_sweep(rt)
    start_sweeper(rt)
    thread = threading.Thread(target=worker.work, kwargs={"logging_level": "WARNING"},
                              daemon=True, name="rq-worker")
    thread.start()
    return thread


def run_worker(rt: Runtime, burst: bool = False, preload: tuple[str, ...] = ()) -> bool:
    """Run a forking RQ worker with the scheduler on every qzbot queue.

    preload: modules to import once here rather than in every forked job (e.g. job code).
    """
    jobs.use_runtime(rt)
    rt.claim_process()  # a forked work horse has another pid: it drops the pool (after_fork)
    for name in preload:
        importlib.import_module(name)
    safe_sweep(rt)
    rt.engine.dispose()  # each job's work horse is a fork: don't share pooled connections
    sweeper = None if burst else start_sweeper_process(rt)
    queues = [Queue(name, connection=rt.redis) for name in queue_names()]
    try:
        if burst:
            return _run_burst(rt, queues)
        worker = Worker(queues, connection=rt.redis)
        return worker.work(burst=False, with_scheduler=True, logging_level="INFO")
    finally:
        if sweeper is not None:
            sweeper.terminate()
            sweeper.join(timeout=5)


def _run_burst(rt: Runtime, queues: list[Queue]) -> bool:
    """--burst: work until idle, then wait for held or imminent push work and take it over."""
    worked = False
    while True:
        worker = Worker(queues, connection=rt.redis)  # one RQ worker (name) per round
        worked = bool(worker.work(burst=True, with_scheduler=True, logging_level="INFO")) \
            or worked
        more = _await_push_work(rt)
        rt.engine.dispose()  # the next round forks work horses again
        if not more:
            return worked


def _await_push_work(rt: Runtime) -> bool:
    """True once there is push work to run; False when none is held by a live worker or due
    within BURST_HORIZON (then the burst worker may exit)."""
    push_queue = Queue(push_jobs.PUSH_QUEUE, connection=rt.redis)
    scheduled = ScheduledJobRegistry(queue=push_queue)
    while True:
        done = safe_sweep(rt)  # enqueues what a dead worker left once its heartbeat is gone
        now = time.time()
        if done.get("fanouts") or done.get("batches") or len(push_queue):
            return True
        if scheduled.get_jobs_to_schedule(int(now)):  # due: the next round's scheduler
            time.sleep(BURST_POLL)  # enqueues it (or another worker's does meanwhile)
            return True
        if not _held(rt) and not scheduled.get_jobs_to_schedule(int(now + BURST_HORIZON)):
            return False
        time.sleep(BURST_POLL)


def _held(rt: Runtime) -> int:
    """Push work (planners, batches with open rows) that a live worker holds right now."""
    try:
        with transaction(rt.sessions) as session:
            return len(recovery.find_stranded(session, rt.redis, rt.now()).held)
    except Exception:  # process boundary of the burst loop: count it as nothing held
        log.exception("could not look for held push work")
        return 0
