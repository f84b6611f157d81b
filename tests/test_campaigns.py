"""Campaigns: review by a second account, only 主动公开 records, limits at creation, audit."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from bot.clock import SHANGHAI, to_utc_naive
from bot.errors import CampaignInvalid, InvalidTransition, PermissionDenied
from bot.store.models import AuditEntry, Campaign, Follower, Subscription
from push import campaigns as C
from push.campaigns import Audience
from push.staff import add_staff, authenticate
from tests.conftest import load_pack

TEMPLATES = {
    "出行资讯": {"template_id": "TPL_TRAVEL", "channel": "subscribe", "long_term": True,
             "fields": {"thing1": "title", "time2": "date", "thing3": "district"}},
    "项目进展": {"template_id": "TPL_PROJECT", "channel": "subscribe",
             "fields": {"thing1": "title", "thing2": "summary"}},
}


@pytest.fixture
def rt(runtime):
    runtime.settings = runtime.settings.replace(push={"templates": TEMPLATES})
    load_pack(runtime)
    with runtime.sessions() as s:
        for i, district in enumerate(["南安市", "丰泽区", "南安市"]):
            openid = f"oCitizen{i:020d}"
            s.add(Follower(openid=openid, active=i != 2))  # the third unfollowed
            s.add(Subscription(openid=openid, topic="出行资讯", district=district,
                               notice_kind="", source="message",
                               created_at=to_utc_naive(runtime.now())))
        # the first account must be an admin (issue 6 item 3)
        for name, role in (("root", "admin"), ("alice", "editor"), ("bob", "reviewer")):
            add_staff(s, name, role, runtime.now(), "test")
        s.commit()
    return runtime


def staff(rt, session, name):
    from bot.store.models import Staff

    return session.scalar(select(Staff).where(Staff.name == name))


def make(rt, session, refs=("notice:n-ferry",), **aud):
    aud = aud or {"topic": "出行资讯", "district": "南安市"}
    return C.create_campaign(session, rt.settings, rt.now(), actor="alice", refs=list(refs),
                             audience=Audience(**aud))


def test_full_review_flow_is_audited(rt):
    with rt.sessions() as s:
        c = make(rt, s)
        assert c.status == "draft" and c.audience_preview == 1  # unfollowed one not counted
        assert c.payload["template"]["data"]["thing3"] == {"value": "南安市"}
        C.submit(s, c, staff(rt, s, "alice"), rt.now())
        due = C.approve(s, rt.settings, c, staff(rt, s, "bob"), rt.now())
        assert due is None and c.status == "approved" and c.approver == "bob"
        s.commit()
        trail = [(a.actor, a.action) for a in s.scalars(
            select(AuditEntry).where(AuditEntry.campaign_id == c.id).order_by(AuditEntry.id))]
    assert trail == [("alice", "create"), ("alice", "submit"), ("bob", "approve")]


def test_author_cannot_approve_and_editor_cannot_approve(rt):
    with rt.sessions() as s:
        c = make(rt, s)
        C.submit(s, c, staff(rt, s, "alice"), rt.now())
        c.author = "root"  # even an admin cannot approve what they wrote
        with pytest.raises(PermissionDenied, match="another staff account"):
            C.approve(s, rt.settings, c, staff(rt, s, "root"), rt.now())
        c.author = "alice"
        with pytest.raises(PermissionDenied, match="needs reviewer"):
            C.approve(s, rt.settings, c, staff(rt, s, "alice"), rt.now())
        C.approve(s, rt.settings, c, staff(rt, s, "bob"), rt.now())
        with pytest.raises(InvalidTransition, match="cannot approve"):
            C.approve(s, rt.settings, c, staff(rt, s, "root"), rt.now())


def test_send_before_approval_is_refused(rt):
    from push.fanout import campaign_counts, plan_fanout

    with rt.sessions() as s:
        c = make(rt, s)
        s.commit()
        cid = c.id
    batches = []
    assert plan_fanout(rt, cid, batches.append).state == "draft"
    assert batches == []
    with rt.sessions() as s:
        assert s.get(Campaign, cid).status == "draft"
        assert campaign_counts(s, cid)["total"] == 0


def test_only_public_records_can_be_attached(rt):
    with rt.sessions() as s, pytest.raises(CampaignInvalid) as err:
        make(rt, s, refs=("policy:p-secret", "disclosure:d-apply", "notice:n-old", "nope"))
    text = str(err.value)
    assert "policy:p-secret is 不予公开" in text and "disclosure:d-apply is 依申请公开" in text
    assert "notice:n-old has ended" in text and "record nope: not found" in text


def test_reject_needs_reason_and_is_final(rt):
    with rt.sessions() as s:
        c = make(rt, s)
        C.submit(s, c, staff(rt, s, "alice"), rt.now())
        with pytest.raises(CampaignInvalid, match="reason"):
            C.reject(s, c, staff(rt, s, "bob"), " ", rt.now())
        C.reject(s, c, staff(rt, s, "bob"), "标题有误", rt.now())
        assert c.status == "rejected" and c.reject_reason == "标题有误"
        with pytest.raises(InvalidTransition):
            C.approve(s, rt.settings, c, staff(rt, s, "bob"), rt.now())


def test_schedule_in_the_past_and_empty_audience(rt):
    with rt.sessions() as s:
        c = make(rt, s)
        with pytest.raises(CampaignInvalid, match="in the past"):
            C.schedule(s, rt.settings, c, staff(rt, s, "alice"),
                       rt.now() - timedelta(minutes=1), rt.now())
        empty = make(rt, s, topic="出行资讯", district="德化县")
        assert empty.audience_preview == 0
        with pytest.raises(CampaignInvalid, match="audience is empty"):
            C.submit(s, empty, staff(rt, s, "alice"), rt.now())
    with rt.sessions() as s, pytest.raises(CampaignInvalid, match="in the past"):
        C.create_campaign(s, rt.settings, rt.now(), actor="alice", refs=["notice:n-ferry"],
                          audience=Audience(topic="出行资讯"),
                          send_at=rt.now() - timedelta(hours=1))


def test_template_limits_checked_at_creation(rt):
    with rt.sessions() as s:
        with pytest.raises(CampaignInvalid) as err:
            C.create_campaign(s, rt.settings, rt.now(), actor="alice", refs=["project:pr-bridge"],
                              audience=Audience(topic="项目进展"),
                              overrides={"thing2": "主桥合龙正在进行桥面铺装预计明年通车并开放"})
        assert "thing2 (thing, at most 20 characters) would be 21" in str(err.value)
        ok = C.create_campaign(s, rt.settings, rt.now(), actor="alice",
                               refs=["project:pr-bridge"], audience=Audience(topic="项目进展"),
                               overrides={"thing2": "主桥合龙"})
        assert ok.payload["template"]["data"]["thing2"]["value"] == "主桥合龙"
        with pytest.raises(CampaignInvalid, match="unknown template 'TPL_NOPE'"):
            C.create_campaign(s, rt.settings, rt.now(), actor="alice", refs=["notice:n-ferry"],
                              audience=Audience(topic="出行资讯"), template_id="TPL_NOPE")


def test_quiet_hours_hold_non_urgent_and_let_urgent_through(rt):
    night = datetime(2026, 11, 27, 23, 30, tzinfo=SHANGHAI)
    with rt.sessions() as s:
        calm = C.create_campaign(s, rt.settings, night, actor="alice", refs=["notice:n-ferry"],
                                 audience=Audience(topic="出行资讯"))
        urgent = C.create_campaign(s, rt.settings, night, actor="alice",
                                   refs=["notice:n-ferry"], audience=Audience(topic="出行资讯"),
                                   urgent=True)
        for c in (calm, urgent):
            C.submit(s, c, staff(rt, s, "alice"), night)
        due = C.approve(s, rt.settings, calm, staff(rt, s, "bob"), night)
        assert calm.status == "scheduled"
        assert due.astimezone(SHANGHAI) == datetime(2026, 11, 28, 7, 0, tzinfo=SHANGHAI)
        assert C.approve(s, rt.settings, urgent, staff(rt, s, "bob"), night) is None
        assert urgent.status == "approved"
        with pytest.raises(CampaignInvalid, match="only travel notices can be urgent"):
            C.create_campaign(s, rt.settings, night, actor="alice", refs=["project:pr-bridge"],
                              audience=Audience(topic="项目进展"), urgent=True,
                              overrides={"thing2": "进展"})


def test_staff_keys(rt):
    with rt.sessions() as s:
        account, key = add_staff(s, "carol", "reviewer", rt.now(), "root")
        s.commit()
        assert authenticate(s, "carol", key).name == "carol"
        with pytest.raises(PermissionDenied):
            authenticate(s, "carol", key + "x")
        with pytest.raises(PermissionDenied):
            authenticate(s, "carol", None)
        assert key not in account.key_hash


def test_changed_public_records_create_drafts(rt):
    from bot.content.pack import read_pack
    from push.drafts import drafts_for_changes
    from tests.conftest import SMALL_PACK

    doc = read_pack(SMALL_PACK)
    doc["notice"][0]["body"] += "（更新）"
    doc["policy"][1]["summary"] += "（更新）"  # 不予公开: no draft
    from bot.content.pack import import_pack

    with rt.sessions() as s:
        report = import_pack(s, doc, source="x", now=rt.now(), districts=rt.settings.bot.districts)
        ids = drafts_for_changes(s, rt.settings, rt.now(), report.changed_public)
        s.commit()
        drafts = [s.get(Campaign, i) for i in ids]
    assert [(d.topic, d.district, d.author, d.status, d.urgent) for d in drafts] == [
        ("出行资讯", "南安市", "system", "draft", True)]
    assert drafts[0].record_keys == ["notice:n-ferry"]
