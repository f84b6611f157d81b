"""Citizens' question outcomes counted per Asia/Shanghai day (issue 9 item 6).

The webhook counts each text question's outcome in its deferred buffer (bot/presence.
Unanswered) and writes the counts once a second: no database round trip per message,
merged back on a database error, additive across processes (UPDATE count + n, INSERT when
missing).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event, select

from bot import presence as presence_module
from bot.presence import Unanswered
from bot.search_api import Found
from bot.store.db import make_engine, make_sessionmaker
from bot.store.models import QuestionCount
from bot.store.queries import add_question_counts, visible_by_keys


class PinnedSearch:
    """Search pinned per query: {text: (keys, confident)}; anything else finds nothing."""

    def __init__(self, answers: dict[str, tuple[list[str], bool]]):
        self.answers = answers

    def ready(self, sessions, now):
        return True

    def find(self, session, query, now, limit=5):
        keys, confident = self.answers.get(query, ([], False))
        rows = visible_by_keys(session, keys[:limit], now)
        return Found([rows[k] for k in keys if k in rows], confident, True)

    def visible(self, session, keys, now):
        return visible_by_keys(session, keys, now)


def counts(runtime) -> dict[tuple[str, str], int]:
    with runtime.sessions() as s:
        return {(r.day, r.outcome): r.count for r in s.scalars(select(QuestionCount))}


def test_each_kind_of_message_is_counted_on_its_day(app, wechat, runtime):
    hook = app.extensions["qzbot.webhook"]
    hook.search = PinnedSearch({"公交卡丢了": (["guide:g-ic-card"], True),
                                "卡": (["guide:g-ic-card", "faq:f-taxi-receipt"], False)})
    assert wechat.text("公交卡丢了").startswith("公交IC卡挂失补办")  # answer
    assert wechat.text("卡").splitlines()[1].startswith("1. ")  # list
    assert wechat.text("1").startswith("公交IC卡挂失补办")  # pick from the list
    assert wechat.text("更多")  # navigation (paging)
    assert wechat.text("菜单")  # navigation (menu)
    assert wechat.text("你好").startswith("您好")  # small talk
    assert wechat.text("hello there")  # English: small talk too
    assert wechat.text("驾照扣分怎么查").startswith("这个问题我暂时无法回答")  # fallback
    assert wechat.text("驾照扣分怎么查？")  # fallback again
    assert wechat.text("订阅 出行")  # intent
    assert wechat.text("   ")  # empty
    wechat.send(msg_type="voice", MediaId="m1", Format="amr", Recognition="")  # other
    wechat.send(msg_type="image", PicUrl="http://x/1.jpg", MediaId="m2")  # not a question
    wechat.event("subscribe")  # not a question
    assert counts(runtime) == {}  # nothing written during the answers
    hook.flush()
    day = "2026-11-27"
    assert counts(runtime) == {
        (day, "answer"): 1, (day, "list"): 1, (day, "pick"): 1, (day, "navigation"): 2,
        (day, "smalltalk"): 2, (day, "fallback"): 2, (day, "intent"): 1, (day, "empty"): 1,
        (day, "other"): 1}


def test_the_day_is_asia_shanghai(app, wechat, runtime, clock):
    clock.now = clock.now.replace(hour=16, minute=30)  # 00:30 on the 28th in Shanghai
    wechat.text("你好")
    clock.now = clock.now.replace(hour=15, minute=59)  # 23:59 on the 27th in Shanghai
    wechat.text("谢谢")
    app.extensions["qzbot.webhook"].flush()
    assert counts(runtime) == {("2026-11-28", "smalltalk"): 1, ("2026-11-27", "smalltalk"): 1}


def test_a_failing_handler_counts_as_error(app, wechat, runtime):
    class Broken(PinnedSearch):
        def find(self, session, query, now, limit=5):
            raise RuntimeError("bug")

    hook = app.extensions["qzbot.webhook"]
    hook.search = Broken({})
    assert "系统繁忙" in wechat.text("机场大巴几点有")
    hook.flush()
    assert counts(runtime) == {("2026-11-27", "error"): 1}


def test_no_database_statement_counts_a_question(app, wechat, runtime):
    statements: list[str] = []

    def note(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(runtime.engine, "before_cursor_execute", note)
    try:
        wechat.text("你好")
        assert not [s for s in statements if "question_counts" in s]  # not while answering
        app.extensions["qzbot.webhook"].flush()
    finally:
        event.remove(runtime.engine, "before_cursor_execute", note)
    assert [s for s in statements if "question_counts" in s]  # written by the flush only
    assert counts(runtime) == {("2026-11-27", "smalltalk"): 1}


def test_counts_survive_a_database_error_and_are_merged_back(runtime, clock, caplog):
    buffer = Unanswered(runtime, interval=3600)  # flushed by hand below
    healthy = runtime.sessions
    dead = make_engine("postgresql+psycopg://postgres@127.0.0.1:1/qzbot")
    runtime.sessions = make_sessionmaker(dead)
    try:
        buffer.count("answer", clock.now)
        buffer.count("fallback", clock.now)
        assert buffer.flush() == 0 and "not written" in caplog.text
        buffer.count("answer", clock.now + timedelta(minutes=1))  # merged with the restored
    finally:
        runtime.sessions = healthy
        dead.dispose()
    assert buffer.flush() == 2
    assert counts(runtime) == {("2026-11-27", "answer"): 2, ("2026-11-27", "fallback"): 1}
    buffer.close()


def test_outcome_counters_are_kept_when_the_question_buffer_is_full(runtime, clock,
                                                                     monkeypatch):
    monkeypatch.setattr(presence_module, "MAX_UNANSWERED", 1)
    buffer = Unanswered(runtime, interval=3600)
    buffer.add("机场大巴几点有", clock.now)
    buffer.add("社保卡怎么办", clock.now)  # over the bound: dropped
    buffer.count("fallback", clock.now)
    buffer.count("fallback", clock.now)
    assert buffer.flush() == 2
    assert counts(runtime) == {("2026-11-27", "fallback"): 2}
    buffer.close()


def test_two_processes_flushing_add_up(runtime, clock):
    """Two buffers (two processes) writing the same day's counters: every count lands."""
    first, second = Unanswered(runtime, interval=3600), Unanswered(runtime, interval=3600)
    for _ in range(3):
        first.count("answer", clock.now)
    second.count("answer", clock.now)
    second.count("list", clock.now)
    assert first.flush() == 1 and second.flush() == 2  # the second INSERT finds the row
    first.count("answer", clock.now)
    assert first.flush() == 1
    assert counts(runtime) == {("2026-11-27", "answer"): 5, ("2026-11-27", "list"): 1}
    first.close()
    second.close()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_concurrent_insert_is_added_to_not_lost(runtime):
    """The INSERT race, on PostgreSQL only (SQLite takes the write lock at the UPDATE, so
    there is no race to lose): another process inserts the day's row between our UPDATE (no
    row yet) and our INSERT: we add to its row."""
    assert runtime.engine.dialect.name == "postgresql"
    raced: list[bool] = []

    def other_process_inserts(conn, cursor, statement, params, context, executemany):
        if statement.startswith("UPDATE question_counts") and not raced:
            raced.append(cursor.rowcount == 0)
            with runtime.sessions() as other:
                add_question_counts(other, {("2026-11-27", "answer"): 3})
                other.commit()

    event.listen(runtime.engine, "after_cursor_execute", other_process_inserts)
    try:
        with runtime.sessions() as session:
            add_question_counts(session, {("2026-11-27", "answer"): 2})
            session.commit()
    finally:
        event.remove(runtime.engine, "after_cursor_execute", other_process_inserts)
    assert raced == [True]
    assert counts(runtime) == {("2026-11-27", "answer"): 5}
