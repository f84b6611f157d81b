"""The runtime's fork rule (Runtime.after_fork), shared by the jobs of both queues."""

from __future__ import annotations

import os

from sqlalchemy import text

from bot import jobs


def test_after_fork_in_another_process_drops_the_inherited_clients(runtime):
    """A work horse (another pid) rebuilds its clients; the owner keeps its own."""
    marker = object()
    runtime.clients.limiter = marker
    runtime.claim_process()
    runtime.after_fork()  # the owner itself: nothing dropped
    assert runtime.clients.limiter is marker
    runtime.owner_pid = os.getpid() + 1  # as in a forked child: the parent owned them
    runtime.after_fork()
    assert runtime.clients.limiter is None and runtime.owner_pid == os.getpid()
    with runtime.sessions() as session:  # the pool is usable again in this process
        assert session.execute(text("SELECT 1")).scalar() == 1


def test_job_runtime_applies_the_fork_rule(runtime):
    """Jobs of either queue start from job_runtime(), which owns the process first."""
    jobs.use_runtime(runtime)
    try:
        assert runtime.owner_pid is None
        assert jobs.job_runtime() is runtime
        assert runtime.owner_pid == os.getpid()
    finally:
        jobs.use_runtime(None)
