"""Work an answer skips: no database session unless a handler uses one (bot/router.py
LazySession), and a word's query unit built once per index (handlers/search/query.py)."""

from __future__ import annotations

from sqlalchemy import text

from bot.router import LazySession
from bot.store.models import Follower
from handlers.search.query import parse_query
from tests.wx import CITIZEN


class _Sessions:
    """A sessionmaker stand-in that counts the sessions it opens."""

    def __init__(self, sessions):
        self.sessions, self.opened = sessions, []

    def __call__(self):
        session = self.sessions()
        self.opened.append(session)
        return session


def test_lazy_session_opens_on_first_use_and_closes_only_then(runtime):
    counting = _Sessions(runtime.sessions)
    lazy = LazySession(counting)
    lazy.close()  # never used: nothing to close
    assert not lazy.opened and counting.opened == []
    assert lazy.execute(text("SELECT 1")).scalar() == 1
    assert lazy.opened and len(counting.opened) == 1
    assert lazy.in_transaction()
    lazy.close()
    assert not counting.opened[0].in_transaction()


def test_search_answer_opens_no_session_but_a_follow_still_commits(
        app, wechat, runtime, monkeypatch):
    # the content revision is re-read every check_seconds (0 in tests): not in this test
    monkeypatch.setattr(app.extensions["qzbot.webhook"].search, "check_seconds", 3600)
    wechat.text("公交卡丢了去哪补")  # builds the index (that reads the database)
    real, opened = LazySession.real, []

    def spy(self):
        if not self.opened:
            opened.append(self)
        return real(self)

    monkeypatch.setattr(LazySession, "real", spy)
    assert wechat.text("公交卡丢了去哪补").splitlines()[0] == "公交IC卡挂失补办"
    assert opened == []
    assert "欢迎关注" in wechat.event("subscribe", "qrscene_ferry_terminal")["Content"]
    assert len(opened) == 1
    with runtime.sessions() as s:
        assert s.get(Follower, CITIZEN).active


def test_unit_memo_is_kept_per_synonyms_mapping():
    plain = parse_query("公交", {}).units[0]
    with_syn = parse_query("公交", {"公交": ("巴士",)}).units[0]
    again = parse_query("公交", {}).units[0]
    assert ("巴士", 0.9) in with_syn.alts and ("巴士", 0.9) not in plain.alts
    assert again == plain
