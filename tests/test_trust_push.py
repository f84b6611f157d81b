"""Issue 6 items 1 and 5b, as an attacker or an unlucky operator would try them.

Send-time truth: a record withdrawn (不予公开 / 依申请公开), deleted or ended after approval
stops the campaign wherever it is (start, planning, batch start) and nothing more goes
out; a citizen who unfollowed, sent 退订 / 全部退订 or withdrew consent after planning is
skipped at send time; `--all` campaigns honour 全部退订. Quiet hours: a batch resuming
after a back-off into quiet hours waits for the morning (urgent notices excepted).
Citizens act through the real webhook (`wechat`); the push engine talks to the simulator.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import delete, select, update

from bot.clock import parse_pinned, to_utc_naive
from bot.store.models import AuditEntry, Campaign, Follower, Record
from push import deliver, fanout, jobs, ratelimit
from push.audience import preview
from push.consent import revoke_all
from tests.pushkit import (
    TPL,
    add_follower,
    ago,
    campaign,
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
    """The push runtime on the test database (shared with `runtime`/`wechat`)."""
    runtime = push_runtime(db_url, redis_client, clock, sim, batch_size=3, concurrency=2)
    yield runtime
    if runtime.clients.push is not None:
        runtime.clients.push.close()
    runtime.close()


def citizens(rt, n: int, **campaign_fields) -> tuple[int, list[str]]:
    """n followers subscribed to 出行资讯 and an approved template campaign for them."""
    now = rt.now()
    with rt.sessions() as s:
        openids = [oid(i) for i in range(n)]
        for o in openids:
            add_follower(s, o)
            subscribe(s, o, now)
        fields = {"payload": payload("template"), **campaign_fields}
        cid = make_campaign(s, now, **fields).id
        s.commit()
    return cid, openids


def plan(rt, cid: int, on_batch=lambda batch: None) -> fanout.PlanReport:
    """Run the planner (batch jobs are not enqueued unless on_batch does it)."""
    return fanout.plan_fanout(rt, cid, on_batch)


def run_batches(rt, cid: int, batches: int) -> list[str]:
    """Run every batch once, in this process; their end states."""
    return [deliver.run_batch(rt, cid, b).state for b in range(1, batches + 1)]


def withdraw(rt, how: str, key: str = "notice:n1") -> None:
    """Make the record invisible the way an operator's re-import or a calendar would."""
    kind, _, rid = key.partition(":")
    where = (Record.kind == kind, Record.rid == rid)
    with rt.sessions() as s:
        if how == "deleted":
            s.execute(delete(Record).where(*where))
        elif how == "expired":
            s.execute(update(Record).where(*where).values(
                ends_at=to_utc_naive(ago(rt.now(), minutes=1))))
        else:  # re-imported as 不予公开 / 依申请公开
            s.execute(update(Record).where(*where).values(disclosure=how, public=False))
        s.commit()


WITHDRAWALS = [("不予公开", "record_not_public"), ("依申请公开", "record_not_public"),
               ("deleted", "record_not_public"), ("expired", "record_expired")]


def assert_stopped(rt, cid: int, reason: str) -> None:
    """Stopped with the reason, audited, shown by push status (stop_reason)."""
    c = campaign(rt, cid)
    assert (c.status, c.stop_reason) == ("stopped", reason)
    with rt.sessions() as s:
        stops = [e.detail for e in s.scalars(select(AuditEntry).where(
            AuditEntry.campaign_id == cid, AuditEntry.action == "stopped"))]
    assert [d["reason"] for d in stops] == [reason] and stops[0]["record"] == "notice:n1"


# --- item 1: records ---------------------------------------------------------------------


@pytest.mark.parametrize("how,reason", WITHDRAWALS)
def test_record_withdrawn_before_the_start_sends_nothing(rt, sim, how, reason):
    cid, _ = citizens(rt, 5)
    withdraw(rt, how)
    assert plan(rt, cid).state == "stopped"
    assert_stopped(rt, cid, reason)
    assert rows(rt, cid) == {} and sim.received() == {}


@pytest.mark.parametrize("how,reason", WITHDRAWALS)
def test_record_withdrawn_after_planning_stops_at_the_next_batch(rt, sim, how, reason):
    cid, openids = citizens(rt, 9)
    assert plan(rt, cid).batches == 3
    assert deliver.run_batch(rt, cid, 1).state == "done"  # three went out while it was true
    withdraw(rt, how)
    assert deliver.run_batch(rt, cid, 2).state == "stopped"
    assert deliver.run_batch(rt, cid, 3).state == "halted"
    assert_stopped(rt, cid, reason)
    assert sorted(sim.received()) == openids[:3]
    got = rows(rt, cid)
    assert {(d.status, d.reason) for o, d in got.items() if o not in openids[:3]} == {
        ("skipped", reason)}
    assert jobs.sweep(rt) == {}  # nothing left for anyone to pick up


def test_record_withdrawn_while_planning_stops_the_planner(rt, sim):
    cid, _ = citizens(rt, 9)
    report = plan(rt, cid, on_batch=lambda batch: withdraw(rt, "不予公开"))
    assert (report.state, report.batches) == ("stopped", 1)  # no chunk after the change
    assert_stopped(rt, cid, "record_not_public")
    assert {(d.status, d.reason) for d in rows(rt, cid).values()} == {
        ("skipped", "record_not_public")}
    assert sim.received() == {}


def test_changed_record_text_sends_the_campaign_back_to_review(rt, sim):
    cid, openids = citizens(rt, 6)
    assert plan(rt, cid).batches == 2
    assert deliver.run_batch(rt, cid, 1).state == "done"
    with rt.sessions() as s:  # re-imported with new text, still 主动公开
        s.execute(update(Record).where(Record.rid == "n1").values(digest="1" * 64))
        s.commit()
    assert deliver.run_batch(rt, cid, 2).state == "back_to_review"
    assert campaign(rt, cid).status == "submitted"
    assert sorted(sim.received()) == openids[:3]


# --- item 1: citizens --------------------------------------------------------------------


def test_citizens_who_left_after_planning_are_skipped(rt, sim, wechat):
    cid, openids = citizens(rt, 6)
    assert plan(rt, cid).batches == 2
    assert wechat.text("退订 出行", openid=openids[0]).startswith("已退订")
    assert wechat.text("全部退订", openid=openids[1]).startswith("已退订全部")
    wechat.event("unsubscribe", openid=openids[2])
    assert wechat.text("退订 项目进展", openid=openids[3])  # another topic: still in
    assert run_batches(rt, cid, 2) == ["done", "done"]
    got = {o: (d.status, d.reason) for o, d in rows(rt, cid).items()}
    assert got[openids[0]] == ("skipped", "unsubscribed")
    assert got[openids[1]] == ("skipped", "unsubscribed")
    assert got[openids[2]] == ("skipped", "unfollowed")
    assert sorted(sim.received()) == openids[3:]
    assert campaign(rt, cid).status == "done"


def test_all_followers_campaign_honours_all_off(rt, sim, wechat):
    now = rt.now()
    with rt.sessions() as s:
        for i in range(4):
            add_follower(s, oid(i))
        s.commit()
    reply = wechat.text("全部退订", openid=oid(0))  # no subscriptions: still opts out
    assert reply.startswith("您当前没有任何订阅；已为您停止全部推送")
    with rt.sessions() as s:
        before = make_campaign(s, now, topic=None, all_followers=True,
                               payload=payload("template"))
        assert preview(s, before) == 3  # the opted-out citizen is not in the audience
        s.commit()
        cid = before.id
    assert plan(rt, cid).rows == 3
    wechat.text("全部退订", openid=oid(1))  # after planning: skipped at send time
    assert run_batches(rt, cid, 1) == ["done"]
    assert sorted(sim.received()) == [oid(2), oid(3)]
    assert (rows(rt, cid)[oid(1)].status, rows(rt, cid)[oid(1)].reason) == (
        "skipped", "unsubscribed")
    assert wechat.text("订阅 出行", openid=oid(0)).startswith("已订阅")  # opts back in
    with rt.sessions() as s:
        assert s.get(Follower, oid(0)).opted_out_at is None
        assert s.get(Follower, oid(1)).opted_out_at is not None
        again = make_campaign(s, now, topic=None, all_followers=True, title="二",
                              payload=payload("template", cid="c2"))
        assert sorted(s.scalars(select(Follower.openid).where(
            Follower.opted_out_at.is_(None)))) == [oid(0), oid(2), oid(3)]
        assert preview(s, again) == 3
        s.commit()


def test_explicit_list_honours_all_off_at_send_time(rt, sim, wechat):
    now = rt.now()
    with rt.sessions() as s:
        for i in range(3):
            add_follower(s, oid(i))
        cid = make_campaign(s, now, topic=None, openids=[oid(0), oid(1), oid(2)],
                            payload=payload("template")).id
        s.commit()
    assert plan(rt, cid).rows == 3
    wechat.text("全部退订", openid=oid(2))
    assert run_batches(rt, cid, 1) == ["done"]
    assert sorted(sim.received()) == [oid(0), oid(1)]
    assert rows(rt, cid)[oid(2)].reason == "unsubscribed"


def test_consent_withdrawn_after_planning_is_not_used(rt, sim):
    now = rt.now()
    with rt.sessions() as s:
        for i in range(3):
            add_follower(s, oid(i), last_message_at=ago(now, hours=1) if i == 1 else None)
            subscribe(s, oid(i), now)
            grant(s, oid(i), now)  # long-term consent
        cid = make_campaign(s, now, payload=payload("subscribe")).id
        s.commit()
    assert plan(rt, cid).rows == 3
    with rt.sessions() as s:  # oid 0 and 1 turn the template off (change event)
        for i in (0, 1):
            revoke_all(s, oid(i), TPL, "change_event", now)
        s.commit()
    assert run_batches(rt, cid, 1) == ["done"]
    got = {o: (d.status, d.channel, d.reason) for o, d in rows(rt, cid).items()}
    assert got[oid(0)] == ("skipped", None, "no_channel")
    assert got[oid(1)][:2] == ("sent", "custom")  # falls back to the open window
    assert got[oid(2)][:2] == ("sent", "bizsend")


# --- item 5b: quiet hours after a back-off -----------------------------------------------

EVENING = parse_pinned("2026-11-27T21:59:50")  # Asia/Shanghai
MORNING = parse_pinned("2026-11-28T07:00:00")


@pytest.mark.parametrize("urgent", [False, True])
def test_backoff_resuming_into_quiet_hours_waits_for_the_morning(rt, sim, clock, urgent):
    cid, _ = citizens(rt, 3, urgent=urgent)
    assert plan(rt, cid).rows == 3
    clock.now = EVENING
    ratelimit.runtime_limiter(rt).pause("template", base=30)  # 45009: back off 30 s
    delays: list[float] = []
    report = deliver.run_batch(rt, cid, 1, reschedule=delays.append)
    assert report.state == "backoff" and sim.received() == {}
    if urgent:  # urgent travel notices may go out at night, as before
        assert 0 < delays[0] <= 30
    else:
        assert delays == [(MORNING - EVENING).total_seconds()]


def test_batch_started_in_quiet_hours_waits_for_the_morning(rt, sim, clock):
    cid, _ = citizens(rt, 3)
    assert plan(rt, cid).rows == 3
    clock.now = EVENING + timedelta(hours=1)  # e.g. the sweep re-enqueued it at 23:00
    delays: list[float] = []
    report = deliver.run_batch(rt, cid, 1, reschedule=delays.append)
    assert report.state == "quiet" and sim.received() == {}
    assert delays == [(MORNING - clock.now).total_seconds()]
    assert {d.status for d in rows(rt, cid).values()} == {"pending"}
    with rt.sessions() as s:
        assert s.get(Campaign, cid).status == "sending"
