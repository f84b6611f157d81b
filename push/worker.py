"""RQ workers: `qzbot worker` (fork per job, with scheduler) and the embedded in-thread worker.

Both sweep for stranded push work at start and then periodically (push.jobs.sweep): a
batch whose worker was killed is enqueued again once its lease lapses, so restarting
`qzbot worker` finishes every campaign without a manual step. The forking worker sweeps
from a separate (spawned) process: a thread in a process that forks a work horse per job
could be holding a lock (a connection pool's, a statement cache's) at the fork, and the
horse would wait for it forever.
"""

from __future__ import annotations

import importlib
import logging
import multiprocessing
import os
import threading
import time
from multiprocessing.process import BaseProcess

from rq import Queue, SimpleWorker, Worker
from rq.timeouts import TimerDeathPenalty

from bot import jobs
from bot.runtime import Runtime, build_runtime
from bot.settings import Settings
from push import jobs as push_jobs

log = logging.getLogger("qzbot.worker")
QUEUES = [jobs.REPLIES_QUEUE, push_jobs.PUSH_QUEUE]


def queue_names() -> list[str]:
    """Every queue a qzbot worker listens on, highest priority first."""
    return list(QUEUES)


class ThreadWorker(SimpleWorker):
    """A SimpleWorker that can run in a non-main thread (no signal handlers, timer timeouts)."""

    death_penalty_class = TimerDeathPenalty

    def _install_signal_handlers(self) -> None:  # signals only work in the main thread
        pass


def sweep_interval(rt: Runtime) -> float:
    """Seconds between sweeps: half a lease, so a dead worker's batch waits < 1.5 leases."""
    return max(1.0, rt.settings.push.lease_seconds / 2)


def safe_sweep(rt: Runtime) -> dict[str, int]:
    """One sweep; an error is logged (with traceback), never fatal to the worker."""
    try:
        return push_jobs.sweep(rt)
    except Exception:  # process boundary: the next sweep tries again
        log.exception("push sweep failed")
        return {}


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
    logging.basicConfig(level=logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
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
    rt.extras["push_pid"] = os.getpid()  # jobs run in this very process: keep its pool
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
    rt.extras["push_pid"] = os.getpid()  # a forked work horse has another pid: new pool
    for name in preload:
        importlib.import_module(name)
    safe_sweep(rt)
    rt.engine.dispose()  # each job's work horse is a fork: don't share pooled connections
    sweeper = None if burst else start_sweeper_process(rt)
    queues = [Queue(name, connection=rt.redis) for name in queue_names()]
    worker = Worker(queues, connection=rt.redis)
    try:
        return worker.work(burst=burst, with_scheduler=True, logging_level="INFO")
    finally:
        if sweeper is not None:
            sweeper.terminate()
            sweeper.join(timeout=5)
