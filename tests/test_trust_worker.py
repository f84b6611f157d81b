"""Issue 6 item 8d: a worker killed mid-campaign frees its leases within seconds.

Leases name their holder and each holder keeps a short-lived heartbeat (push.recovery), so
a lease whose owner's heartbeat is gone counts as free long before `lease_seconds`. A
`qzbot worker --burst` started after the kill finishes the campaign: it takes over dead
owners' leases and waits for leases whose owner still looks alive (a kill a moment ago).
Assertions are on state, never on time: lease_seconds is 600, so the old code, which
waited for the lease to lapse, leaves the campaign unfinished when the burst worker exits.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.runtime import build_runtime
from bot.store.models import Delivery
from push import fanout
from push.recovery import HEARTBEAT, Lease, heartbeat_key, lease_alive, lease_key
from tests.conftest import make_settings
from tests.pushkit import (
    add_follower,
    campaign,
    make_campaign,
    oid,
    payload,
    rows,
    start_worker,
    stop_worker,
    subscribe,
    worker_env,
)

LEASE_SECONDS = 600  # far longer than the test may take: only heartbeats can free a lease
DEAD, JUST_DIED = "deadhost:4242:0bad", "justdied:4343:0bad"


@pytest.fixture
def rt(db_url, redis_client, clock, sim):
    """This process's runtime (test data, planning, checks) on the workers' database."""
    settings = make_settings(db_url, wechat={"api_base_url": sim.url},
                             push={"batch_size": 10, "concurrency": 4,
                                   "lease_seconds": LEASE_SECONDS})
    runtime = build_runtime(settings, redis_client=redis_client, clock=clock)
    yield runtime
    runtime.close()


def test_lease_of_a_dead_owner_is_free_and_taken_over(redis_client):
    key = "qzbot:push:lease:99:1"
    redis_client.set(key, f"{DEAD}|t1", px=LEASE_SECONDS * 1000)
    assert not lease_alive(redis_client, key)  # no heartbeat: its owner is gone
    redis_client.set(heartbeat_key(DEAD), "1", px=60_000)
    assert lease_alive(redis_client, key)
    assert not Lease(redis_client, key, LEASE_SECONDS).acquire()  # a live owner keeps it
    redis_client.delete(heartbeat_key(DEAD))
    lease = Lease(redis_client, key, LEASE_SECONDS)
    assert lease.acquire()  # taken over at once, not after 600 s
    with lease:
        assert redis_client.get(key).decode() == lease.token
        assert lease.token.startswith(HEARTBEAT.worker + "|")
        assert lease_alive(redis_client, key)  # our own heartbeat beats while we hold it
        assert not Lease(redis_client, key, LEASE_SECONDS).acquire()
    assert redis_client.get(key) is None
    assert not redis_client.exists(heartbeat_key(HEARTBEAT.worker))  # last holder gone


def test_burst_worker_finishes_a_campaign_left_by_killed_workers(rt, sim, db_url, tmp_path):
    now = rt.now()
    with rt.sessions() as s:
        openids = [oid(i) for i in range(30)]
        for o in openids:
            add_follower(s, o)
            subscribe(s, o, now)
        cid = make_campaign(s, now, payload=payload("template")).id
        s.commit()
    # planned, but the batch jobs went down with the workers that had dequeued them
    assert fanout.plan_fanout(rt, cid, lambda batch: None).batches == 3
    with rt.sessions() as s:  # the first worker died with two sends in flight
        for d in s.scalars(select(Delivery).where(Delivery.openid.in_(openids[:2]))):
            d.status, d.channel, d.attempts = "sending", "template", 1
        s.commit()
    ms = LEASE_SECONDS * 1000
    rt.redis.set(lease_key(cid, 1), f"{DEAD}|t1", px=ms)  # killed a while ago
    rt.redis.set(lease_key(cid, 2), f"{DEAD}|t2", px=ms)
    rt.redis.set(heartbeat_key(JUST_DIED), "1", px=1500)  # killed a moment ago
    rt.redis.set(lease_key(cid, 3), f"{JUST_DIED}|t3", px=ms)
    env = worker_env(db_url, sim.url, batch_size=10, concurrency=4,
                     lease_seconds=LEASE_SECONDS)
    proc = start_worker(env, tmp_path / "burst.log", burst=True)
    try:
        proc.wait(timeout=120)
    finally:
        stop_worker(proc, kill=True)
    log = (tmp_path / "burst.log").read_text()
    assert campaign(rt, cid).status == "done", log[-3000:]
    got = rows(rt, cid)
    assert {d.status for d in got.values()} == {"sent"} and len(got) == 30
    assert sorted(sim.received()) == openids
    assert sum(sim.received().values()) == 30  # the simulated kill sent nothing itself
