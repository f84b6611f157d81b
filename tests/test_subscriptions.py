"""Topic subscriptions: aliases, data operations, the citizen commands, menu actions, unfollow.

Both databases, real Redis. Replies are asserted line by line: they must say exactly what
changed.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.settings import DEFAULT_DISTRICTS
from bot.store.db import transaction
from bot.store.models import Follower, Subscription
from bot.wechat.replies import utf8_len
from push import subscriptions as subs
from tests.test_consent import BASE_URL, GOV, TEMPLATES, TRAVEL, popup, post
from tests.wx import CITIZEN

OTHER = "oOTHERcitizen000000000000000"
# every topic, the seed's 市场监管动态 and 便民惠企措施 included (issue 8)
TOPICS_LINE = "可订阅的主题：出行资讯、项目进展、政务公开、政策解读、市场监管动态、便民惠企措施。"


# the conftest runtime, with the consent templates and a public base URL configured
SETTINGS_OVERRIDES = {"push": {"templates": TEMPLATES, "public_base_url": BASE_URL}}


def held(runtime, openid: str = CITIZEN) -> list[tuple[str, str, str]]:
    with runtime.sessions() as s:
        return [(r.topic, r.district, r.notice_kind) for r in subs.list_for(s, openid)]


# --- words ---------------------------------------------------------------------------------


@pytest.mark.parametrize("text, topics, districts, kinds", [
    ("出行 丰泽区", ["出行资讯"], ["丰泽区"], []),
    ("出行丰泽", ["出行资讯"], ["丰泽区"], []),
    ("交通出行，轮渡", ["出行资讯"], [], ["ferry"]),
    ("出行资讯 渡轮", ["出行资讯"], [], ["ferry"]),
    ("项目", ["项目进展"], [], []),
    ("重点项目 晋江", ["项目进展"], ["晋江市"], []),
    ("信息公开", ["政务公开"], [], []),
    ("公开", ["政务公开"], [], []),
    ("政策", ["政策解读"], [], []),
    ("解读", ["政策解读"], [], []),
    ("市场监管", ["市场监管动态"], [], []),
    ("行政处罚", ["市场监管动态"], [], []),
    ("便民惠企措施", ["便民惠企措施"], [], []),
    ("惠企政策", ["便民惠企措施"], [], []),
    ("市场监管 便民措施", ["市场监管动态", "便民惠企措施"], [], []),
    ("出行 封路 公交 长途 的士 地铁 其他", ["出行资讯"], [],
     ["road", "bus", "coach", "taxi", "rail", "other"]),
    ("出行 道路 出租 铁路 客运", ["出行资讯"], [], ["road", "taxi", "rail", "coach"]),
    ("出行 台商 经开区 惠安", ["出行资讯"],
     ["泉州台商投资区", "泉州经济技术开发区", "惠安县"], []),
    ("全部出行的消息", ["出行资讯"], [], []),
    ("FERRY road", [], [], ["ferry", "road"]),
    ("出行 出行资讯", ["出行资讯"], [], []),
])
def test_aliases(text, topics, districts, kinds):
    wanted = subs.parse_wanted(text, DEFAULT_DISTRICTS)
    assert (list(wanted.topics), list(wanted.districts), list(wanted.kinds)) == \
        (topics, districts, kinds)
    assert wanted.unknown == ()


def test_unknown_words_are_reported():
    wanted = subs.parse_wanted("出行 天气 丰泽 火星区", DEFAULT_DISTRICTS)
    assert wanted.topics == ("出行资讯",) and wanted.districts == ("丰泽区",)
    assert wanted.unknown == ("天气", "火星区")


def test_district_aliases_follow_the_configured_list():
    aliases = subs.district_aliases(("鲤城区", "晋江市", "泉州台商投资区"))
    assert aliases["鲤城"] == "鲤城区" and aliases["晋江"] == "晋江市"
    assert aliases["台商区"] == "泉州台商投资区" and aliases["台商投资区"] == "泉州台商投资区"
    assert "丰泽" not in aliases  # not configured, not recognised


def test_every_notice_kind_has_a_label_and_aliases():
    from bot.content.schema import NOTICE_KINDS

    assert set(subs.KIND_LABEL) == set(subs.KIND_ALIASES) == set(NOTICE_KINDS)


def test_labels():
    assert subs.label("出行资讯") == "出行资讯"
    assert subs.label("出行资讯", "丰泽区") == "出行资讯（丰泽区）"
    assert subs.label("出行资讯", "丰泽区", "ferry") == "出行资讯（丰泽区·轮渡）"
    assert subs.label("出行资讯", "", "road") == "出行资讯（道路）"


# --- data operations -----------------------------------------------------------------------


def test_subscribe_is_idempotent_and_broader_replaces_narrower(runtime):
    now = runtime.now()
    with transaction(runtime.sessions) as s:
        first = subs.subscribe(s, CITIZEN, "出行资讯", "丰泽区", now=now)
        assert first.added and first.label == "出行资讯（丰泽区）"
        again = subs.subscribe(s, CITIZEN, "出行资讯", "丰泽区", now=now)
        assert not again.added and again.covered_by == "出行资讯（丰泽区）"
        assert subs.subscribe(s, CITIZEN, "出行资讯", "丰泽区", "ferry", now=now).covered_by \
            == "出行资讯（丰泽区）"
        assert subs.subscribe(s, CITIZEN, "出行资讯", "", "ferry", now=now).added
        broad = subs.subscribe(s, CITIZEN, "出行资讯", now=now)
        assert broad.added and broad.replaced == ["出行资讯（丰泽区）", "出行资讯（轮渡）"]
        assert subs.subscribe(s, OTHER, "出行资讯", now=now).added  # per citizen
        with pytest.raises(ValueError):
            subs.subscribe(s, CITIZEN, "天气", now=now)
        with pytest.raises(ValueError):
            subs.subscribe(s, CITIZEN, "出行资讯", "", "boat", now=now)
    assert held(runtime) == [("出行资讯", "", "")]


def test_unsubscribe_filters_and_all(runtime):
    now = runtime.now()
    with transaction(runtime.sessions) as s:
        for district, kind in (("丰泽区", ""), ("鲤城区", "bus"), ("", "ferry")):
            subs.subscribe(s, CITIZEN, "出行资讯", district, kind, now=now)
        subs.subscribe(s, CITIZEN, "项目进展", now=now)
        subs.subscribe(s, OTHER, "项目进展", now=now)
    with transaction(runtime.sessions) as s:
        removed = subs.unsubscribe(s, CITIZEN, "出行资讯", "鲤城区")
        assert [subs.label_of(r) for r in removed] == ["出行资讯（鲤城区·公交）"]
        assert subs.unsubscribe(s, CITIZEN, "政策解读") == []
        assert [subs.label_of(r) for r in subs.unsubscribe(s, CITIZEN, None, None, "ferry")] \
            == ["出行资讯（轮渡）"]
    assert held(runtime) == [("出行资讯", "丰泽区", ""), ("项目进展", "", "")]
    with transaction(runtime.sessions) as s:
        assert len(subs.unsubscribe(s, CITIZEN)) == 2
    assert held(runtime) == [] and held(runtime, OTHER) == [("项目进展", "", "")]


def test_concurrent_identical_subscriptions_make_one_row(runtime):
    now = runtime.now()
    first, second = runtime.sessions(), runtime.sessions()
    try:
        assert subs.subscribe(first, CITIZEN, "项目进展", now=now).added
        first.flush()
        outcome = {}

        def other_request() -> None:
            outcome["change"] = subs.subscribe(second, CITIZEN, "项目进展", now=now)
            second.commit()

        worker = threading.Thread(target=other_request)
        worker.start()
        time.sleep(0.3)
        first.commit()
        worker.join(timeout=30)
        assert not outcome["change"].added
    finally:
        first.close()
        second.close()
    assert held(runtime) == [("项目进展", "", "")]


# --- commands ------------------------------------------------------------------------------


def lines(reply: str) -> list[str]:
    return reply.splitlines()


def test_subscribe_then_unsubscribe_say_exactly_what_changed(wechat, runtime):
    assert lines(wechat.text("订阅 出行 丰泽区"))[0] == "已订阅：出行资讯（丰泽区）"
    assert held(runtime) == [("出行资讯", "丰泽区", "")]
    assert lines(wechat.text("订阅 出行 丰泽区"))[0] == \
        "您已订阅过：出行资讯（丰泽区），无需重复订阅。"
    assert lines(wechat.text("订阅 出行 轮渡"))[0] == "已订阅：出行资讯（轮渡）"
    assert lines(wechat.text("订阅 项目进展"))[0] == "已订阅：项目进展"
    assert held(runtime) == [("出行资讯", "", "ferry"), ("出行资讯", "丰泽区", ""),
                             ("项目进展", "", "")]
    assert lines(wechat.text("退订 项目进展"))[0] == "已退订：项目进展"
    assert lines(wechat.text("退订 项目进展"))[0] == "您未订阅：项目进展，没有需要退订的内容。"
    assert lines(wechat.text("退订 出行 丰泽区"))[0] == "已退订：出行资讯（丰泽区）"
    assert held(runtime) == [("出行资讯", "", "ferry")]


def test_broader_subscription_merges_and_explains_narrow_unsubscribe(wechat, runtime):
    wechat.text("订阅 出行 丰泽区")
    reply = lines(wechat.text("订阅 出行"))
    assert reply[:2] == ["已订阅：出行资讯", "（已合并原有的：出行资讯（丰泽区））"]
    assert held(runtime) == [("出行资讯", "", "")]
    reply = lines(wechat.text("退订 出行 丰泽区"))
    assert reply[0] == "您未订阅：出行资讯（丰泽区），没有需要退订的内容。"
    assert reply[1] == "您订阅的“出行资讯”包含这部分内容，如需停止请回复“退订 出行资讯”。"
    assert held(runtime) == [("出行资讯", "", "")]
    assert lines(wechat.text("取消订阅 出行资讯"))[0] == "已退订：出行资讯"


def test_spaces_are_optional_and_voice_works(wechat, runtime):
    assert lines(wechat.text("订阅出行丰泽"))[0] == "已订阅：出行资讯（丰泽区）"
    reply = wechat.send(msg_type="voice", MediaId="m1", Format="amr", Recognition="订阅项目进展。")
    assert lines(str(reply["Content"]))[0] == "已订阅：项目进展"


def test_filters_without_a_topic_mean_travel(wechat, runtime):
    assert lines(wechat.text("订阅 轮渡"))[0] == "已订阅：出行资讯（轮渡）"


def test_several_districts_and_kinds(wechat, runtime):
    reply = lines(wechat.text("订阅 出行 鲤城区、丰泽区 公交"))
    assert reply[0] == "已订阅：出行资讯（鲤城区·公交）、出行资讯（丰泽区·公交）"


@pytest.mark.parametrize("text, expected", [
    ("订阅 天气", "没有识别“天气”。"),
    ("订阅 出行 火星区", "没有识别“火星区”。"),
    ("订阅 政策解读 丰泽区", "“政策解读”不分县区，请直接回复“订阅 政策解读”。"),
    ("订阅 政务公开 轮渡", "“政务公开”不分类别，类别（如轮渡、公交）只适用于出行资讯。"),
    ("退订 天气", "没有识别“天气”。"),
])
def test_unknown_or_unfit_words_get_help_and_change_nothing(wechat, runtime, text, expected):
    reply = wechat.text(text)
    assert reply.startswith(expected)
    if "没有识别" in expected:
        assert TOPICS_LINE in reply
    assert held(runtime) == []


def test_help_lists_topics_consent_and_a_one_time_link(wechat, runtime):
    reply = wechat.text("订阅")
    assert reply.startswith(TOPICS_LINE)
    assert "订阅 出行 丰泽区" in reply and "全部退订" in reply
    assert "48小时" in reply
    assert "· 出行资讯：在本号文章或页面弹出的订阅通知中点“允许”即可长期接收。" in reply
    assert "· 政务公开：<a href=\"https://mp.weixin.qq.com/mp/subscribemsg?" in reply
    assert "政策解读：" not in reply  # template messages need no consent
    assert utf8_len(reply) <= 2048
    assert held(runtime) == []


def test_help_without_a_public_base_url_has_no_link(wechat, runtime):
    runtime.settings = runtime.settings.replace(push={"public_base_url": ""})
    reply = wechat.text("订阅")
    assert "<a href" not in reply and "· 政务公开：" in reply


def test_help_drops_the_popup_hint_once_allowed(wechat, runtime):
    post(wechat, popup((TRAVEL, "accept")))
    reply = wechat.text("订阅")
    assert "· 出行资讯：" not in reply and "· 项目进展：" in reply
    assert "您当前的订阅：出行资讯" in reply  # the popup subscribed to its topic


def test_my_subscriptions_and_all_off(wechat, runtime):
    assert wechat.text("我的订阅") == "您当前没有订阅。回复“订阅”查看可订阅的内容。"
    wechat.text("订阅 出行 丰泽区")
    wechat.text("订阅 政务公开")
    post(wechat, popup((GOV, "accept")))
    assert lines(wechat.text("我的订阅")) == [
        "您当前的订阅：", "· 出行资讯（丰泽区）（未允许订阅通知）", "· 政务公开（可接收订阅通知）"]
    assert wechat.text("全部退订") == ("已退订全部 2 项订阅：出行资讯（丰泽区）、政务公开，"
                                     "并停止全部推送。如需重新订阅，请回复“订阅”。")
    assert held(runtime) == []
    assert wechat.text("全部退订") == ("您当前没有任何订阅；已为您停止全部推送（含面向全体关注者的"
                                     "通知）。如需重新接收，请回复“订阅”。")


@pytest.mark.parametrize("question", ["订阅号怎么关注？", "订阅的消息怎么取消", "退订了还会收到吗",
                                      "我的订阅在哪里看"])
def test_questions_that_start_alike_go_to_the_search(wechat, runtime, question):
    reply = wechat.text(question)
    assert reply and "可订阅的主题" not in reply and not reply.startswith(("已订阅", "已退订"))
    assert held(runtime) == []


def test_menu_subscription_actions(app, wechat, runtime):
    runtime.settings = runtime.settings.replace(bot={"menu": {
        "K_SUB_TRAVEL": "sub:出行资讯", "K_SUB_FERRY": "sub:出行 轮渡", "K_SUB": "sub:",
        "K_UNSUB_TRAVEL": "unsub:出行资讯", "K_MINE": "mysubs:"}})
    assert lines(wechat.event("CLICK", "K_SUB_FERRY")["Content"])[0] == "已订阅：出行资讯（轮渡）"
    assert lines(wechat.event("CLICK", "K_SUB_TRAVEL")["Content"])[:2] == [
        "已订阅：出行资讯", "（已合并原有的：出行资讯（轮渡））"]
    assert wechat.event("CLICK", "K_MINE")["Content"] == \
        "您当前的订阅：\n· 出行资讯（未允许订阅通知）"
    assert wechat.event("CLICK", "K_SUB")["Content"].startswith("可订阅的主题：")
    assert lines(wechat.event("CLICK", "K_UNSUB_TRAVEL")["Content"])[0] == "已退订：出行资讯"
    assert held(runtime) == []


def test_unfollow_keeps_subscriptions_but_makes_the_citizen_inactive(wechat, runtime, clock):
    wechat.event("subscribe")
    wechat.text("订阅 项目进展")
    assert wechat.event("unsubscribe") is None
    with runtime.sessions() as s:
        assert not s.get(Follower, CITIZEN).active  # outside every audience from now on
        assert s.scalar(select(Subscription.topic).where(Subscription.openid == CITIZEN)) \
            == "项目进展"
    clock.now += timedelta(minutes=5)  # a new follow event, not a retry of the first
    wechat.event("subscribe")  # following again restores what they chose
    with runtime.sessions() as s:
        assert s.get(Follower, CITIZEN).active
    assert held(runtime) == [("项目进展", "", "")]


def test_replies_stay_under_the_passive_limit(wechat, runtime):
    wechat.text("订阅 出行 " + " ".join(DEFAULT_DISTRICTS[:10]))
    for text in ("订阅", "我的订阅", "退订", "订阅 政务公开"):
        assert utf8_len(wechat.text(text)) <= runtime.settings.bot.reply_limit_bytes
