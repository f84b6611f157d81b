"""The push engine: audience, channel rules, fan-out, batches, error classes, recovery.

Real Redis (db 15), real RQ workers (SimpleWorker, burst, in-process), the WeChat API
simulator on a loopback port in a thread; SQLite and PostgreSQL via `db_url`.
"""

from __future__ import annotations

import logging

import pytest
from rq import Queue
from rq.registry import FailedJobRegistry, ScheduledJobRegistry
from sqlalchemy import select

from bot.jobs import use_runtime
from bot.store.models import AuditEntry, Campaign, Consent, Delivery, Follower
from push import channels, deliver, fanout, jobs, ratelimit
from push.audience import audience_select, preview
from tests.conftest import APP_ID
from tests.pushkit import (
    FINAL,
    add_follower,
    ago,
    campaign,
    drain,
    grant,
    make_campaign,
    oid,
    payload,
    push_runtime,
    rows,
    subscribe,
)


@pytest.fixture
def rt(db_url, redis_client, clock, sim):
    """The push runtime, installed for jobs run by in-process workers."""
    runtime = push_runtime(db_url, redis_client, clock, sim)
    use_runtime(runtime)
    yield runtime
    use_runtime(None)
    runtime.clients.close()
    runtime.close()


def setup_campaign(rt, n: int = 10, *, consent: bool = False, **fields) -> tuple[int, list]:
    """n active subscribers of 出行资讯 (optionally with long-term consent) and a campaign."""
    now = rt.now()
    with rt.sessions() as s:
        openids = [oid(i) for i in range(n)]
        for o in openids:
            add_follower(s, o)
            subscribe(s, o, now)
            if consent:
                grant(s, o, now)
        c = make_campaign(s, now, **fields)
        s.commit()
        return c.id, openids


def counts_of(rt, campaign_id: int) -> dict:
    """campaign_counts in a session of its own."""
    with rt.sessions() as s:
        return fanout.campaign_counts(s, campaign_id)


def run(rt, campaign_id: int, timeout: float = 30.0) -> None:
    """Enqueue the fan-out and let in-process workers finish it."""
    jobs.enqueue_fanout(rt, campaign_id)
    drain(rt, campaign_id, timeout)


# --- audience ------------------------------------------------------------------------


def test_audience_topic_district_kind_and_unfollowed(rt):
    now = rt.now()
    with rt.sessions() as s:
        for i in range(8):
            add_follower(s, oid(i), active=i != 7)
        subscribe(s, oid(0), now)  # any district, any kind
        subscribe(s, oid(1), now, district="南安市")
        subscribe(s, oid(1), now, district="南安市", notice_kind="停运")  # twice: once
        subscribe(s, oid(2), now, district="丰泽区")  # wrong district
        subscribe(s, oid(3), now, notice_kind="施工")  # wrong kind
        subscribe(s, oid(4), now, topic="政务公开")  # another topic
        subscribe(s, oid(5), now, district="南安市", notice_kind="停运")
        subscribe(s, oid(7), now)  # unfollowed
        # oid(6) follows but subscribes to nothing
        c = make_campaign(s, now, district="南安市", notice_kind="停运")
        assert list(s.scalars(audience_select(c))) == [oid(0), oid(1), oid(5)]
        assert preview(s, c) == 3
        c.district, c.notice_kind = None, None  # no filter: every subscriber of the topic
        assert list(s.scalars(audience_select(c))) == [oid(i) for i in (0, 1, 2, 3, 5)]
        c.openids = [oid(6), oid(7), oid(2), oid(6), "oNobody0001"]
        assert list(s.scalars(audience_select(c))) == [oid(2), oid(6)]
        c.openids, c.all_followers = None, True
        assert preview(s, c) == 7
        c.all_followers, c.topic = False, None
        assert preview(s, c) == 0


# --- channel rules -----------------------------------------------------------------


def test_channel_rules(rt):
    now = rt.now()
    pl = payload("subscribe")
    with rt.sessions() as s:
        for i in range(8):
            add_follower(s, oid(i), last_message_at=ago(now, hours=1) if i in (3, 4) else None,
                         cs_sent=5 if i == 4 else 0, active=i != 7)
        add_follower(s, oid(8), last_message_at=ago(now, hours=49))
        grant(s, oid(0), now)  # long-term
        popup = grant(s, oid(1), now, long_term=False, scene="1700000000")
        legacy = grant(s, oid(2), now, long_term=False, scene="17", source="redirect")
        grant(s, oid(3), now, long_term=False, scene="9").status = "used"
        s.flush()
        f = {o.openid: o for o in s.scalars(select(Follower))}
        pick = lambda i, p=pl: channels.choose(s, 100 + i, f[oid(i)], p, now)  # noqa: E731
        assert pick(0).channel == "bizsend" and not pick(0).consumed
        one = pick(1)
        assert (one.channel, one.consumed, one.consent_id) == ("bizsend", True, popup.id)
        s.refresh(popup)
        assert (popup.status, popup.used_by) == ("used", 101)
        assert pick(1) == "no_channel"  # consumed once, gone
        once = pick(2)
        assert (once.channel, once.scene, once.consent_id) == ("subscribe_once", "17", legacy.id)
        assert pick(3).channel == "custom"  # window open; its used consent does not count
        s.refresh(f[oid(3)])
        assert f[oid(3)].cs_sent == 1
        assert pick(4) == "no_channel"  # five customer-service messages already
        assert pick(8) == "no_channel"  # window closed after 48 h
        assert pick(5, payload("template")).channel == "template"
        assert pick(7) == "unfollowed"
        channels.release(s, one)
        s.refresh(popup)
        assert (popup.status, popup.used_by) == ("available", None)


@pytest.mark.parametrize("errcode,action", [
    (43004, "failed"), (43101, "failed"), (45009, "quota"), (45011, "quota"),
    (45015, "next_channel"), (45047, "next_channel"), (47003, "stop"), (48001, "stop"),
    (40001, "retry"), (-1, "unknown"), (40003, "failed")])
def test_error_classes(errcode, action):
    from bot.errors import WeChatAPIError

    assert channels.judge(WeChatAPIError(errcode, "x", "message/template/send")).action == action


# --- end to end --------------------------------------------------------------------


def test_every_rule_end_to_end_exactly_once(rt, sim):
    now = rt.now()
    with rt.sessions() as s:
        for i in range(30):
            add_follower(s, oid(i), active=i != 29,
                         last_message_at=ago(now, hours=2) if 10 <= i < 20 else None)
            subscribe(s, oid(i), now, district="" if i % 3 else "南安市")
        for i in range(10):
            grant(s, oid(i), now, long_term=i % 2 == 0, scene="long_term" if i % 2 == 0
                  else str(i), source="redirect" if i == 5 else "popup")
        add_follower(s, oid(40))  # follows, not subscribed
        add_follower(s, oid(41))
        subscribe(s, oid(41), now, district="丰泽区")  # another district
        c = make_campaign(s, now, district="南安市", payload=payload("subscribe"))
        s.commit()
        cid = c.id
    run(rt, cid)
    got = rows(rt, cid)
    assert set(got) == {oid(i) for i in range(29)}
    assert all(d.status in FINAL for d in got.values())
    assert {o: d.channel for o, d in got.items() if d.status == "sent"} == {
        **{oid(i): "bizsend" for i in range(10) if i != 5}, oid(5): "subscribe_once",
        **{oid(i): "custom" for i in range(10, 20)}}
    assert {d.reason for o, d in got.items() if d.status == "skipped"} == {"no_channel"}
    assert sim.received() == {oid(i): 1 for i in range(20)}
    assert campaign(rt, cid).status == "done" and campaign(rt, cid).finished_at
    counts = counts_of(rt, cid)
    assert counts["status"] == {"sent": 20, "skipped": 9} and counts["total"] == 29
    assert counts["channel"]["custom"] == 10 and counts["reason"] == {"no_channel": 9}
    with rt.sessions() as s:
        actions = [a.action for a in s.scalars(select(AuditEntry).where(
            AuditEntry.campaign_id == cid).order_by(AuditEntry.id))]
        assert actions == ["sending", "fanout_planned", "done"]
        assert s.scalar(select(Consent).where(Consent.openid == oid(1))).status == "used"
        assert s.get(Follower, oid(10)).cs_sent == 1
    # running everything again sends nothing more
    jobs.enqueue_fanout(rt, cid)
    for batch in range(1, 6):
        jobs.enqueue_batch(rt, cid, batch)
    jobs.sweep(rt)
    drain(rt)
    assert sim.received() == {oid(i): 1 for i in range(20)}


def test_one_time_consent_consumed_exactly_once(rt, sim):
    now = rt.now()
    with rt.sessions() as s:
        add_follower(s, oid(1))
        subscribe(s, oid(1), now)
        consent = grant(s, oid(1), now, long_term=False, scene="1700000001")
        first = make_campaign(s, now).id
        second = make_campaign(s, now).id
        s.commit()
        consent_id = consent.id
    jobs.enqueue_fanout(rt, first)
    jobs.enqueue_fanout(rt, second)
    drain(rt, second)
    assert sim.received() == {oid(1): 1}
    one, two = rows(rt, first)[oid(1)], rows(rt, second)[oid(1)]
    assert (one.status, one.channel, two.status, two.reason) == (
        "sent", "bizsend", "skipped", "no_channel")
    with rt.sessions() as s:
        used = s.get(Consent, consent_id)
        assert (used.status, used.used_by) == ("used", one.id)


def test_43101_revokes_the_consent(rt, sim):
    cid, openids = setup_campaign(rt, 6, consent=True)
    with rt.sessions() as s:
        grant(s, oid(2), rt.now(), long_term=False, scene="42")
        s.commit()
    sim.recipients(refused=[oid(2)])
    run(rt, cid)
    got = rows(rt, cid)
    assert (got[oid(2)].status, got[oid(2)].errcode, got[oid(2)].reason) == (
        "failed", 43101, "consent_refused")
    assert sorted(sim.received()) == sorted(set(openids) - {oid(2)})
    with rt.sessions() as s:
        statuses = set(s.scalars(select(Consent.status).where(Consent.openid == oid(2))))
        assert statuses == {"revoked"}
    assert campaign(rt, cid).status == "done"


def test_43004_marks_the_follower_inactive(rt, sim):
    cid, openids = setup_campaign(rt, 6, payload=payload("template"))
    sim.recipients(followers=[o for o in openids if o != oid(4)])
    run(rt, cid)
    got = rows(rt, cid)
    assert (got[oid(4)].status, got[oid(4)].errcode, got[oid(4)].reason) == (
        "failed", 43004, "not_following")
    with rt.sessions() as s:
        assert s.get(Follower, oid(4)).active is False
        again = make_campaign(s, rt.now(), payload=payload("template"))
        s.commit()
        assert oid(4) not in list(s.scalars(audience_select(again)))


def test_campaign_level_error_stops_the_campaign(rt, sim, caplog):
    cid, openids = setup_campaign(rt, 30, consent=True)
    sim.faults({"kind": "errcode", "errcode": 47003, "errmsg": "argument invalid!",
                "openids": [oid(3)]})
    with caplog.at_level(logging.ERROR, logger="qzbot.push"):
        run(rt, cid)
    c = campaign(rt, cid)
    assert c.status == "stopped" and "47003" in c.stop_reason
    got = rows(rt, cid)
    assert all(d.status in FINAL for d in got.values())
    assert (got[oid(3)].status, got[oid(3)].errcode) == ("failed", 47003)
    sent = {o for o, d in got.items() if d.status == "sent"}
    assert len(sent) <= 7 and set(sim.received()) == sent  # nothing after batch 1
    assert {d.reason for d in got.values() if d.status == "skipped"} == {"campaign_stopped"}
    with rt.sessions() as s:
        stop = s.scalar(select(AuditEntry).where(AuditEntry.campaign_id == cid,
                                                 AuditEntry.action == "stopped"))
        assert stop.actor == "system" and stop.detail["errcode"] == 47003
    assert any("ALERT" in r.message and "47003" in r.message for r in caplog.records)


@pytest.mark.parametrize("errcode", [45009, 45011])
def test_quota_error_backs_off_and_resumes(rt, sim, monkeypatch, errcode):
    monkeypatch.setattr(ratelimit, "QUOTA_BACKOFF_BASE", 0.3)
    cid, openids = setup_campaign(rt, 20, consent=True)
    sim.faults({"kind": "errcode", "errcode": errcode, "api": "message/subscribe/bizsend",
                "count": 3})
    run(rt, cid)
    assert sim.received() == {o: 1 for o in openids}
    assert {d.status for d in rows(rt, cid).values()} == {"sent"}
    assert campaign(rt, cid).status == "done"
    assert sim.stats()["calls"]["message/subscribe/bizsend"][str(errcode)] == 3
    assert rt.redis.exists("rq:job:qzbot-push-batch-1-1-r1")  # the batch ran again later


@pytest.mark.parametrize("kind", ["hang", "garbage", "http500", "drop"])
def test_ambiguous_answers_are_unknown_and_never_resent(rt, sim, kind):
    cid, openids = setup_campaign(rt, 5, payload=payload("template"))
    sim.faults({"kind": kind, "openids": [oid(2)], "after_accept": True, "hang_s": 1.5})
    run(rt, cid)
    got = rows(rt, cid)
    assert (got[oid(2)].status, got[oid(2)].reason) == ("unknown", "ambiguous")
    assert campaign(rt, cid).status == "done"
    jobs.enqueue_batch(rt, cid, 1)
    jobs.sweep(rt)
    drain(rt)
    assert sim.received() == {o: 1 for o in openids}  # it went out once; never again
    assert counts_of(rt, cid)["status"] == {"sent": 4, "unknown": 1}


def test_token_invalidated_mid_run_refreshes_once(rt, sim):
    cid, openids = setup_campaign(rt, 24, consent=True)
    sim.faults({"kind": "invalidate_token", "openids": [oid(10)], "count": 1})
    run(rt, cid)
    assert sim.received() == {o: 1 for o in openids}
    stats = sim.stats()
    assert stats["tokens"]["stable_token"] == 2 and stats["tokens"]["issued"] == 2
    assert "force_refresh" not in stats["tokens"]
    assert 1 <= stats["calls"]["message/subscribe/bizsend"]["40001"] <= 4


def test_window_closed_falls_back_to_the_next_channel(rt, sim):
    now = rt.now()
    with rt.sessions() as s:
        for i in range(3):
            add_follower(s, oid(i), last_message_at=ago(now, hours=1))
            subscribe(s, oid(i), now)
        cid = make_campaign(s, now, payload=payload("template")).id
        s.commit()
    sim.faults({"kind": "errcode", "errcode": 45015, "api": "message/custom/send",
                "openids": [oid(1)]})
    run(rt, cid)
    got = rows(rt, cid)
    assert {o: d.channel for o, d in got.items()} == {oid(0): "custom", oid(1): "template",
                                                      oid(2): "custom"}
    assert {d.status for d in got.values()} == {"sent"} and sim.received() == {
        oid(i): 1 for i in range(3)}
    with rt.sessions() as s:
        assert s.get(Follower, oid(1)).cs_sent == channels.CS_LIMIT


def test_transport_error_is_retried(rt, sim, monkeypatch):
    from bot.errors import TransportError

    failed: list[str] = []
    perform = channels.perform

    def flaky(client, send, pl):
        if send.openid == oid(1) and not failed:
            failed.append(send.openid)
            raise TransportError("connect refused")
        return perform(client, send, pl)

    monkeypatch.setattr(channels, "perform", flaky)
    cid, openids = setup_campaign(rt, 5, payload=payload("template"))
    run(rt, cid)
    assert failed and sim.received() == {o: 1 for o in openids}
    assert rows(rt, cid)[oid(1)].attempts == 2


def test_unreachable_wechat_halts_the_batch_and_resumes(rt, sim, monkeypatch):
    from bot.errors import TransportError
    from push import recovery

    monkeypatch.setattr(recovery, "RETRY_DELAY", 0.2)
    perform = channels.perform
    down = [True]

    def unreachable(client, send, pl):
        if down[0]:
            raise TransportError("connect refused")
        return perform(client, send, pl)

    monkeypatch.setattr(channels, "perform", unreachable)
    cid, openids = setup_campaign(rt, 7, payload=payload("template"))
    fanout.plan_fanout(rt, cid, lambda b: None)
    report = deliver.run_batch(rt, cid, 1)
    assert (report.state, report.resume_in) == ("retry", 0.2)
    assert {d.status for d in rows(rt, cid).values()} == {"pending"}  # nothing lost
    assert deliver.run_batch(rt, cid, 1).resume_in == 0.4  # doubling
    down[0] = False
    assert deliver.run_batch(rt, cid, 1).state == "done"
    assert sim.received() == {o: 1 for o in openids} and campaign(rt, cid).status == "done"


# --- planner, jobs, recovery --------------------------------------------------------


def test_planner_is_due_only_idempotent_and_resumable(rt):
    from datetime import timedelta

    cid, openids = setup_campaign(rt, 20, status="scheduled",
                                  send_at=(rt.now() + timedelta(hours=1)).replace(tzinfo=None))
    seen: list[int] = []
    assert fanout.plan_fanout(rt, cid, seen.append).state == "not_due"
    assert not rows(rt, cid) and campaign(rt, cid).status == "scheduled"
    with rt.sessions() as s:  # a planner that died after its first chunk
        c = s.get(Campaign, cid)
        c.status, c.send_at = "sending", None
        fanout.insert_rows(s, cid, 1, openids[:7], rt.now())
        s.commit()
    report = fanout.plan_fanout(rt, cid, seen.append)
    assert (report.state, report.rows, report.batches, seen) == ("sending", 13, 3, [1, 2, 3])
    got = rows(rt, cid)
    assert sorted(got) == openids and sorted({d.batch for d in got.values()}) == [1, 2, 3]
    seen.clear()
    assert fanout.plan_fanout(rt, cid, seen.append).rows == 0 and seen == [1, 2, 3]
    assert len(rows(rt, cid)) == 20
    with rt.sessions() as s:
        cancelled = make_campaign(s, rt.now(), status="cancelled").id
        s.commit()
    assert fanout.plan_fanout(rt, cancelled, seen.append).state == "cancelled"


def test_enqueue_fanout_is_deterministic(rt):
    from datetime import UTC, datetime, timedelta

    cid, _ = setup_campaign(rt, 1)
    queue = Queue(jobs.PUSH_QUEUE, connection=rt.redis)
    assert jobs.enqueue_fanout(rt, cid) == f"qzbot-push-fanout-{cid}"
    assert jobs.enqueue_fanout(rt, cid) is None and queue.job_ids == [f"qzbot-push-fanout-{cid}"]
    later = datetime.now(UTC) + timedelta(hours=2)
    job_id = jobs.enqueue_fanout(rt, cid, later)
    assert job_id == f"qzbot-push-fanout-{cid}-r1"
    assert jobs.enqueue_fanout(rt, cid, later) is None
    assert job_id in ScheduledJobRegistry(queue=queue).get_job_ids()


def test_failed_jobs_are_recorded_then_their_batch_closed(rt, sim, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(deliver, "run_batch", boom)
    cid, _ = setup_campaign(rt, 3)
    jobs.enqueue_fanout(rt, cid)
    drain(rt)
    queue = Queue(jobs.PUSH_QUEUE, connection=rt.redis)
    assert f"qzbot-push-batch-{cid}-1" in FailedJobRegistry(queue=queue).get_job_ids()
    for _ in range(jobs.MAX_JOB_FAILURES):
        jobs.sweep(rt)
        drain(rt)
    jobs.sweep(rt)  # closes the batch: it failed MAX_JOB_FAILURES times
    with rt.sessions() as s:
        failures = s.scalars(select(AuditEntry).where(AuditEntry.action == "job_failed")).all()
        assert len(failures) == jobs.MAX_JOB_FAILURES
        assert failures[0].detail["error"] == "RuntimeError: boom"
        assert s.scalar(select(AuditEntry).where(AuditEntry.action == "batch_abandoned"))
    assert {(d.status, d.reason) for d in rows(rt, cid).values()} == {("failed", "job_failed")}
    jobs.sweep(rt)
    assert campaign(rt, cid).status == "done" and not sim.received()


def test_a_planner_that_keeps_failing_stops_the_campaign(rt, monkeypatch, caplog):
    def boom(*args, **kwargs):
        raise RuntimeError("audience query broke")

    monkeypatch.setattr(fanout, "plan_fanout", boom)
    cid, _ = setup_campaign(rt, 3)
    for _ in range(jobs.MAX_JOB_FAILURES):
        jobs.sweep(rt)  # approved and due: enqueued again after each failure
        drain(rt)
    with caplog.at_level(logging.ERROR, logger="qzbot.push"):
        assert jobs.sweep(rt) == {"stopped": 1}
    c = campaign(rt, cid)
    assert c.status == "stopped" and "fan-out failed" in c.stop_reason
    assert any("ALERT" in r.message for r in caplog.records)
    with rt.sessions() as s:
        errors = s.scalars(select(AuditEntry.detail).where(
            AuditEntry.action == "job_failed")).all()
        assert len(errors) == jobs.MAX_JOB_FAILURES
        assert errors[0]["error"] == "RuntimeError: audience query broke"


def test_cancelled_and_unfollowed_get_nothing(rt, sim):
    cid, openids = setup_campaign(rt, 10, payload=payload("template"))
    with rt.sessions() as s:
        other = make_campaign(s, rt.now(), payload=payload("template")).id
        s.commit()
    for campaign_id in (cid, other):
        fanout.plan_fanout(rt, campaign_id, lambda b: None)
    with rt.sessions() as s:
        s.get(Follower, oid(1)).active = False  # unfollowed after planning
        s.get(Campaign, cid).status = "cancelled"
        s.commit()
    for batch in (1, 2):
        assert deliver.run_batch(rt, cid, batch).state == "halted"
    assert {d.reason for d in rows(rt, cid).values()} == {"campaign_cancelled"}
    for batch in (1, 2):
        assert deliver.run_batch(rt, other, batch).state == "done"
    assert sorted(sim.received()) == sorted(set(openids) - {oid(1)})
    assert (rows(rt, other)[oid(1)].status, rows(rt, other)[oid(1)].reason) == (
        "skipped", "unfollowed")
    assert campaign(rt, other).status == "done"


def test_rows_left_sending_are_resent_under_the_lease(rt, sim):
    from push.recovery import lease_key

    cid, openids = setup_campaign(rt, 7, payload=payload("template"))
    fanout.plan_fanout(rt, cid, lambda b: None)
    with rt.sessions() as s:  # a worker died with three sends in flight
        for d in s.scalars(select(Delivery).where(Delivery.openid.in_(openids[:3]))):
            d.status, d.channel, d.attempts = "sending", "template", 1
        s.commit()
    rt.redis.set(lease_key(cid, 1), "someone-else", px=60_000)
    assert deliver.run_batch(rt, cid, 1).state == "busy"
    assert jobs.sweep(rt) == {} and not sim.received()  # a live lease: not stranded
    rt.redis.delete(lease_key(cid, 1))
    assert jobs.sweep(rt) == {"batches": 1}
    drain(rt, cid)
    assert sim.received() == {o: 1 for o in openids}
    assert [rows(rt, cid)[o].attempts for o in openids[:4]] == [2, 2, 2, 1]


def test_rate_limiter_shares_and_pauses(redis_client):
    import time

    limiter = ratelimit.RateLimiter(redis_client, {"template": "100"})
    start = time.monotonic()
    for _ in range(30):
        limiter.acquire("template")
    assert time.monotonic() - start >= (30 - 5 - 1) / 100
    assert limiter.pause("template", base=0.2) == pytest.approx(0.2, abs=0.01)
    assert limiter.pause("template", base=0.2) <= 0.2  # one pause at a time
    with pytest.raises(ratelimit.Paused):
        limiter.acquire("template")
    assert limiter.paused_for(["template", "custom"]) > 0
    time.sleep(0.25)
    assert limiter.pause("template", base=0.2) == pytest.approx(0.4, abs=0.01)  # doubled


def test_sweep_recovers_lost_and_stranded_jobs(rt, sim):
    cid, openids = setup_campaign(rt, 10, payload=payload("template"))
    # the approve commit happened but its enqueue was lost: the sweep starts the campaign
    assert jobs.sweep(rt) == {"fanouts": 1}
    assert jobs.sweep(rt) == {}  # its planner job waits in the queue: nothing more
    drain(rt, cid)
    assert campaign(rt, cid).status == "done" and sim.received() == {o: 1 for o in openids}
    with rt.sessions() as s:
        other = make_campaign(s, rt.now(), payload=payload("template")).id
        s.commit()
    fanout.plan_fanout(rt, other, lambda b: jobs.enqueue_batch(rt, other, b))
    queue = Queue(jobs.PUSH_QUEUE, connection=rt.redis)
    assert queue.job_ids == [f"qzbot-push-batch-{other}-1", f"qzbot-push-batch-{other}-2"]
    # a worker dequeued batch 1 and died before starting it: "queued", but in no queue
    rt.redis.lrem(queue.key, 1, f"qzbot-push-batch-{other}-1")
    assert jobs.sweep(rt) == {"batches": 1}
    assert f"qzbot-push-batch-{other}-1-r1" in queue.job_ids
    drain(rt, other)
    assert campaign(rt, other).status == "done"
    assert sim.received() == {o: 2 for o in openids}  # one message per campaign


def test_keep_alive_client_outcomes(rt, sim):
    import socket

    from bot.errors import TransportError
    from bot.wechat.client import WeChatClient
    from bot.wechat.transport import KeepAliveTransport

    client = channels.push_client(rt)
    assert isinstance(client.transport, KeepAliveTransport)
    for i in range(3):
        assert client.send_custom_text(oid(i), "hello cid=ka")["errcode"] == 0
    # one keep-alive connection for sequential calls
    assert client.transport.idle_connections == 1
    with socket.socket() as probe:  # a port nobody listens on: surely not sent
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    closed = WeChatClient(f"http://127.0.0.1:{port}", APP_ID, "x", client.tokens, (0.5, 0.5),
                          transport=KeepAliveTransport())
    with pytest.raises(TransportError):
        closed.send_custom_text(oid(1), "hello")
    closed.close()
