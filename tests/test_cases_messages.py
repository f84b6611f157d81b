"""网民留言 through cases.actions: intake, accept / reject, transfer, sign / return, reply
with review, the citizen's rating, close and redo, conversion to an application keeping its
dates, and the citizen's 查询 (own openid or 查询码); on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date

import pytest

from bot.errors import CaseInvalid, InvalidTransition, NotFound, PermissionDenied
from cases import actions
from tests.test_cases_applications import at, cw  # noqa: F401 - the fixture

__all__ = ["cw"]


def message(cw, day="2026-03-02", category="投诉举报", openid="o-m"):
    return cw.citizen(actions.create_message, at(day), channel="chat", openid=openid,
                      category=category, content="东海大街路灯不亮")


def test_message_from_intake_to_close(cw):
    created = message(cw)
    number = created.case.number
    assert number.startswith("LY-2026-") and created.case.state == "submitted"
    assert len(created.notices) == 1 and created.query_code
    accepted = cw.do("reg", actions.accept_message, number, at("2026-03-02"))
    # 投诉举报: 15 working days from acceptance
    assert accepted.case.due_on == date(2026, 3, 23) and accepted.case.state == "accepted"
    with pytest.raises(PermissionDenied):
        cw.do("han", actions.sign_message, number, at("2026-03-03"))  # not transferred to A
    cw.do("reg", actions.transfer_message, number, at("2026-03-02"),
          department_id=cw.depts["B"])
    returned = cw.do("hanb", actions.return_message, number, at("2026-03-03"),
                     reason="属道管处职责")
    assert returned.case.state == "returned" and returned.case.handler is None
    cw.do("reg", actions.transfer_message, number, at("2026-03-03"),
          department_id=cw.depts["A"])
    with pytest.raises(PermissionDenied):
        cw.do("hanb", actions.sign_message, number, at("2026-03-03"))
    signed = cw.do("han", actions.sign_message, number, at("2026-03-03"))
    assert signed.case.handler == "han" and signed.case.state == "signed"
    with pytest.raises(InvalidTransition):
        cw.do("han", actions.submit_reply, number, at("2026-03-04"))
    cw.do("han", actions.draft_reply, number, at("2026-03-04"), text="已安排维修，三日内修复。")
    cw.do("han", actions.submit_reply, number, at("2026-03-04"))
    with pytest.raises(PermissionDenied):
        cw.do("han", actions.review_reply, number, at("2026-03-05"), approve=True)
    # not yet reviewed: the citizen does not see the reply
    assert cw.read(actions.find_for_citizen, number, "o-m").answer_text is None
    replied = cw.do("head", actions.review_reply, number, at("2026-03-05"), approve=True)
    assert replied.case.state == "replied" and len(replied.notices) == 2
    mine = cw.read(actions.find_for_citizen, number, "o-m")
    assert mine.answer_text.startswith("已安排维修") and mine.can_rate
    with pytest.raises(NotFound):
        cw.read(actions.rate_case, "o-other", number, "满意", at("2026-03-06"))
    with pytest.raises(CaseInvalid):
        cw.read(actions.rate_case, "o-m", number, "还行吧", at("2026-03-06"))
    with cw.rt.sessions() as s:
        rated = actions.rate_case(s, "o-m", number, "3", at("2026-03-06"))
        s.commit()
    assert rated.rating == "不满意" and rated.state == "visited"
    redo = cw.do("head", actions.redo_message, number, at("2026-03-06"), reason="群众不满意")
    assert redo.case.state == "redo" and redo.case.due_on > date(2026, 3, 6)
    cw.do("han", actions.draft_reply, number, at("2026-03-09"), text="已修复。")
    cw.do("han", actions.submit_reply, number, at("2026-03-09"))
    cw.do("head2", actions.review_reply, number, at("2026-03-09"), approve=True)
    closed = cw.do("reg", actions.close_message, number, at("2026-03-10"))
    assert closed.case.state == "closed" and closed.case.allowed == ()
    assert [e.action for e in cw.events(number)] == [
        "submitted", "accepted", "transferred", "returned", "transferred", "signed",
        "reply_drafted", "reply_submitted", "replied", "visit", "rated", "redo",
        "reply_drafted", "reply_submitted", "replied", "visit", "closed"]


def test_reject_needs_reason_and_notifies(cw):
    number = message(cw).case.number
    with pytest.raises(CaseInvalid):
        cw.do("reg", actions.reject_message, number, at("2026-03-02"), reason=" ")
    with pytest.raises(PermissionDenied):
        cw.do("han", actions.reject_message, number, at("2026-03-02"), reason="x")
    rejected = cw.do("reg", actions.reject_message, number, at("2026-03-02"), reason="内容无关")
    assert rejected.case.state == "rejected" and len(rejected.notices) == 1
    with pytest.raises(InvalidTransition):
        cw.do("reg", actions.accept_message, number, at("2026-03-02"))


def test_category_limits_from_config(cw):
    number = message(cw, category="咨询").case.number
    accepted = cw.do("reg", actions.accept_message, number, at("2026-03-02"))
    assert accepted.case.due_on == date(2026, 3, 9)  # 5 working days
    with pytest.raises(CaseInvalid):
        message(cw, category="闲聊")


def test_message_extension_by_another_head(cw):
    number = message(cw, category="咨询").case.number
    cw.do("reg", actions.accept_message, number, at("2026-03-02"))
    cw.do("reg", actions.transfer_message, number, at("2026-03-02"), department_id=cw.depts["A"])
    cw.do("han", actions.sign_message, number, at("2026-03-02"))
    cw.do("han", actions.request_extension, number, at("2026-03-03"), reason="需现场核实")
    extended = cw.do("head", actions.decide_extension, number, at("2026-03-03"), approve=True)
    assert extended.case.due_on == date(2026, 3, 16)  # +5 working days


def test_citizen_query_needs_own_openid_or_code(cw):
    created = message(cw)
    number = created.case.number
    assert cw.read(actions.find_for_citizen, number, "o-m").number == number
    assert cw.read(actions.find_for_citizen, number, "o-stranger") is None
    assert cw.read(actions.find_for_citizen, number, "o-stranger", "ZZZZZZ") is None
    by_code = cw.read(actions.find_for_citizen, number.lower(), None, created.query_code.lower())
    assert by_code.number == number and not by_code.can_rate
    assert cw.read(actions.find_for_citizen, "LY-2026-999999", "o-m") is None
    assert cw.read(actions.find_for_citizen, "nonsense", "o-m") is None
    assert [c.number for c in cw.read(actions.cases_of_citizen, "o-m")] == [number]


def test_conversion_keeps_dates(cw):
    created = message(cw, day="2026-01-29", category="咨询")
    number = created.case.number
    with pytest.raises(PermissionDenied):
        cw.do("han", actions.convert_message_to_application, number, at("2026-02-03"))
    converted = cw.do("reg", actions.convert_message_to_application, number, at("2026-02-03"))
    app = converted.case
    assert app.number.startswith("YSQ-") and app.converted_from == number
    assert app.received_on == date(2026, 1, 29) and app.due_on == date(2026, 3, 4)
    assert app.submitted_at == created.case.submitted_at and app.state == "reviewing"
    assert cw.case(number).state == "closed"
    assert cw.events(number)[-1].detail["application"] == app.number
    assert cw.read(actions.find_for_citizen, app.number, "o-m").kind == "application"
    with pytest.raises(InvalidTransition):
        cw.do("reg", actions.convert_message_to_application, number, at("2026-02-03"))
