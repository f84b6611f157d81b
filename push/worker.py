"""RQ workers: `qzbot worker` (fork per job, with scheduler) and the embedded in-thread worker."""

from __future__ import annotations

import logging
import threading

from rq import Queue, SimpleWorker, Worker
from rq.timeouts import TimerDeathPenalty

from bot import jobs
from bot.runtime import Runtime

log = logging.getLogger("qzbot.worker")
QUEUES = [jobs.REPLIES_QUEUE]


def queue_names() -> list[str]:
    """Every queue a qzbot worker listens on, highest priority first."""
    return list(QUEUES)


class ThreadWorker(SimpleWorker):
    """A SimpleWorker that can run in a non-main thread (no signal handlers, timer timeouts)."""

    death_penalty_class = TimerDeathPenalty

    def _install_signal_handlers(self) -> None:  # signals only work in the main thread
        pass


def start_thread_worker(rt: Runtime) -> threading.Thread:
    """Run a worker inside this process (embedded Redis has no other process to reach)."""
    jobs.use_runtime(rt)
    queues = [Queue(name, connection=rt.redis) for name in queue_names()]
    worker = ThreadWorker(queues, connection=rt.redis)
    thread = threading.Thread(target=worker.work, kwargs={"logging_level": "WARNING"},
                              daemon=True, name="rq-worker")
    thread.start()
    return thread


def run_worker(rt: Runtime, burst: bool = False) -> bool:
    """Run a forking RQ worker with the scheduler on every qzbot queue."""
    jobs.use_runtime(rt)
    rt.engine.dispose()  # each job's work horse is a fork: don't share pooled connections
    queues = [Queue(name, connection=rt.redis) for name in queue_names()]
    worker = Worker(queues, connection=rt.redis)
    return worker.work(burst=burst, with_scheduler=True, logging_level="INFO")
