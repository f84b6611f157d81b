"""The push engine across real `qzbot worker` processes: a shared rate limit, and a worker
killed with SIGKILL mid-batch (with its job horse, scheduler and sweeper: the whole process
tree, as a crash would) that loses nothing and duplicates at most `concurrency` sends."""

from __future__ import annotations

import pytest

from bot.runtime import build_runtime
from push import fanout, jobs
from tests.conftest import APP_ID, make_settings
from tests.pushkit import (
    Sim,
    add_follower,
    campaign,
    count_rows,
    make_campaign,
    oid,
    payload,
    rows,
    start_worker,
    stop_worker,
    subscribe,
    wait_for,
    worker_env,
)
from wechatsim import SimConfig, create_simulator, start_in_thread

CONCURRENCY = 4


@pytest.fixture
def sim():
    """The simulator with 30 ms per call, so a batch is mid-flight long enough to kill."""
    running = start_in_thread(create_simulator(SimConfig(app_id=APP_ID,
                                                         app_secret="test-secret",
                                                         latency_ms=30)))
    yield Sim(running)
    running.stop()


@pytest.fixture
def rt(db_url, redis_client, clock, sim):
    """This process's runtime (test data, planning, checks) on the workers' database."""
    settings = make_settings(db_url, wechat={"api_base_url": sim.url},
                             push={"batch_size": 40, "concurrency": CONCURRENCY,
                                   "lease_seconds": 3})
    runtime = build_runtime(settings, redis_client=redis_client, clock=clock)
    yield runtime
    runtime.close()


def planned_campaign(rt, n: int) -> tuple[int, list[str]]:
    """n template-channel recipients, the rows planned and the batch jobs enqueued."""
    now = rt.now()
    with rt.sessions() as s:
        openids = [oid(i) for i in range(n)]
        for o in openids:
            add_follower(s, o)
            subscribe(s, o, now)
        cid = make_campaign(s, now, payload=payload("template")).id
        s.commit()
    fanout.plan_fanout(rt, cid, lambda batch: jobs.enqueue_batch(rt, cid, batch))
    return cid, openids


def test_rate_limit_is_shared_by_two_worker_processes(rt, sim, db_url, tmp_path):
    cid, openids = planned_campaign(rt, 120)
    env = worker_env(db_url, sim.url, batch_size=10, concurrency=8, lease_seconds=3,
                     rate_limits={"template": 40, "custom": 40, "bizsend": 40,
                                  "subscribe_once": 40})
    workers = [start_worker(env, tmp_path / f"w{i}.log", burst=True) for i in range(2)]
    try:
        for proc in workers:
            proc.wait(timeout=60)
    finally:
        for proc in workers:
            stop_worker(proc, kill=True)
    times = sorted(m["time"] for m in sim.messages())
    assert len(times) == 120 and sorted(sim.received()) == openids
    rate = (len(times) - 1) / (times[-1] - times[0])
    assert 20 <= rate <= 40 * 1.25, rate  # one budget for both processes, not 40 each
    for i in range(2):  # both worked on the campaign
        assert f"campaign {cid} batch" in (tmp_path / f"w{i}.log").read_text()
    assert campaign(rt, cid).status == "done"


def test_worker_killed_mid_batch_loses_nothing(rt, sim, db_url, tmp_path):
    cid, openids = planned_campaign(rt, 240)
    env = worker_env(db_url, sim.url, batch_size=40, concurrency=CONCURRENCY,
                     lease_seconds=3)
    first = start_worker(env, tmp_path / "first.log")
    try:
        wait_for(lambda: count_rows(rt, cid, "sent") >= 60, 30, "60 rows sent")
    finally:
        stop_worker(first, kill=True)
    in_flight = count_rows(rt, cid, "sending")
    sent_before = count_rows(rt, cid, "sent")
    assert 1 <= in_flight <= CONCURRENCY and sent_before < 240  # killed mid-batch
    second = start_worker(env, tmp_path / "second.log")
    try:
        wait_for(lambda: campaign(rt, cid).status == "done", 60, "the campaign to finish",
                 interval=0.2)
    finally:
        stop_worker(second)
    got = rows(rt, cid)
    assert {d.status for d in got.values()} == {"sent"} and len(got) == 240
    received = sim.received()
    assert sorted(received) == openids  # every recipient at least once ...
    duplicates = sum(n - 1 for n in received.values())
    assert duplicates <= CONCURRENCY  # ... and beyond once only for sends in flight at the kill
    assert duplicates <= in_flight
    print(f"killed with {in_flight} rows in flight, {sent_before} sent; "
          f"{duplicates} duplicate message(s) after the restart")
