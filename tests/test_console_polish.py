"""Console polish after the first browser run (issue 9, brief H7), both databases:

- every staff-facing time reads Asia/Shanghai "2026-11-27 10:00" (the app-wide `cn_time`
  filter), with ISO 8601 kept for machines in <time datetime>;
- the content diff compares tokens, so a changed number or time is replaced as a unit;
- the campaign preview and the stored draft come from one function (push.campaigns.render_draft);
- an admin reading full openids through the API is audited, once per campaign per 10 minutes.
(The layout items and the delivery page's live times are in tests/browser/test_polish.py.)"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import redis
from sqlalchemy import select

from bot.clock import to_utc_naive
from bot.errors import CampaignInvalid
from bot.store.models import AuditEntry, Campaign, Delivery, RecordRevision, Staff
from console.web import cn_time, iso_time
from editorial.revisions import text_diff, tokens
from push import actions, review
from push.campaigns import Audience
from tests.conftest import load_pack
from tests.consolekit import console_app, csrf_token, login, make_staff
from tests.pushkit import make_campaign

TEMPLATES = {
    "出行资讯": {"template_id": "TPL_TRAVEL", "channel": "subscribe", "long_term": True,
             "fields": {"thing1": "title", "time2": "date", "thing3": "district"}},
}
RAW_ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d")  # what a staff member must never read
SHOWN = re.compile(r'<time datetime="2026-11-27T10:00:\d\d\+08:00">2026-11-27 10:00</time>')


def _visible(html: str) -> str:
    """The page's text as a reader sees it (tags, and so attributes, removed)."""
    return re.sub(r"<[^>]*>", "", html)


def _assert_times_for_people(html: str, where: str) -> None:
    assert not RAW_ISO.search(_visible(html)), \
        f"{where}: raw ISO time shown: {RAW_ISO.search(_visible(html)).group()!r}"
    assert SHOWN.search(html), f"{where}: no Asia/Shanghai <time> element"


# --- 1. times ---------------------------------------------------------------------------


def test_cn_time_and_iso_time_read_every_stored_form():
    aware = datetime(2026, 11, 27, 2, 0, 30, tzinfo=UTC)
    for at in (aware, aware.replace(tzinfo=None), "2026-11-27T10:00:30+08:00",
               "2026-11-27T02:00:30"):
        assert cn_time(at) == "2026-11-27 10:00", at
        assert iso_time(at) == "2026-11-27T10:00:30+08:00", at
    assert cn_time(None) == "—" and cn_time("") == "—" and cn_time(None, "从未") == "从未"
    assert iso_time(None) == ""


def test_the_console_registers_one_time_filter(runtime):
    app = console_app(runtime)
    assert app.jinja_env.filters["cn_time"] is cn_time
    assert app.jinja_env.filters["iso_time"] is iso_time


def test_accounts_and_own_account_pages_show_shanghai_times(runtime):
    app = console_app(runtime)
    boss = make_staff(runtime, "boss", "admin")
    with runtime.sessions() as s:
        s.get(Staff, boss.id).last_login_at = to_utc_naive(runtime.now())
        s.commit()
    client = login(app.test_client(), boss)
    for path in ("/accounts", "/account"):
        resp = client.get(path)
        assert resp.status_code == 200, path
        _assert_times_for_people(resp.get_data(as_text=True), path)


def test_content_list_record_and_draft_pages_show_shanghai_times(runtime):
    load_pack(runtime)  # records imported "now": 2026-11-27 10:00 Asia/Shanghai
    app = console_app(runtime)
    ed = login(app.test_client(), make_staff(runtime, "ed", "editor"))
    token = csrf_token(ed, "/content/")
    resp = ed.post("/content/edit/hotline/hl-12328",
                   data={"csrf_token": token, "f_name": "交通运输服务监督电话",
                         "f_number": "12328", "f_hours": "7:30-21:00",
                         "f_scope": "出租车、公交、客运投诉与咨询"})
    assert resp.status_code == 302, resp.get_data(as_text=True)[:2000]
    with runtime.sessions() as s:
        rev_id = s.scalar(select(RecordRevision.id).where(RecordRevision.state == "draft"))
    assert ed.post(f"/content/d/{rev_id}/submit",
                   data={"csrf_token": token}).status_code == 302
    rev = login(app.test_client(), make_staff(runtime, "rev", "reviewer"))
    for client, path in ((ed, "/content/"), (ed, "/content/r/hotline/hl-12328"),
                         (ed, f"/content/d/{rev_id}"), (rev, "/content/review")):
        resp = client.get(path)
        assert resp.status_code == 200, path
        _assert_times_for_people(resp.get_data(as_text=True), path)


def test_audit_page_shows_shanghai_times(runtime):
    app = console_app(runtime)
    boss = make_staff(runtime, "boss", "admin")  # adding accounts is audited
    resp = login(app.test_client(), boss).get("/audit/")
    if resp.status_code in (301, 308):
        resp = login(app.test_client(), boss).get(resp.headers["Location"])
    assert resp.status_code == 200
    _assert_times_for_people(resp.get_data(as_text=True), "/audit")


# --- 2. the diff ------------------------------------------------------------------------


def test_diff_replaces_whole_numbers_and_times():
    assert text_diff("服务时间 8:00-18:00", "服务时间 7:30-21:00") == (
        ("eq", "服务时间 "), ("del", "8:00-18:00"), ("ins", "7:30-21:00"))
    assert text_diff("8:00-18:00", "7:30-21:00") == (("del", "8:00-18:00"),
                                                     ("ins", "7:30-21:00"))
    assert text_diff("票价3元，电话0595-22551234", "票价12元，电话0595-22551234") == (
        ("eq", "票价"), ("del", "3"), ("ins", "12"), ("eq", "元，电话0595-22551234"))
    # Chinese still diffs character by character (no spaces between words)
    assert text_diff("电动车能上公交吗", "电动自行车能上公交吗") == (
        ("eq", "电动"), ("ins", "自行"), ("eq", "车能上公交吗"))
    text = "工作日 8:00-18:00，v1.2\n周末休息。"
    assert "".join(tokens(text)) == text
    assert "8:00-18:00" in tokens(text) and "v1.2" in tokens(text) and "\n" in tokens(text)


def test_the_draft_page_shows_the_time_range_replaced(runtime):
    load_pack(runtime)
    app = console_app(runtime)
    ed = login(app.test_client(), make_staff(runtime, "ed", "editor"))
    token = csrf_token(ed, "/content/")
    ed.post("/content/edit/hotline/hl-12328",
            data={"csrf_token": token, "f_name": "交通运输服务监督电话", "f_number": "12328",
                  "f_hours": "7:30-21:00", "f_scope": "出租车、公交、客运投诉与咨询"})
    with runtime.sessions() as s:
        rev_id = s.scalar(select(RecordRevision.id).where(RecordRevision.state == "draft"))
    page = ed.get(f"/content/d/{rev_id}").get_data(as_text=True)
    assert "<del>8:00-18:00</del><ins>7:30-21:00</ins>" in page


# --- 6. preview == what create stores -----------------------------------------------------


@pytest.fixture
def travel(runtime):
    runtime.settings = runtime.settings.replace(push={"templates": TEMPLATES})
    load_pack(runtime)
    return runtime, make_staff(runtime, "alice", "editor")


@pytest.mark.parametrize("inputs", [
    {"refs": ["notice:n-ferry"]},
    {"refs": ["notice:n-ferry", "faq:f-taxi-receipt"]},  # default title "<first>等2条"
    {"refs": ["notice:n-ferry"], "title": "金门航线停航提醒", "overrides": {"thing3": "南安石井"}},
    {"refs": ["notice:n-ferry"], "template_id": "TPL_TRAVEL"},
])
def test_preview_is_by_construction_what_create_stores(travel, inputs):
    rt, alice = travel
    audience = Audience(topic="出行资讯", district="南安市")
    with rt.sessions() as s:
        me = s.get(Staff, alice.id)
        shown = actions.preview(s, rt.settings, me, rt.now(), audience=audience, **inputs)
        assert shown.problems == ()
        view = actions.create(s, rt.settings, me, rt.now(), audience=audience, **inputs)
        stored = s.get(Campaign, view.id)
        assert shown.title == stored.title
        assert shown.payload == review.sent_payload(stored)
        assert review.RENDER_KEY not in shown.payload


def test_preview_reports_the_problems_create_refuses_with(travel):
    rt, alice = travel
    audience = Audience(topic="出行资讯", district="南安市")
    inputs = {"refs": ["notice:n-ferry"], "template_id": "TPL_NOPE"}
    with rt.sessions() as s:
        me = s.get(Staff, alice.id)
        shown = actions.preview(s, rt.settings, me, rt.now(), audience=audience, **inputs)
        with pytest.raises(CampaignInvalid) as refused:
            actions.create(s, rt.settings, me, rt.now(), audience=audience, **inputs)
    assert shown.problems and list(shown.problems) == refused.value.problems


# --- 7. full openids read through the API are audited -------------------------------------


@pytest.fixture
def deliveries(runtime):
    """A sending campaign with three delivery rows, a second campaign, and bearer tokens."""
    with runtime.sessions() as s:
        ids = []
        for _ in range(2):
            c = make_campaign(s, runtime.now(), status="sending")
            for i in range(3):
                s.add(Delivery(campaign_id=c.id, openid=f"oCitizen{i:020d}", batch=0,
                               status="sent", updated_at=to_utc_naive(runtime.now())))
            ids.append(c.id)
        s.commit()
    tokens_ = {}
    for name, role in (("root", "admin"), ("ops", "admin"), ("alice", "editor")):
        staff = make_staff(runtime, name, role)
        with runtime.sessions() as s:
            made = actions.create_api_token(s, runtime.settings, s.get(Staff, staff.id),
                                            runtime.now(), "script", ["read"])
            s.commit()
        tokens_[name] = {"Authorization": f"Bearer {made.secret}"}
    return ids, tokens_


def _reads(rt) -> list[AuditEntry]:
    with rt.sessions() as s:
        return list(s.scalars(select(AuditEntry).where(AuditEntry.action == "delivery_read_full")
                              .order_by(AuditEntry.id)))


def test_admin_full_openid_reads_are_audited_once_per_ten_minutes(runtime, deliveries):
    (cid, other), who = deliveries
    client = console_app(runtime).test_client()
    first = client.get(f"/api/v1/campaigns/{cid}/deliveries?limit=2&status=sent",
                       headers=who["root"])
    assert first.status_code == 200
    assert "***" not in first.get_json()["items"][0]["openid"]  # full openids
    reads = _reads(runtime)
    assert [(e.actor, e.campaign_id) for e in reads] == [("root", cid)]
    assert reads[0].detail == {"after": 0, "limit": 2, "status": "sent"}
    # paging on: not audited again within 10 minutes (the Redis key's TTL)
    nxt = first.get_json()["next_after"]
    assert client.get(f"/api/v1/campaigns/{cid}/deliveries?limit=2&after={nxt}",
                      headers=who["root"]).status_code == 200
    assert len(_reads(runtime)) == 1
    key = actions.FULL_READ_KEY.format(staff_id=_staff_id(runtime, "root"),
                                       campaign_id=cid)
    assert 590 <= runtime.redis.ttl(key) <= actions.FULL_READ_AUDIT_SECONDS
    # another campaign, another admin: audited each
    client.get(f"/api/v1/campaigns/{other}/deliveries", headers=who["root"])
    client.get(f"/api/v1/campaigns/{cid}/deliveries", headers=who["ops"])
    assert [(e.actor, e.campaign_id) for e in _reads(runtime)] == [
        ("root", cid), ("root", other), ("ops", cid)]
    # the 10 minutes are over (the key expired): audited again
    runtime.redis.delete(key)
    client.get(f"/api/v1/campaigns/{cid}/deliveries", headers=who["root"])
    assert len(_reads(runtime)) == 4
    # masked reads (editors) are not audited; a 404 audits nothing
    masked = client.get(f"/api/v1/campaigns/{cid}/deliveries", headers=who["alice"])
    assert all("***" in d["openid"] for d in masked.get_json()["items"])
    assert client.get("/api/v1/campaigns/999999/deliveries",
                      headers=who["root"]).status_code == 404
    assert len(_reads(runtime)) == 4


def _staff_id(rt, name: str) -> int:
    with rt.sessions() as s:
        return s.scalar(select(Staff.id).where(Staff.name == name))


class _DownRedis:
    def set(self, *args, **kwargs):
        raise redis.ConnectionError("Redis is down")


def test_without_redis_every_full_read_is_audited(runtime, deliveries):
    (cid, _), _ = deliveries
    with runtime.sessions() as s:
        root = s.scalar(select(Staff).where(Staff.name == "root"))
        for _ in range(2):
            rows, _next = actions.delivery_page(s, root, cid, runtime.now(), _DownRedis())
            assert rows
        for client in (None, _DownRedis()):
            actions.delivery_page(s, root, cid, runtime.now() + timedelta(seconds=1), client)
        s.commit()
    assert len(_reads(runtime)) == 4
