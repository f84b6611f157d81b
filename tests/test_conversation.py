"""The conversation layer through the real webhook: the three outcomes, small talk, English,
paging (search lists and menu lists), navigation words, and subscribing in natural words,
and the writes made after the answer (a list's context, unanswered questions).

Search results are pinned with FakeSearch where the behaviour under test is ours, not the
engine's (helper A owns which records are relevant).
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta

import pytest
from sqlalchemy import event, select

from bot import presence as presence_module
from bot.content.pack import import_pack
from bot.dedupe import DEFERRED, Deduper
from bot.presence import Unanswered
from bot.redisconn import connect
from bot.router import Context
from bot.search_api import Found
from bot.store.db import make_engine, make_sessionmaker, transaction
from bot.store.models import Record, UnansweredQuery
from bot.store.queries import bump_content_revision, visible_by_keys
from handlers import choices
from push import subscriptions as subs
from tests.test_speed import _count_redis
from tests.wx import CITIZEN

FAQ_KEYS = [f"faq:f-page-{i:02d}" for i in range(1, 13)]


class FakeSearch:
    """A pinned answer: these keys (unconfident), or nothing with a transport flag."""

    def __init__(self, keys: list[str], transport: bool = False, confident: bool = False):
        self.keys, self.transport, self.confident = keys, transport, confident
        self.limits: list[int] = []

    def ready(self, sessions, now):
        return True

    def find(self, session, query, now, limit=5):
        self.limits.append(limit)
        rows = visible_by_keys(session, self.keys[:limit], now)
        return Found([rows[k] for k in self.keys[:limit] if k in rows], self.confident,
                     self.transport)

    def visible(self, session, keys, now):
        return visible_by_keys(session, keys, now)


def _import(runtime, doc: dict) -> None:
    with transaction(runtime.sessions) as s:
        import_pack(s, doc, source="t", now=runtime.now(), districts=runtime.settings.bot.districts)


@pytest.fixture
def paged(app, runtime):
    """Twelve FAQs and eight more notices; search pinned to the twelve FAQs."""
    faqs = [{"id": f"f-page-{i:02d}", "question": f"第{i}条测试问题", "answer": f"第{i}条答案"}
            for i in range(1, 13)]
    notices = [{"id": f"n-page-{i}", "title": f"第{i}条测试通知", "kind": "bus",
                "body": "正文", "starts_at": datetime(2026, 11, 20, 8, i)} for i in range(1, 9)]
    _import(runtime, {"faq": faqs, "notice": notices})
    fake = FakeSearch(FAQ_KEYS)
    app.extensions["qzbot.webhook"].search = fake
    return fake


def unanswered_texts(runtime, app) -> list[str]:
    app.extensions["qzbot.webhook"].flush()  # written after the answer (bot/presence)
    with runtime.sessions() as s:
        return list(s.scalars(select(UnansweredQuery.text)))


# --- outcomes ----------------------------------------------------------------------------


def test_confident_answer_opens_the_record(app, wechat):
    app.extensions["qzbot.webhook"].search = FakeSearch(["guide:g-ic-card"], confident=True)
    assert wechat.text("公交卡丢了").splitlines()[0] == "公交IC卡挂失补办"


def test_several_relevant_records_are_a_numbered_list(app, wechat):
    keys = ["guide:g-ic-card", "faq:f-taxi-receipt"]
    app.extensions["qzbot.webhook"].search = FakeSearch(keys)
    lines = wechat.text("卡").splitlines()
    assert lines[1:3] == ["1. 公交IC卡挂失补办", "2. 打车忘拿发票怎么办"]
    assert "共" not in "".join(lines)  # one page: no paging footer


@pytest.mark.parametrize("transport, hotline", [(True, "12328 交通运输服务监督电话"),
                                                (False, "12345 政务服务便民热线")])
def test_nothing_relevant_is_an_honest_fallback_with_the_fitting_hotline(
        app, wechat, runtime, transport, hotline):
    app.extensions["qzbot.webhook"].search = FakeSearch([], transport=transport)
    reply = wechat.text("机场大巴几点有")
    assert reply.startswith("这个问题我暂时无法回答")
    assert hotline in reply
    assert ("12345" in reply) is not transport  # only the fitting hotline is named
    assert "转交" not in reply
    assert unanswered_texts(runtime, app) == ["机场大巴几点有"]


def test_no_reply_anywhere_promises_a_hand_over(app, wechat):
    app.extensions["qzbot.webhook"].search = FakeSearch([])
    for text in ("今天吃什么", "你好", "hello", "😀", "菜单", "更多", "7",
                 "How do I renew my licence?"):
        assert "转交" not in wechat.text(text), text


# --- small talk and English --------------------------------------------------------------


@pytest.mark.parametrize("text", ["你好", "您好！", "在吗", "在不在？", "谢谢", "谢谢你",
                                  "好的", "收到", "再见", "拜拜", "嗯", "嗯嗯", "ok", "OK",
                                  "hi", "Hello!", "thanks", "bye", "😀👍", "？？？", "。",
                                  "/::)", "[微笑]", "好的，谢谢"])
def test_small_talk_is_answered_politely_and_never_unanswered(app, wechat, runtime, text):
    fake = FakeSearch([])
    app.extensions["qzbot.webhook"].search = fake
    reply = wechat.text(text)
    assert "订阅" in reply and "公交卡" in reply  # says what the account can do
    assert "暂时无法回答" not in reply
    assert fake.limits == []  # small talk never reaches the search
    assert unanswered_texts(runtime, app) == []


def test_small_talk_replies_fit_the_moment(app, wechat):
    assert wechat.text("谢谢").startswith("不客气")
    assert wechat.text("再见").startswith("再见")
    assert wechat.text("你好").startswith("您好")


def test_greeting_with_a_question_is_a_question(app, wechat, runtime):
    fake = FakeSearch(["guide:g-ic-card"], confident=True)
    app.extensions["qzbot.webhook"].search = fake
    assert wechat.text("你好，公交卡丢了怎么办").startswith("公交IC卡挂失补办")
    assert fake.limits  # it was searched
    app.extensions["qzbot.webhook"].search = FakeSearch([])
    assert wechat.text("在吗 驾照扣分怎么查").startswith("这个问题我暂时无法回答")
    assert unanswered_texts(runtime, app) == ["驾照扣分怎么查"]  # recorded without the greeting


@pytest.mark.parametrize("text", ["How do I get to the airport?", "Where can I buy a bus card",
                                  "taxi"])
def test_english_gets_a_chinese_reply_with_12328(app, wechat, runtime, text):
    fake = FakeSearch([])
    app.extensions["qzbot.webhook"].search = fake
    reply = wechat.text(text)
    assert "中文" in reply and "12328" in reply
    assert fake.limits == [] and unanswered_texts(runtime, app) == []


def test_latin_acronyms_are_still_searched(app, wechat):
    fake = FakeSearch(["guide:g-ic-card"], confident=True)
    app.extensions["qzbot.webhook"].search = fake
    for text in ("ETC", "IC卡", "G15"):
        assert wechat.text(text).startswith("公交IC卡挂失补办"), text
    assert len(fake.limits) == 3


# --- paging ------------------------------------------------------------------------------


def test_search_lists_ask_for_twenty_and_show_five_per_page(paged, wechat):
    lines = wechat.text("测试").splitlines()
    assert paged.limits == [20]
    assert lines[1:6] == [f"{i}. 第{i}条测试问题" for i in range(1, 6)]
    assert "共12条，第1/3页，回复“更多”看下一页" in lines
    assert not any("上一页" in line for line in lines)


def test_paging_forward_back_and_beyond_the_end(paged, wechat):
    wechat.text("测试")
    page2 = wechat.text("更多").splitlines()
    assert page2[1:6] == [f"{i}. 第{i}条测试问题" for i in range(6, 11)]
    assert any("第2/3页" in line and "上一页" in line and "更多" in line for line in page2)
    page3 = wechat.text("下一页").splitlines()
    assert page3[1:3] == ["11. 第11条测试问题", "12. 第12条测试问题"]
    assert any("第3/3页" in line for line in page3)
    end = wechat.text("下页")
    assert "最后一页" in end and "共12条" in end
    back = wechat.text("上一页").splitlines()
    assert back[1] == "6. 第6条测试问题"
    assert wechat.text("上页").splitlines()[1] == "1. 第1条测试问题"
    assert "第一页" in wechat.text("上一页")


def test_digits_open_records_on_any_page(paged, wechat):
    wechat.text("测试")
    wechat.text("更多")
    assert wechat.text("7").startswith("第7条测试问题")
    assert wechat.text("１２").startswith("第12条测试问题")  # full-width
    assert wechat.text("2").startswith("第2条测试问题")  # page 1 numbers still open
    assert "超出范围" in wechat.text("13")


def test_paging_words_with_no_list_pending_say_so(app, wechat, runtime):
    fake = FakeSearch([])
    app.extensions["qzbot.webhook"].search = fake
    for word in ("更多", "下一页", "上一页"):
        assert "没有可以翻页的列表" in wechat.text(word)
    assert fake.limits == [] and unanswered_texts(runtime, app) == []


def test_menu_lists_are_paged(paged, app, wechat, runtime):
    runtime.settings = runtime.settings.replace(bot={"menu": {"K_NOTICES": "list:notice"}})
    first = wechat.event("CLICK", "K_NOTICES")["Content"].splitlines()
    assert first[0] == "出行资讯："
    assert first[1] == "1. 受台风影响石井至金门航线停航"  # urgent first
    assert "共9条，第1/2页，回复“更多”看下一页" in first
    second = wechat.text("更多").splitlines()
    assert second[1].startswith("6. ") and len([x for x in second if x[:1].isdigit()]) == 4
    assert "刺桐大桥" not in "".join(first + second)  # ended notices stay hidden
    assert wechat.text("9").startswith(second[4].split(". ", 1)[1])


def test_a_page_never_shows_a_record_hidden_since_the_list(paged, wechat, runtime):
    wechat.text("测试")
    with transaction(runtime.sessions) as s:
        s.scalar(select(Record).where(Record.rid == "f-page-07")).ends_at = datetime(2000, 1, 1)
        bump_content_revision(s)
    page2 = wechat.text("更多")
    assert "第7条" not in page2 and "6. 第6条测试问题" in page2


# --- navigation --------------------------------------------------------------------------


@pytest.mark.parametrize("word", ["返回", "菜单", "主菜单", "帮助"])
def test_navigation_words_show_the_menu_text(app, wechat, runtime, word):
    fake = FakeSearch([])
    app.extensions["qzbot.webhook"].search = fake
    reply = wechat.text(word)
    for offer in ("办事指南", "咨询电话", "出行资讯", "订阅"):
        assert offer in reply
    assert fake.limits == [] and unanswered_texts(runtime, app) == []


def test_menu_text_follows_the_configured_menu(paged, wechat, runtime):
    runtime.settings = runtime.settings.replace(bot={"menu": {
        "K_NOTICES": "list:notice", "K_CARD": "query:公交卡丢了怎么补办"}})
    reply = wechat.text("菜单")
    assert "出行资讯" in reply and "公交卡丢了怎么补办" in reply and "办事指南" not in reply
    assert wechat.text("出行资讯").splitlines()[0] == "出行资讯："  # a label opens its list


# --- subscribing in natural words --------------------------------------------------------


def held(runtime) -> list[tuple[str, str, str]]:
    with runtime.sessions() as s:
        return [(r.topic, r.district, r.notice_kind) for r in subs.list_for(s, CITIZEN)]


@pytest.mark.parametrize("text, rows, confirmation", [
    ("我要订阅台风消息", [("出行资讯", "", "")], "已订阅：出行资讯"),
    ("以后有停航通知告诉我", [("出行资讯", "", "ferry")], "已订阅：出行资讯（轮渡）"),
    ("有封路消息推送给我", [("出行资讯", "", "road")], "已订阅：出行资讯（道路）"),
    ("丰泽区有封路的话通知我", [("出行资讯", "丰泽区", "road")], "已订阅：出行资讯（丰泽区·道路）"),
    ("我想订阅项目进展", [("项目进展", "", "")], "已订阅：项目进展"),
])
def test_natural_subscribe_phrases(app, wechat, runtime, text, rows, confirmation):
    fake = FakeSearch([])
    app.extensions["qzbot.webhook"].search = fake
    reply = wechat.text(text)
    assert reply.splitlines()[0] == confirmation
    assert held(runtime) == rows and fake.limits == []


@pytest.mark.parametrize("text", ["不想再收到推送了", "别再给我发消息了", "不要再推送了"])
def test_natural_unsubscribe_all_phrases(wechat, runtime, text):
    wechat.text("订阅 出行")
    wechat.text("订阅 项目进展")
    reply = wechat.text(text)
    assert reply.startswith("已退订全部 2 项订阅：")
    assert held(runtime) == []


def test_natural_unsubscribe_one_topic(wechat, runtime):
    wechat.text("订阅 出行")
    wechat.text("订阅 项目进展")
    reply = wechat.text("取消项目进展的推送")
    assert reply.splitlines()[0] == "已退订：项目进展"
    assert held(runtime) == [("出行资讯", "", "")]
    assert wechat.text("不想再收到台风消息了").splitlines()[0] == "已退订：出行资讯"


def test_everyday_words_work_after_the_command_too(wechat, runtime):
    assert wechat.text("订阅台风消息").splitlines()[0] == "已订阅：出行资讯"
    assert wechat.text("订阅 停航").splitlines()[0].startswith("您已订阅过：出行资讯（轮渡）")


@pytest.mark.parametrize("text", ["台风天渡轮开不开", "停航了怎么退票", "封路消息在哪里看",
                                  "怎么订阅台风消息", "有停航通知吗", "公交卡丢了告诉我怎么办",
                                  "取消网约车订单怎么投诉"])
def test_questions_mentioning_subscription_words_stay_questions(app, wechat, runtime, text):
    fake = FakeSearch([])
    app.extensions["qzbot.webhook"].search = fake
    reply = wechat.text(text)
    assert reply.startswith("这个问题我暂时无法回答") and fake.limits == [20]
    assert held(runtime) == []


def test_natural_requests_by_voice(wechat, runtime):
    reply = wechat.send(msg_type="voice", MediaId="m", Format="amr",
                        Recognition="以后有停航通知告诉我。")
    assert reply["Content"].splitlines()[0] == "已订阅：出行资讯（轮渡）"
    assert held(runtime) == [("出行资讯", "", "ferry")]


# --- writes after the answer (issue 8 item 7) ------------------------------------------------
def _choice_ctx(runtime, client, deduper: Deduper | None) -> Context:
    notes = {DEFERRED: deduper} if deduper is not None else {}
    return Context(session=None, redis=client, settings=runtime.settings, now=runtime.now(),
                   search=None, openid_hash="ohash-deferred", notes=notes)


def test_a_list_costs_one_redis_round_trip_and_its_context_follows(paged, app, wechat,
                                                                     runtime, monkeypatch):
    app.extensions["qzbot.webhook"].deduper.flush_delay = 2  # the thread stays out of it
    wechat.text("你好")  # loads the script into Redis if needed
    calls = _count_redis(monkeypatch)
    assert wechat.text("测试").splitlines()[1] == "1. 第1条测试问题"
    assert [c[0].upper() for c in calls] == ["EVALSHA"]  # no SET of its own for the list
    assert runtime.redis.keys("qzbot:ctx:*") == []  # queued, not written before the reply
    calls.clear()
    assert wechat.text("2").startswith("第2条测试问题")
    # the claim carried the context, and the pick read it back from Redis
    assert [c[0].upper() for c in calls] == ["EVALSHA", "GET"]
    (key,) = runtime.redis.keys("qzbot:ctx:*")
    assert 590 <= runtime.redis.ttl(key) <= 600


def test_a_queued_list_is_read_back_before_it_is_written(runtime, redis_client):
    deduper = Deduper(redis_client, 60, flush_delay=2)
    ctx = _choice_ctx(runtime, redis_client, deduper)
    choices.remember(ctx, ["faq:a", "faq:b"], "intro")
    assert redis_client.get("qzbot:ctx:ohash-deferred") is None  # not written yet
    assert choices.pick(ctx, 2) == "faq:b"  # read-your-writes in this process
    other = _choice_ctx(runtime, redis_client, None)  # another process: Redis only
    assert choices.pick(other, 2) is None
    assert deduper.flush() == 1
    assert deduper.pending("qzbot:ctx:ohash-deferred") is None
    assert choices.pick(other, 2) == "faq:b"
    assert 590 <= redis_client.ttl("qzbot:ctx:ohash-deferred") <= 600
    deduper.close()


def test_a_queued_list_fails_open_when_redis_is_down(runtime, caplog):
    down = connect("redis://127.0.0.1:1/0")
    deduper = Deduper(down, 60, flush_delay=2)
    ctx = _choice_ctx(runtime, down, deduper)
    choices.remember(ctx, ["faq:a"])  # no error for the citizen
    assert choices.pick(ctx, 1) == "faq:a"
    deduper.flush()
    assert "1 stored repl(ies) or deferred write(s) dropped" in caplog.text
    assert deduper.pending("qzbot:ctx:ohash-deferred") is None  # never stale
    assert choices.pick(ctx, 1) is None and "choice context unavailable" in caplog.text
    deduper.close()


def test_unanswered_questions_are_written_after_the_answer(app, wechat, runtime):
    statements: list[str] = []

    def seen(conn, cursor, sql, *args):
        if threading.current_thread() is threading.main_thread():  # the answering thread
            statements.append(sql)

    event.listen(runtime.engine, "before_cursor_execute", seen)
    try:
        assert wechat.text("今天吃什么").startswith("这个问题我暂时无法回答")
    finally:
        event.remove(runtime.engine, "before_cursor_execute", seen)
    assert not [sql for sql in statements if "unanswered" in sql.lower()]
    deadline = time.monotonic() + 5  # the writer thread writes once a second, unasked
    while not unanswered_texts_unflushed(runtime):
        assert time.monotonic() < deadline, "not written by the writer thread"
        time.sleep(0.05)
    assert unanswered_texts_unflushed(runtime) == ["今天吃什么"]


def unanswered_texts_unflushed(runtime) -> list[str]:
    with runtime.sessions() as s:
        return list(s.scalars(select(UnansweredQuery.text)))


def test_unanswered_questions_wait_for_the_database(runtime, clock, caplog, monkeypatch):
    monkeypatch.setattr(presence_module, "MAX_UNANSWERED", 1)  # bounded while it is away
    buffer = Unanswered(runtime, interval=3600)  # flushed by hand below
    healthy = runtime.sessions
    dead = make_engine("postgresql+psycopg://postgres@127.0.0.1:1/qzbot")
    runtime.sessions = make_sessionmaker(dead)
    try:
        buffer.add("机场大巴几点有", clock.now)
        assert buffer.flush() == 0 and "1 unanswered question(s) not written" in caplog.text
        buffer.add("机场大巴几点有", clock.now + timedelta(minutes=1))  # counted on
        buffer.add("社保卡怎么办", clock.now)  # over the bound: dropped
    finally:
        runtime.sessions = healthy
        dead.dispose()
    assert buffer.flush() == 1
    with runtime.sessions() as s:
        rows = list(s.scalars(select(UnansweredQuery)))
    assert [(r.text, r.count) for r in rows] == [("机场大巴几点有", 2)]
    assert rows[0].last_at - rows[0].first_at == timedelta(minutes=1)
    buffer.close()


def test_unanswered_question_times_are_the_time_asked(app, wechat, runtime, clock):
    """Regression: the buffer's naive-UTC times were read again as Shanghai time (8 h early)."""
    assert wechat.text("今天吃什么").startswith("这个问题我暂时无法回答")
    app.extensions["qzbot.webhook"].flush()
    with runtime.sessions() as s:
        row = s.scalars(select(UnansweredQuery)).one()
    from bot.clock import to_utc_naive
    assert row.first_at == row.last_at == to_utc_naive(clock.now)
