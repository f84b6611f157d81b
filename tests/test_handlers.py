"""What citizens get: answers, choices, hidden records, long answers, events, menu, fallback."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.search_api import Found
from bot.store.models import Follower, Interaction, Record, UnansweredQuery
from bot.store.queries import visible_by_keys
from tests.wx import CITIZEN


def test_confident_answers_lead_with_the_title(wechat):
    assert wechat.text("公交卡丢了去哪补").splitlines()[0] == "公交IC卡挂失补办"
    assert wechat.text("12328").splitlines()[0] == "交通运输服务监督电话：12328"
    assert wechat.text("打车忘拿发票了咋办").splitlines()[0] == "打车忘拿发票怎么办"
    policy = wechat.text("泉交办[2020]19号")
    assert policy.splitlines()[0] == "泉州市交通运输局政务公开工作实施细则"
    assert "【政策解读】" in policy  # published together with its interpretation


@pytest.mark.parametrize("query", ["内部绩效考核评分办法", "泉交办〔2021〕88号",
                                   "出租汽车经营权有偿使用费收支明细", "刺桐大桥夜间封闭施工"])
def test_hidden_records_unreachable_even_by_exact_title(wechat, query):
    reply = wechat.text(query)
    for hidden in ("内部绩效考核", "有偿使用费", "刺桐大桥夜间封闭"):
        assert hidden not in reply


def test_notice_disappears_when_it_ends(app, wechat, runtime, clock):
    with runtime.sessions() as s:
        s.get(Record, s.scalar(select(Record.id).where(Record.rid == "n-ferry"))).ends_at = \
            (clock.now + timedelta(hours=1)).replace(tzinfo=None)
        s.commit()
        from bot.store.queries import bump_content_revision
        bump_content_revision(s)
        s.commit()
    assert wechat.text("渡轮还开不开").startswith("受台风影响石井至金门航线停航")
    clock.now += timedelta(hours=2)
    assert "石井至金门" not in wechat.text("渡轮还开不开")
    with runtime.sessions() as s:
        assert visible_by_keys(s, ["notice:n-ferry"], clock.now) == {}


class FakeSearch:
    """Returns a fixed, unconfident list: exercises the choice mechanics alone."""

    def __init__(self, runtime, keys):
        self.runtime, self.keys = runtime, keys

    def ready(self, sessions, now):
        return True

    def find(self, session, query, now, limit=5):
        rows = visible_by_keys(session, self.keys, now)
        return Found([rows[k] for k in self.keys if k in rows], confident=False)

    def visible(self, session, keys, now):
        return visible_by_keys(session, keys, now)


def test_ambiguous_lists_titles_and_digit_opens_one(app, wechat, runtime, clock):
    keys = ["guide:g-ic-card", "hotline:hl-12328", "faq:f-taxi-receipt"]
    app.extensions["qzbot.webhook"].search = FakeSearch(runtime, keys)
    listing = wechat.text("卡").splitlines()
    assert listing[1:4] == ["1. 公交IC卡挂失补办", "2. 交通运输服务监督电话：12328",
                            "3. 打车忘拿发票怎么办"]
    assert wechat.text("2").splitlines()[0] == "交通运输服务监督电话：12328"
    assert wechat.text("３").splitlines()[0] == "打车忘拿发票怎么办"  # full-width digit
    assert "超出范围" in wechat.text("5")
    other = wechat.text("1", openid="oSomebodyElse000000000000001")
    assert "没有待选择的列表" in other  # context is per citizen
    ttl = runtime.redis.ttl(next(iter(runtime.redis.scan_iter("qzbot:ctx:*"))))
    assert 590 <= ttl <= 600  # kept for 10 minutes
    assert CITIZEN.encode() not in b"".join(runtime.redis.keys("*"))  # openids hashed


def test_long_answers_fit_2048_bytes_split_or_linked(runtime, app, wechat):
    from bot.content.pack import import_pack
    from bot.store.db import transaction

    steps = [f"第{i}步：携带材料到泉州市行政服务中心交通运输局窗口办理相关手续并等待审核结果" * 2
             for i in range(40)]
    doc = {"guide": [{"id": "g-long", "title": "超长的道路运输经营许可办理指南",
                      "materials": ["身份证"], "steps": steps},
                     {"id": "g-long-url", "title": "超长的水路运输许可办理指南",
                      "materials": ["身份证"], "steps": steps,
                      "online_url": "https://www.example.com/water"}]}
    with transaction(runtime.sessions) as s:
        import_pack(s, doc, source="t", now=runtime.now(), districts=runtime.settings.bot.districts)
    linked = wechat.text("超长的水路运输许可办理指南")
    assert len(linked.encode()) <= 2048 and linked.endswith("https://www.example.com/water")
    split = wechat.text("超长的道路运输经营许可办理指南")
    assert len(split.encode()) <= 2048 and split.startswith("超长的道路运输经营许可办理指南")
    from rq import Queue

    from bot.jobs import REPLIES_QUEUE
    jobs = Queue(REPLIES_QUEUE, connection=runtime.redis).jobs
    assert len(jobs) == 1 and all(len(t.encode()) <= 2048 for t in jobs[0].args[1])
    assert "第39步" in jobs[0].args[1][-1]


def test_unanswerable_is_stored_for_staff(wechat, runtime):
    reply = wechat.text("今天吃什么")
    assert reply.startswith("这个问题我暂时无法回答") and "换个说法" in reply
    assert "12345" in reply and "转交" not in reply  # not about transport: the city hotline
    wechat.text("今天吃什么")
    wechat.app.extensions["qzbot.webhook"].flush()  # written after the answer, in batches
    with runtime.sessions() as s:
        row = s.scalar(select(UnansweredQuery).where(UnansweredQuery.text == "今天吃什么"))
    assert row.count == 2


def test_subscribe_records_follower_and_source_then_unsubscribe(wechat, runtime):
    welcome = wechat.event("subscribe", "qrscene_ferry_terminal")["Content"]
    assert "欢迎关注" in welcome and "订阅" in welcome
    with runtime.sessions() as s:
        f = s.get(Follower, CITIZEN)
        assert f.active and f.source == "ferry_terminal" and f.followed_at is not None
    assert wechat.event("unsubscribe") is None
    with runtime.sessions() as s:
        f = s.get(Follower, CITIZEN)
        assert not f.active and f.unfollowed_at is not None


def test_text_opens_customer_service_window(app, wechat, runtime):
    with runtime.sessions() as s:
        s.add(Follower(openid=CITIZEN, active=True, cs_sent=5))
        s.commit()
    wechat.text("12328")
    wechat.text("公交卡", openid="oNewCitizen0000000000000001")
    assert app.extensions["qzbot.webhook"].presence.flush() == 2  # one write per second
    with runtime.sessions() as s:
        known, new = s.get(Follower, CITIZEN), s.get(Follower, "oNewCitizen0000000000000001")
        assert known.last_message_at is not None and known.cs_sent == 0  # window reopened
        assert new.active and new.last_message_at is not None


def test_menu_click_mapped_in_config(app, wechat, runtime):
    runtime.settings = runtime.settings.replace(bot={"menu": {
        "K_CARD": "query:公交卡丢了怎么办", "K_NOTICES": "list:notice", "K_HELLO": "text:你好"}})
    assert wechat.event("CLICK", "K_CARD")["Content"].startswith("公交IC卡挂失补办")
    listing = wechat.event("CLICK", "K_NOTICES")["Content"]
    assert "1. 受台风影响石井至金门航线停航" in listing and "刺桐大桥" not in listing
    assert wechat.text("1").startswith("受台风影响石井至金门航线停航")
    assert wechat.event("CLICK", "K_HELLO")["Content"] == "你好"
    assert "暂不可用" in wechat.event("CLICK", "NO_SUCH_KEY")["Content"]
    with runtime.sessions() as s:
        clicks = s.scalars(select(Interaction).where(Interaction.kind == "click")).all()
    assert [c.detail["key"] for c in clicks] == ["K_CARD", "K_NOTICES", "K_HELLO", "NO_SUCH_KEY"]


def test_view_and_location_recorded(wechat, runtime):
    assert wechat.event("VIEW", "https://www.example.com/guide") is None
    assert wechat.event("LOCATION", Latitude="24.874", Longitude="118.675",
                        Precision="30") is None
    with runtime.sessions() as s:
        kinds = [i.kind for i in s.scalars(select(Interaction).order_by(Interaction.id))]
        follower = s.get(Follower, CITIZEN)
    assert kinds == ["view", "location"]
    assert follower.latitude == pytest.approx(24.874)


def test_voice_with_recognition_answered_as_text(wechat):
    reply = wechat.send(msg_type="voice", MediaId="m", Format="amr", Recognition="公交卡丢了去哪补")
    assert reply["Content"].startswith("公交IC卡挂失补办")
    no_rec = wechat.send(msg_type="voice", MediaId="m", Format="amr")
    assert "文字" in no_rec["Content"]


def test_location_message_recorded(wechat, runtime):
    reply = wechat.send(msg_type="location", Location_X="24.9", Location_Y="118.6", Scale="15",
                        Label="泉州市丰泽区")
    assert "位置" in reply["Content"]
    with runtime.sessions() as s:
        assert json.dumps(s.scalars(select(Interaction.detail)).one(), ensure_ascii=False) \
            .count("丰泽区") == 1


def test_handler_crash_gets_apology_not_500(app, wechat):
    hook = app.extensions["qzbot.webhook"]

    def boom(msg, ctx):
        raise RuntimeError("boom")

    hook.router.dispatch = boom
    assert "系统繁忙" in wechat.text("12328")
