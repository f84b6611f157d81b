"""Casework in the chat (issue 10): 留言, 查询 (own / another's with and without 查询码),
申请公开 links, the 回访 rating, and what is not ours falls through to the search."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

from sqlalchemy import select

from bot.store.models import Case, CaseEvent
from cases import links
from tests.wx import CITIZEN

SETTINGS_OVERRIDES = {"push": {"public_base_url": "https://wx.example.gov.cn"},
                      "bot": {"menu": {"MENU_APPLY": "case:apply", "MENU_MINE": "case:query",
                                       "MENU_FAQ": "list:faq"}}}
OTHER = "oOtherCitizen00000000000000x"


def _number_and_code(reply: str) -> tuple[str, str]:
    number = re.search(r"编号：(LY-\d{4}-\d{6})", reply).group(1)
    code = re.search(r"查询码：([0-9A-Z]{6})", reply).group(1)
    return number, code


def test_message_creates_a_case_with_number_and_code(wechat, runtime):
    reply = wechat.text("留言 投诉 12路公交车到站不停")
    number, code = _number_and_code(reply)
    assert "投诉举报" in reply
    with runtime.sessions() as s:
        case = s.scalar(select(Case).where(Case.number == number))
        assert (case.kind, case.state, case.category, case.channel, case.openid) == (
            "message", "submitted", "投诉举报", "chat", CITIZEN)
        assert case.subject == "12路公交车到站不停"
        assert code not in case.query_code_hash  # stored hashed only
        shown = s.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id,
                                                  CaseEvent.action == "notified")).all()
        assert [e.detail["status"] for e in shown] == ["shown"]  # the reply was the receipt


def test_message_category_defaults_to_consultation(wechat, runtime):
    number, _ = _number_and_code(wechat.text("留言：投诉电话是多少"))
    with runtime.sessions() as s:
        case = s.scalar(select(Case).where(Case.number == number))
        assert case.category == "咨询"  # "投诉电话是多少" is content, not a category word
        assert case.subject == "投诉电话是多少"


def test_message_alone_explains_with_a_form_link(wechat, runtime):
    reply = wechat.text("留言")
    assert "留言 + 您的内容" in reply
    url = re.search(r'href="([^"]+)"', reply).group(1)
    query = parse_qs(urlparse(url).query)
    assert urlparse(url).path == "/h5/message" and query["openid"] == [CITIZEN]
    links.check_link_token(runtime.settings, query["t"][0], "message", CITIZEN, runtime.now())
    with runtime.sessions() as s:
        assert s.scalar(select(Case)) is None


def test_query_own_case_others_need_the_code(wechat):
    number, code = _number_and_code(wechat.text("留言 建议 增开夜班公交"))
    own = wechat.text(f"查询 {number}")
    assert f"编号：{number}" in own and "当前状态：已提交" in own
    refused = wechat.text(f"查询 {number}", openid=OTHER)
    assert "没有找到" in refused and "已提交" not in refused
    wrong = wechat.text(f"查询 {number} ABCDEF", openid=OTHER)
    assert "没有找到" in wrong
    with_code = wechat.text(f"查询 {number} {code.lower()}", openid=OTHER)
    assert f"编号：{number}" in with_code and "已提交" in with_code
    # typed loosely: lower case, short sequence
    loose = wechat.text(f"查询 {number.lower().replace('-00000', '-')}")
    assert f"编号：{number}" in loose


def test_query_code_guessing_is_limited(wechat):
    """A 查询码 has ~30 bits and numbers are sequential: wrong codes are counted per citizen
    (and per number), after which even the right code is refused; one's own case still works."""
    from handlers.cases import GUESSES_PER_OPENID, TOO_MANY

    number, code = _number_and_code(wechat.text("留言 建议 增开夜班公交"))
    for i in range(GUESSES_PER_OPENID):
        assert "没有找到" in wechat.text(f"查询 {number} WRONG{i % 10}", openid=OTHER)
    assert wechat.text(f"查询 {number} {code}", openid=OTHER) == TOO_MANY
    assert f"编号：{number}" in wechat.text(f"查询 {number}")  # the owner is not limited
    third = "oThirdCitizen00000000000000x"
    assert f"编号：{number}" in wechat.text(f"查询 {number} {code}", openid=third)


def test_unknown_number_looks_like_a_refused_one(wechat):
    assert "没有找到" in wechat.text("查询 LY-2026-999999")


def test_query_of_other_words_goes_to_the_search(wechat):
    reply = wechat.text("查询 公交线路")
    assert "没有找到该编号" not in reply and reply  # the search (or its fallback) answered


def test_mine_lists_own_cases(wechat):
    assert "还没有" in wechat.text("我的办件")
    number, _ = _number_and_code(wechat.text("留言 求助 老人乘车卡怎么办"))
    assert number in wechat.text("查询")
    assert number not in wechat.text("查询", openid=OTHER)


def test_apply_answers_with_a_signed_link(wechat, runtime):
    reply = wechat.text("申请公开")
    url = re.search(r'href="([^"]+)"', reply).group(1)
    parsed = urlparse(url)
    assert url.startswith("https://wx.example.gov.cn/h5/apply?")
    token = parse_qs(parsed.query)["t"][0]
    links.check_link_token(runtime.settings, token, "apply", CITIZEN, runtime.now())
    for form, openid in (("message", CITIZEN), ("apply", OTHER)):  # bound to both
        try:
            links.check_link_token(runtime.settings, token, form, openid, runtime.now())
        except links.LinkInvalid as exc:
            assert exc.reason == "mismatch"
        else:
            raise AssertionError("a link opened another form or another citizen's form")


def test_menu_actions(wechat):
    assert "/h5/apply?" in wechat.event("click", "MENU_APPLY")["Content"]
    assert "还没有" in wechat.event("click", "MENU_MINE")["Content"]
    assert "/h5/" not in wechat.event("click", "MENU_FAQ")["Content"]  # not ours: the menu


def test_rating_a_replied_message(wechat, runtime):
    number, _ = _number_and_code(wechat.text("留言 咨询 年票在哪里办"))
    # not awaiting 回访: the word is small talk, not a rating
    assert "感谢您的评价" not in wechat.text("满意")
    with runtime.sessions() as s:  # the staff workflow is tested with the domain
        case = s.scalar(select(Case).where(Case.number == number))
        case.state, case.answer_text, case.answer_reviewer = "replied", "请到服务大厅办理", "boss"
        s.commit()
    assert "请回复“满意”" in wechat.text(f"查询 {number}")
    assert "感谢您的评价" not in wechat.text("满意", openid=OTHER)  # not his case
    reply = wechat.text("基本满意")
    assert "感谢您的评价（基本满意）" in reply and number in reply
    with runtime.sessions() as s:
        case = s.scalar(select(Case).where(Case.number == number))
        assert (case.state, case.rating) == ("visited", "基本满意")
    assert "感谢您的评价" not in wechat.text("不满意")  # rated once


def test_overlong_message_is_refused_with_the_limit(wechat, runtime):
    reply = wechat.text("留言 " + "很" * 2100)
    assert "不超过2000字" in reply
    with runtime.sessions() as s:
        assert s.scalar(select(Case)) is None
