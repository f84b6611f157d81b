"""Console campaign pages: compose with audience and preview, review pinned to the hash,
reject, schedule, cancel, the delivery page, stats.json and the CSV export (both databases)."""

from __future__ import annotations

import csv
import html
import io
import json
import re
from datetime import timedelta

import pytest
from rq import Queue
from sqlalchemy import func, select

from bot.clock import to_utc_naive
from bot.store.models import AuditEntry, Campaign, Delivery, Follower, Subscription
from push import actions, reports
from push.jobs import PUSH_QUEUE
from tests.conftest import load_pack
from tests.consolekit import console_app, csrf_token, login, make_staff
from tests.pushkit import make_campaign

TEMPLATES = {
    "出行资讯": {"template_id": "TPL_TRAVEL", "channel": "subscribe", "long_term": True,
             "fields": {"thing1": "title", "time2": "date", "thing3": "district"}},
}
OPENIDS = [f"oCitizen{i:020d}" for i in range(4)]


@pytest.fixture
def env(runtime):
    """The console on a runtime with the small pack, a travel template, three subscribers of
    出行资讯 in 南安市 (one unfollowed) and one in 丰泽区, and four accounts."""
    runtime.settings = runtime.settings.replace(push={"templates": TEMPLATES})
    load_pack(runtime)
    with runtime.sessions() as s:
        for i, (district, active) in enumerate([("南安市", True), ("南安市", True),
                                                ("南安市", False), ("丰泽区", True)]):
            s.add(Follower(openid=OPENIDS[i], active=active))
            s.add(Subscription(openid=OPENIDS[i], topic="出行资讯", district=district,
                               notice_kind="", source="message",
                               created_at=to_utc_naive(runtime.now())))
        s.commit()
    app = console_app(runtime)
    people = {name: make_staff(runtime, name, role) for name, role in
              (("alice", "editor"), ("carol", "editor"), ("bob", "reviewer"),
               ("root", "admin"))}
    return runtime, app, people


def client_for(app, staff):
    return login(app.test_client(), staff)


def compose(client, **fields):
    token = csrf_token(client, "/campaigns/new")
    form = {"csrf_token": token, "topic": "出行资讯", "district": "南安市",
            "records": "notice:n-ferry", **fields}
    return client.post("/campaigns/new", data=form)


def created_id(resp) -> int:
    assert resp.status_code == 302, resp.get_data(as_text=True)[:2000]
    return int(re.search(r"/campaigns/(\d+)$", resp.headers["Location"]).group(1))


def post(client, path: str, **form):
    token = csrf_token(client, "/campaigns/")
    return client.post(path, data={"csrf_token": token, **form})


def status_of(rt, cid: int) -> str:
    with rt.sessions() as s:
        return s.get(Campaign, cid).status


def review_form(client, cid: int) -> tuple[str, str]:
    """The (expect, seen) values of the approve form on the campaign page."""
    page = client.get(f"/campaigns/{cid}").get_data(as_text=True)
    expect = re.search(r'name="expect" value="([0-9a-f]{64})"', page).group(1)
    seen = html.unescape(re.search(r'name="seen" value="([^"]*)"', page).group(1))
    return expect, seen


def submitted(env) -> int:
    rt, app, people = env
    alice = client_for(app, people["alice"])
    cid = created_id(compose(alice))
    assert post(alice, f"/campaigns/{cid}/submit").status_code == 302
    assert status_of(rt, cid) == "submitted"
    return cid


# --- compose -------------------------------------------------------------------------------


def test_compose_form_audience_and_preview_show_what_is_stored(env):
    rt, app, people = env
    alice = client_for(app, people["alice"])
    page = alice.get("/campaigns/new")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert 'hx-get="/campaigns/audience"' in body and 'for="c-topic"' in body

    frag = alice.get("/campaigns/audience", query_string={"topic": "出行资讯",
                                                          "district": "南安市"})
    assert "出行资讯 · 南安市：<strong>2</strong> 位订阅者" in frag.get_data(as_text=True)
    everyone = alice.get("/campaigns/audience", query_string={"topic": "出行资讯"})
    assert "出行资讯：<strong>3</strong> 位订阅者" in everyone.get_data(as_text=True)
    bad = alice.get("/campaigns/audience", query_string={"topic": "出行资讯",
                                                         "district": "火星区"})
    assert "未知区县" in bad.get_data(as_text=True)

    preview = alice.get("/campaigns/preview", query_string={
        "topic": "出行资讯", "district": "南安市", "records": "notice:n-ferry",
        "fields": "thing3=南安石井"}).get_data(as_text=True)
    assert 'class="phone"' in preview and "受台风影响石井至金门航线停航" in preview
    assert "南安石井" in preview  # the field override is rendered

    cid = created_id(compose(alice, fields="thing3=南安石井"))
    with rt.sessions() as s:
        payload = s.get(Campaign, cid).payload
    # the preview showed exactly the stored message, channel by channel
    assert html.escape(payload["text"]) in preview
    assert payload["template"]["data"]["thing3"]["value"] == "南安石井"
    detail = alice.get(f"/campaigns/{cid}").get_data(as_text=True)
    assert html.escape(payload["text"]) in detail


def test_compose_problems_are_listed_and_nothing_is_stored(env):
    rt, app, people = env
    alice = client_for(app, people["alice"])
    resp = compose(alice, records="policy:p-secret", fields="nonsense")
    assert resp.status_code == 400
    assert "字段应写成" in resp.get_data(as_text=True)
    resp = compose(alice, records="policy:p-secret")
    assert resp.status_code == 400 and "主动公开" in resp.get_data(as_text=True)
    with rt.sessions() as s:
        assert s.scalar(select(Campaign.id)) is None


def test_record_picker_lists_only_records_that_may_be_pushed(env):
    rt, app, people = env
    alice = client_for(app, people["alice"])
    listed = alice.get("/campaigns/records").get_data(as_text=True)
    assert 'value="notice:n-ferry"' in listed
    for hidden in ("policy:p-secret", "disclosure:d-apply", "notice:n-old", "synonym:"):
        assert f'value="{hidden}' not in listed
    found = alice.get("/campaigns/records", query_string={"q": "金门",
                                                          "records": "project:pr-bridge"})
    text = found.get_data(as_text=True)
    assert 'value="notice:n-ferry"' in text and 'value="project:pr-bridge" checked' in text
    assert 'value="policy:p-2020-19"' not in text


def test_only_editors_compose(env):
    rt, app, people = env
    bob = client_for(app, people["bob"])
    assert bob.get("/campaigns/new").status_code == 403
    token = csrf_token(bob, "/campaigns/")
    resp = bob.post("/campaigns/new", data={"csrf_token": token, "topic": "出行资讯",
                                            "records": "notice:n-ferry"})
    assert resp.status_code == 403
    assert app.test_client().get("/campaigns/").status_code in (302, 401)


def test_a_form_without_its_csrf_token_is_refused(env):
    rt, app, people = env
    alice = client_for(app, people["alice"])
    cid = created_id(compose(alice))
    resp = alice.post(f"/campaigns/{cid}/submit", data={})
    assert resp.status_code == 400 and "CSRF" in resp.get_data(as_text=True)
    assert status_of(rt, cid) == "draft"


# --- review --------------------------------------------------------------------------------


def test_reviewer_approves_the_hash_shown_and_the_fan_out_is_enqueued(env):
    rt, app, people = env
    cid = submitted(env)
    bob = client_for(app, people["bob"])
    listing = bob.get("/campaigns/").get_data(as_text=True)
    assert "待我审核（1）" in listing
    expect, seen = review_form(bob, cid)
    resp = post(bob, f"/campaigns/{cid}/approve", expect=expect, seen=seen)
    assert resp.status_code == 302
    with rt.sessions() as s:
        c = s.get(Campaign, cid)
        assert (c.status, c.approver, c.approved_hash) == ("approved", "bob", expect)
    queue = Queue(PUSH_QUEUE, connection=rt.redis)
    assert f"qzbot-push-fanout-{cid}" in queue.job_ids  # enqueued after the commit
    assert "待我审核" not in bob.get("/campaigns/").get_data(as_text=True)


def test_the_author_cannot_approve_and_nothing_changes(env):
    rt, app, people = env
    cid = submitted(env)
    alice = client_for(app, people["alice"])
    page = alice.get(f"/campaigns/{cid}").get_data(as_text=True)
    assert 'name="expect"' not in page  # editors get no approve form
    with rt.sessions() as s:
        from push.review import review_hash
        current = review_hash(s, s.get(Campaign, cid))
    resp = post(alice, f"/campaigns/{cid}/approve", expect=current, seen="{}")
    assert resp.status_code == 403
    # an admin who submitted it is refused by the service layer (先审查后发布)
    root = client_for(app, people["root"])
    with rt.sessions() as s:
        s.get(Campaign, cid).submitter = "root"
        s.commit()
    page = root.get(f"/campaigns/{cid}").get_data(as_text=True)
    assert "须由其他账号审核" in page and 'name="expect"' not in page
    resp = post(root, f"/campaigns/{cid}/approve", expect=current, seen="{}")
    assert resp.status_code == 403 and "无权操作" in resp.get_data(as_text=True)
    with rt.sessions() as s:
        c = s.get(Campaign, cid)
        assert (c.status, c.approver, c.approved_hash) == ("submitted", None, None)
        assert not s.scalars(select(AuditEntry).where(AuditEntry.action == "approve")).all()
    assert Queue(PUSH_QUEUE, connection=rt.redis).count == 0


def test_another_editor_cannot_approve(env):
    rt, app, people = env
    cid = submitted(env)
    carol = client_for(app, people["carol"])
    with rt.sessions() as s:
        from push.review import review_hash
        current = review_hash(s, s.get(Campaign, cid))
    assert post(carol, f"/campaigns/{cid}/approve", expect=current).status_code == 403
    assert status_of(rt, cid) == "submitted"


def test_an_approval_with_a_stale_hash_is_refused_and_names_what_changed(env):
    rt, app, people = env
    cid = submitted(env)
    bob = client_for(app, people["bob"])
    expect, seen = review_form(bob, cid)
    alice = client_for(app, people["alice"])  # changes the title while bob reads
    assert post(alice, f"/campaigns/{cid}/edit", title="石井航线停航（更新）").status_code == 302
    resp = post(bob, f"/campaigns/{cid}/approve", expect=expect, seen=seen)
    assert resp.status_code == 409
    body = resp.get_data(as_text=True)
    assert "已被修改" in body and "<li>标题（title）</li>" in body
    assert "payload.template" in body
    assert status_of(rt, cid) == "submitted"
    new_expect, new_seen = review_form(bob, cid)
    assert new_expect != expect
    assert post(bob, f"/campaigns/{cid}/approve", expect=new_expect,
                seen=new_seen).status_code == 302
    assert status_of(rt, cid) == "approved"


def test_approve_without_the_hash_is_refused(env):
    rt, app, people = env
    cid = submitted(env)
    bob = client_for(app, people["bob"])
    assert post(bob, f"/campaigns/{cid}/approve").status_code == 400
    assert post(bob, f"/campaigns/{cid}/approve", expect="0" * 64).status_code == 409
    assert status_of(rt, cid) == "submitted"


def test_reject_needs_a_reason_then_edit_and_resubmit(env):
    rt, app, people = env
    cid = submitted(env)
    bob = client_for(app, people["bob"])
    resp = post(bob, f"/campaigns/{cid}/reject", reason="   ")
    assert resp.status_code == 400 and "退回必须填写原因" in resp.get_data(as_text=True)
    assert status_of(rt, cid) == "submitted"
    assert post(bob, f"/campaigns/{cid}/reject", reason="时间写错了").status_code == 302
    alice = client_for(app, people["alice"])
    page = alice.get(f"/campaigns/{cid}").get_data(as_text=True)
    assert "时间写错了" in page and "重新提交审核" in page
    assert post(alice, f"/campaigns/{cid}/edit", title="石井航线停航",
                fields="thing3=石井").status_code == 302
    assert status_of(rt, cid) == "draft"
    assert post(alice, f"/campaigns/{cid}/submit").status_code == 302
    assert status_of(rt, cid) == "submitted"


def test_wrong_state_forged_ids_and_other_refusals(env):
    rt, app, people = env
    alice = client_for(app, people["alice"])
    bob = client_for(app, people["bob"])
    cid = created_id(compose(alice))
    with rt.sessions() as s:
        from push.review import review_hash
        current = review_hash(s, s.get(Campaign, cid))
    # a draft cannot be approved: 409, unchanged
    assert post(bob, f"/campaigns/{cid}/approve", expect=current).status_code == 409
    assert post(bob, f"/campaigns/{cid}/reject", reason="x").status_code == 409
    assert status_of(rt, cid) == "draft"
    for path in (f"/campaigns/{cid + 99}", f"/campaigns/{cid + 99}/delivery",
                 f"/campaigns/{cid + 99}/stats.json", f"/campaigns/{cid + 99}/deliveries.csv"):
        assert alice.get(path).status_code == 404, path
    assert post(alice, f"/campaigns/{cid + 99}/submit").status_code == 404
    assert post(bob, f"/campaigns/{cid + 99}/approve", expect=current).status_code == 404
    assert post(bob, f"/campaigns/{cid}/submit").status_code == 403  # reviewers do not submit
    assert post(bob, f"/campaigns/{cid}/edit", title="x").status_code == 403


def test_schedule_in_quiet_hours_moves_it_and_cancel(env):
    rt, app, people = env
    alice = client_for(app, people["alice"])
    cid = created_id(compose(alice))
    resp = post(alice, f"/campaigns/{cid}/schedule", send_at="2026-11-27T23:30")
    assert resp.status_code == 302
    follow = alice.get(f"/campaigns/{cid}").get_data(as_text=True)
    assert "免打扰" in follow and "2026-11-28 07:00" in follow
    assert post(alice, f"/campaigns/{cid}/schedule", send_at="2020-01-01T08:00"
                ).status_code == 400
    assert post(alice, f"/campaigns/{cid}/cancel").status_code == 302
    assert status_of(rt, cid) == "cancelled"


def test_a_campaign_title_is_escaped_everywhere(env):
    rt, app, people = env
    alice = client_for(app, people["alice"])
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    cid = created_id(compose(alice, title=evil, fields="thing1=航线停航"))
    for path in ("/campaigns/", f"/campaigns/{cid}", f"/campaigns/{cid}/edit",
                 f"/campaigns/{cid}/delivery"):
        body = alice.get(path).get_data(as_text=True)
        assert "<script>alert" not in body and "<img src=x" not in body, path
        assert "&lt;script&gt;alert" in body, path
    preview = alice.get("/campaigns/preview", query_string={
        "topic": "出行资讯", "records": "notice:n-ferry", "title": evil}).get_data(as_text=True)
    assert "<script>alert" not in preview and "&lt;script&gt;" in preview


# --- delivery ------------------------------------------------------------------------------

SEED = [  # (status, channel, reason, errcode, rows)
    ("sent", "bizsend", None, None, 5),
    ("sent", "custom", None, None, 2),
    ("failed", "bizsend", "not_following", 43004, 2),
    ("failed", "template", "api_error", 40003, 1),
    ("skipped", None, "no_channel", None, 3),
    ("skipped", None, "unfollowed", None, 1),
    ("unknown", "custom", "ambiguous", None, 1),
    ("pending", None, None, None, 2),
]


def seed_deliveries(rt, status: str = "sending") -> int:
    now = rt.now()
    with rt.sessions() as s:
        c = make_campaign(s, now, status=status, audience_preview=18)
        n = 0
        for row_status, channel, reason, errcode, count in SEED:
            for _ in range(count):
                n += 1
                s.add(Delivery(campaign_id=c.id, openid=f"oCitizenDelivery{n:012d}", batch=1,
                               status=row_status, channel=channel, reason=reason,
                               errcode=errcode, attempts=1,
                               updated_at=to_utc_naive(now + timedelta(minutes=n % 3))))
        s.commit()
        return c.id


def funnel_cells(body: str) -> dict[str, int]:
    return {k: int(v) for k, v in re.findall(r'data-k="(\w+)">(\d+)<', body)}


def test_delivery_page_funnel_matches_the_rows_and_explains_every_reason(env):
    rt, app, people = env
    cid = seed_deliveries(rt)
    alice = client_for(app, people["alice"])
    body = alice.get(f"/campaigns/{cid}/delivery").get_data(as_text=True)
    assert funnel_cells(body) == {"targeted": 17, "eligible": 13, "sent": 7, "failed": 3,
                                  "skipped": 4, "unknown": 1, "open": 2}
    for words in ("用户未关注公众号", "openid 无效", "没有可用渠道", "用户已取消关注公众号",
                  "无法确定是否送达"):
        assert words in body
    assert 'hx-trigger="every 3s"' in body  # sending: the progress refreshes itself
    assert "chart.umd.min.js" in body and "campaigns.js" in body
    assert f'data-stats-url="/campaigns/{cid}/stats.json"' in body
    with rt.sessions() as s:
        s.execute(Delivery.__table__.update().where(Delivery.campaign_id == cid,
                                                    Delivery.status == "pending")
                  .values(status="sent", channel="bizsend"))
        s.get(Campaign, cid).status = "done"
        s.commit()
    frag = alice.get(f"/campaigns/{cid}/progress").get_data(as_text=True)
    assert "hx-trigger" not in frag  # finished: polling stops
    assert funnel_cells(frag)["sent"] == 9 and funnel_cells(frag)["open"] == 0


def test_stats_json_shape(env):
    rt, app, people = env
    cid = seed_deliveries(rt)
    data = client_for(app, people["bob"]).get(f"/campaigns/{cid}/stats.json").get_json()
    assert set(data) == {"campaign_id", "status", "finished", "funnel", "channels", "reasons",
                         "per_minute"}
    assert data["funnel"]["targeted"] == 17 and data["finished"] is False
    assert {c["channel"] for c in data["channels"]} == {"bizsend", "custom", "template"}
    assert {"status", "reason", "errcode", "count", "explanation"} == set(data["reasons"][0])
    assert sum(p["sent"] + p["failed"] + p["unknown"] for p in data["per_minute"]) == 11
    assert all(p["minute"].endswith("+08:00") for p in data["per_minute"])
    assert json.dumps(data, ensure_ascii=False)



def test_a_long_trail_shows_its_newest_entries_and_links_to_the_audit_log(env):
    """A campaign page loads the newest TRAIL_SHOWN audit entries, not thousands (bench:
    12 500 per campaign); the total is named and reviewers get the full trail's link. The
    JSON API's detail still has every entry, the reviewer's lines and the counts."""
    rt, app, people = env
    cid = seed_deliveries(rt, status="done")
    at = to_utc_naive(rt.now())
    extra = actions.TRAIL_SHOWN + 10
    with rt.sessions() as s:
        s.add_all(AuditEntry(at=at + timedelta(seconds=i), actor="bob", action="note",
                             campaign_id=cid, detail={"reason": f"第{i:03d}条备注"})
                  for i in range(extra))
        s.add(AuditEntry(at=at, actor="bob", action="note", campaign_id=cid + 1,
                         detail={"reason": "别的推送"}))
        s.commit()
        total = s.scalar(select(func.count()).select_from(AuditEntry)
                         .where(AuditEntry.campaign_id == cid))
        full = actions.campaign_detail(s, people["bob"], cid)
        lean = actions.campaign_detail(s, people["bob"], cid, page=True)
    assert len(full.trail) == total and full.counts["total"] == 17 and full.review
    assert len(lean.trail) == actions.TRAIL_SHOWN and lean.trail_total == total
    assert lean.trail == full.trail[-actions.TRAIL_SHOWN:]  # the newest, oldest first
    assert lean.review_hash == full.review_hash and lean.review == () and lean.counts == {}

    link = f"/audit/?object_type=campaign&amp;object_id={cid}"
    body = client_for(app, people["bob"]).get(f"/campaigns/{cid}").get_data(as_text=True)
    assert f"共 {total} 条，这里显示最近 {actions.TRAIL_SHOWN} 条" in body and link in body
    first = extra - actions.TRAIL_SHOWN  # the oldest entry shown
    assert f"第{extra - 1:03d}条备注" in body and f"第{first:03d}条备注" in body
    assert f"第{first - 1:03d}条备注" not in body
    assert "第000条备注" not in body and "别的推送" not in body
    editor = client_for(app, people["alice"]).get(f"/campaigns/{cid}").get_data(as_text=True)
    assert f"共 {total} 条" in editor and link not in editor  # editors cannot open the log


def test_the_delivery_page_leaves_the_per_minute_series_to_stats_json(env):
    rt, app, people = env
    cid = seed_deliveries(rt)
    with rt.sessions() as s:
        assert reports.delivery_report(s, cid, series=False).per_minute == []
        series = reports.delivery_report(s, cid).per_minute
    assert sum(p["sent"] for p in series) == 7
    body = client_for(app, people["alice"]).get(f"/campaigns/{cid}/delivery")
    assert body.status_code == 200 and funnel_cells(body.get_data(as_text=True))["sent"] == 7

def test_csv_masks_openids_for_editors_and_audits_the_admins_full_export(env):
    rt, app, people = env
    cid = seed_deliveries(rt)
    resp = client_for(app, people["alice"]).get(f"/campaigns/{cid}/deliveries.csv")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(resp.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0][:2] == ["id", "openid"] and len(rows) == 18
    assert all(re.fullmatch(r"oCit\*\*\*\d{4}", r[1]) for r in rows[1:])
    assert "oCitizenDelivery" not in resp.get_data(as_text=True)
    with rt.sessions() as s:
        assert not s.scalars(select(AuditEntry).where(
            AuditEntry.action == "delivery_export")).all()
    full = client_for(app, people["root"]).get(f"/campaigns/{cid}/deliveries.csv")
    text = full.get_data(as_text=True)
    assert "oCitizenDelivery000000000001" in text
    with rt.sessions() as s:
        entries = s.scalars(select(AuditEntry).where(
            AuditEntry.action == "delivery_export")).all()
        assert [(e.actor, e.campaign_id) for e in entries] == [("root", cid)]
