"""The worker's casework tick: alerts and lapsed corrections once per interval across
processes (a Redis lease), their notices queued, and notices whose enqueue was lost found again."""

from __future__ import annotations

from datetime import timedelta

from rq import Queue
from sqlalchemy import select

from bot.store.models import CaseAlert
from bot.worker import CASE_TICK_KEY, casework_tick
from cases import actions
from push.jobs import PUSH_QUEUE
from tests.test_cases_applications import at, cw  # noqa: F401 - the fixture

__all__ = ["cw"]


def queued_notice_ids(rt) -> set[int]:
    queue = Queue(PUSH_QUEUE, connection=rt.redis)
    return {job.args[0] for job in queue.jobs if job.func_name.endswith("send_notice")}


def test_tick_runs_once_per_interval_and_queues_the_lapse_notice(cw, clock):
    number = cw.register("2026-04-28")
    cw.do("reg", actions.request_correction, number, at("2026-04-29"), what="写明文号",
          limit_days=5)
    cw.rt.redis.flushdb()  # the notices the steps queued are not the tick's
    clock.now = at("2026-06-01", 9)
    done = casework_tick(cw.rt)
    assert done is not None and done["lapsed"] == 1 and done["queued"] >= 1
    assert cw.case(number).state == "closed"
    assert casework_tick(cw.rt) is None  # another tick within the interval: nobody runs
    assert cw.rt.redis.ttl(CASE_TICK_KEY) > 0


def test_lost_notices_are_queued_again_after_the_grace(cw, clock):
    number = cw.to_handling("2026-04-28")
    cw.rt.redis.flushdb()  # as if Redis had been down when the steps queued their notices
    clock.now = at("2026-04-28", 10) + timedelta(minutes=5)
    first = casework_tick(cw.rt, force=True)
    assert first["queued"] == 0  # too fresh: their own enqueue may still be on its way
    clock.now = at("2026-05-21", 9)  # T-5 of the answer clock; the notices are old now
    second = casework_tick(cw.rt, force=True)
    assert second["alerts"] == 1 and second["queued"] >= 1
    assert queued_notice_ids(cw.rt)
    with cw.rt.sessions() as s:
        assert [a.level for a in s.scalars(select(CaseAlert))] == ["T-5"]
    assert [e.detail["level"] for e in cw.events(number) if e.action == "alert"] == ["T-5"]
