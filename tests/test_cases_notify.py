"""Progress pushes to the citizen through push's channels and the simulator (issue 10 item 4):
the customer-service window first, else a one-time consent (consumed), else skipped with the
reason; each notice recorded once on the case's timeline, never sent twice."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.store.models import Case, CaseEvent, Consent, Staff
from cases import actions, notify
from tests.consolekit import make_staff
from tests.pushkit import add_follower, grant, push_runtime

TPL = "TPL_GOV_ONCE"
TEMPLATES = {"政务公开": {"template_id": TPL, "channel": "subscribe", "long_term": False,
                          "fields": {"thing1": "title", "date2": "date"}}}
CITIZEN = "oCaseCitizen000000000000001"


@pytest.fixture
def rt(db_url, redis_client, clock, sim):
    runtime = push_runtime(db_url, redis_client, clock, sim, templates=TEMPLATES)
    yield runtime
    runtime.clients.close()
    runtime.close()


def _registrar(rt) -> None:
    make_staff(rt, "reg", "editor")
    with rt.sessions() as s:
        s.scalar(select(Staff).where(Staff.name == "reg")).case_roles = ["registrar"]
        s.commit()


def _accepted_message(rt, openid: str | None = CITIZEN, *, window: bool = True,
                      follower: bool = True) -> tuple[str, list[int]]:
    """A 留言 filed by chat and accepted by a registrar: (number, notice ids to send)."""
    now = rt.now()
    _registrar(rt)
    with rt.sessions() as s:
        if follower and openid:
            add_follower(s, openid, last_message_at=now - timedelta(hours=1 if window else 72))
        created = actions.create_message(s, rt.settings, now, channel="chat", openid=openid,
                                         category="咨询", content="年票在哪里办理")
        notify.mark_shown(s, created.notices, "chat_reply", now)
        s.commit()
    with rt.sessions() as s:
        actor = s.scalar(select(Staff).where(Staff.name == "reg"))
        accepted = actions.accept_message(s, rt.settings, actor, created.case.number, now)
        s.commit()
    assert accepted.notices
    return created.case.number, list(accepted.notices)


def _records(rt, number: str) -> list[dict]:
    with rt.sessions() as s:
        case = s.scalar(select(Case).where(Case.number == number))
        return [e.detail for e in s.scalars(select(CaseEvent).where(
            CaseEvent.case_id == case.id, CaseEvent.action == "notified")
            .order_by(CaseEvent.id))]


def test_inside_the_window_a_text_goes_out_once(rt, sim):
    number, notices = _accepted_message(rt)
    outcome = notify.deliver_notice(rt, notices[0])
    assert (outcome.status, outcome.channel) == ("sent", "custom")
    sent = sim.messages()
    assert len(sent) == 1 and sent[0]["touser"] == CITIZEN
    assert number in str(sent[0]) and "已受理" in str(sent[0])
    records = _records(rt, number)
    assert [r["status"] for r in records] == ["shown", "sent"]  # receipt shown, accept sent
    assert (records[1]["notice"], records[1]["channel"], records[1]["errcode"]) == (
        "accepted", "custom", None)
    again = notify.deliver_notice(rt, notices[0])  # a re-run (retried job) sends nothing
    assert again.status == "sent" and len(sim.messages()) == 1
    assert len(_records(rt, number)) == 2


def test_outside_the_window_a_one_time_consent_is_used(rt, sim):
    with rt.sessions() as s:
        grant(s, CITIZEN, rt.now(), long_term=False, scene="7", source="redirect",
              template_id=TPL)
        s.commit()
    number, notices = _accepted_message(rt, window=False)
    outcome = notify.deliver_notice(rt, notices[0])
    assert (outcome.status, outcome.channel) == ("sent", "subscribe_once")
    sent = sim.messages()
    assert len(sent) == 1 and sent[0]["touser"] == CITIZEN
    with rt.sessions() as s:
        consent = s.scalar(select(Consent))
        assert (consent.status, consent.used_by) == ("used", -notices[0])
    # the grant is spent: the next notice finds no channel
    with rt.sessions() as s:
        case = s.scalar(select(Case).where(Case.number == number))
        s.add(CaseEvent(case_id=case.id, at=case.updated_at, actor="reg", action="note",
                        detail={"notify": "extended", "days": 5, "due_on": "2026-12-11"}))
        s.commit()
        later = s.scalar(select(CaseEvent.id).order_by(CaseEvent.id.desc()))
    skipped = notify.deliver_notice(rt, later)
    assert (skipped.status, skipped.reason) == ("skipped", "no_channel")
    assert len(sim.messages()) == 1


def test_without_window_or_consent_the_notice_is_skipped(rt, sim):
    number, notices = _accepted_message(rt, window=False)
    outcome = notify.deliver_notice(rt, notices[0])
    assert (outcome.status, outcome.reason) == ("skipped", "no_channel")
    assert sim.messages() == []
    assert _records(rt, number)[-1]["status"] == "skipped"


def test_no_openid_and_unfollowed(rt, sim):
    _, notices = _accepted_message(rt, openid=None)
    assert notify.deliver_notice(rt, notices[0]).reason == "no_openid"
    with rt.sessions() as s:
        created = actions.create_message(s, rt.settings, rt.now(), channel="chat",
                                         openid="oNeverFollowed00000000000001",
                                         category="建议", content="增加班次")
        s.commit()
    assert notify.deliver_notice(rt, created.notices[0]).reason == "unfollowed"
    assert sim.messages() == []


def test_a_send_left_sending_by_a_dead_worker_is_not_resent(rt, sim):
    number, notices = _accepted_message(rt)
    with rt.sessions() as s:
        case = s.scalar(select(Case).where(Case.number == number))
        s.add(CaseEvent(case_id=case.id, at=case.updated_at, actor="system", action="notified",
                        detail={"notice_event": notices[0], "notice": "accepted",
                                "status": "sending", "channel": "custom", "attempts": 1}))
        s.commit()
    outcome = notify.deliver_notice(rt, notices[0])
    assert (outcome.status, outcome.reason) == ("unknown", "worker_lost")
    assert sim.messages() == []


def test_closed_window_falls_back_to_the_consent(rt, sim):
    with rt.sessions() as s:
        grant(s, CITIZEN, rt.now(), long_term=False, scene="3", source="redirect",
              template_id=TPL)
        s.commit()
    sim.faults({"kind": "errcode", "api": "message/custom/send", "errcode": 45015,
                "count": 1})
    number, notices = _accepted_message(rt)
    outcome = notify.deliver_notice(rt, notices[0])
    assert (outcome.status, outcome.channel) == ("sent", "subscribe_once")
    assert [m["touser"] for m in sim.messages()] == [CITIZEN]
    assert _records(rt, number)[-1]["reason"] is None


def test_notice_texts_say_what_happened(rt):
    number, notices = _accepted_message(rt)
    with rt.sessions() as s:
        event = s.get(CaseEvent, notices[0])
        case = s.get(Case, event.case_id)
        text = notify.notice_text(case, event)
        payload = notify.notice_payload(rt.settings, case, event, rt.now())
    assert number in text and "已受理" in text and "查询 " in text
    assert len(payload["template"]["data"]["thing1"]["value"]) <= 20
    assert payload["template"]["data"]["date2"]["value"] == "2026-11-27"
    assert len(payload["once"]["title"]) <= 15 and len(payload["once"]["content"]) <= 200


def test_enqueued_after_commit_and_sent_by_a_worker(rt, sim):
    from bot.jobs import use_runtime
    from tests.pushkit import drain

    number, notices = _accepted_message(rt)
    assert notify.enqueue_notices(rt, notices) == 1
    use_runtime(rt)
    try:
        drain(rt)
    finally:
        use_runtime(None)
    assert [m["touser"] for m in sim.messages()] == [CITIZEN]
    assert _records(rt, number)[-1]["status"] == "sent"
