"""Hostile review of casework (issue 10, review R2): the attacks a citizen, a handler or a
registrar who reads our code would try, each asserting the refusal. Both databases.

Holes found and fixed here (each test failed before its fix):
- uploaded files' names (citizens name them "张三_<id number>.png") were copied into the audit
  log, which content reviewers without any casework role read: now only a count is audited;
- a staff registration accepted any past receipt date (0001-01-02, or last year by a typo),
  giving a nonsense deadline and moving the case between report years: now refused when
  older than cases.actions.RECEIPT_MAX_AGE_DAYS.
The rest pin down what was checked and found sound.
"""

# the fixtures `cw` and `env` are imported from the casework tests and injected by pytest
# ruff: noqa: F811

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from bot.clock import SHANGHAI
from bot.errors import CaseInvalid, InvalidTransition, NotFound, PermissionDenied
from bot.store.db import transaction
from bot.store.models import AuditEntry, CaseEvent, Staff
from cases import actions, jobs
from push import actions as push_actions
from tests.consolekit import login, make_staff
from tests.test_cases_applications import PNG, at, cw, online  # noqa: F401 - the fixture
from tests.test_console_cases import EVIL, env, text_of  # noqa: F401 - the fixture

ID_FILE = "张三_350502199001011234.png"


# --- personal data -----------------------------------------------------------------------------


def test_uploaded_file_names_stay_out_of_the_audit_log(cw):
    number = online(cw, files=(actions.Upload(ID_FILE, "image/png", PNG),)).case.number
    with transaction(cw.rt.sessions) as s:
        reg = s.scalar(select(Staff).where(Staff.name == "reg"))
        actions.register_application(
            s, cw.settings, reg, at("2026-01-29"), channel="letter",
            received_on=date(2026, 1, 29), applicant={
                "name": "李四", "id_type": "居民身份证", "id_number": "350502199001015678",
                "phone": "13900001111"}, applicant_type="自然人", subject="x",
            document_no=None, delivery_form="电子", delivery_way="微信",
            files=(actions.Upload(ID_FILE, "image/png", PNG),))
    with cw.rt.sessions() as s:
        entries = list(s.scalars(select(AuditEntry).where(AuditEntry.object_type == "case")))
        timeline = list(s.scalars(select(CaseEvent)))
    assert {e.action for e in entries} >= {"case.submitted", "case.registered"}
    assert all("350502199001011234" not in str(e.detail) for e in entries)
    assert any(e.detail.get("files") == 1 for e in entries)  # a count is audited
    # the case's own timeline (casework roles only) still names the file
    assert any(ID_FILE in str(e.detail) for e in timeline)
    assert number


def test_audit_page_of_a_content_reviewer_shows_no_applicant_data(env):
    make_staff(env.rt, "rev", "reviewer")  # a content reviewer: no casework role
    number = env.application()
    with env.rt.sessions() as s:
        rev = s.scalar(select(Staff).where(Staff.name == "rev"))
        s.expunge(rev)
    page = text_of(login(env.app.test_client(), rev).get("/audit/"))
    assert "case.registered" in page or number in page
    for secret in ("350502199001011234", "13812345678", "张三丰"):
        assert secret not in page


# --- deadlines -----------------------------------------------------------------------------------


@pytest.mark.parametrize("received", [date(1, 1, 2), date(1900, 1, 1), date(2025, 1, 29)])
def test_registration_refuses_a_receipt_date_far_in_the_past(cw, received):
    with pytest.raises(CaseInvalid) as exc:
        cw.register("2026-01-29", received_on=received)
    assert any(p.startswith("received_on") for p in exc.value.problems)


def test_registration_still_takes_a_recent_past_or_todays_receipt(cw):
    recent = date(2026, 1, 29) - timedelta(days=actions.RECEIPT_MAX_AGE_DAYS)
    assert cw.case(cw.register("2026-01-29", received_on=recent)).received_on == recent
    assert cw.case(cw.register("2026-01-29")).received_on == date(2026, 1, 29)
    with pytest.raises(CaseInvalid):
        cw.register("2026-01-29", received_on=date(2026, 1, 30))  # the future


def test_api_registration_refuses_a_year_typo(env):
    with env.rt.sessions() as s:
        reg = s.scalar(select(Staff).where(Staff.name == "reg"))
        secret = push_actions.create_api_token(s, env.rt.settings, reg, env.rt.now(), "t",
                                               ["read", "write"]).secret
        s.commit()
    today = env.rt.now().astimezone(SHANGHAI).date()
    body = {"channel": "letter", "received_on": today.replace(year=today.year - 1).isoformat(),
            "applicant": {"name": "王五", "id_type": "居民身份证",
                          "id_number": "350502199001019999", "phone": "13700000000"},
            "applicant_type": "自然人", "subject": "x", "delivery_form": "电子",
            "delivery_way": "微信"}
    resp = env.app.test_client().post("/api/v1/cases/applications", json=body,
                                      headers={"Authorization": f"Bearer {secret}"})
    assert resp.status_code == 422


# --- roles, departments, four eyes ----------------------------------------------------------


def test_handler_of_another_department_can_neither_read_nor_act(cw):
    number = cw.to_handling()
    with pytest.raises(PermissionDenied):
        cw.do("hanb", actions.draft_answer, number, at("2026-01-30"), answer_type="予以公开")
    with pytest.raises(PermissionDenied), cw.rt.sessions() as s:
        actions.case_detail(s, s.scalar(select(Staff).where(Staff.name == "hanb")), number)


def test_one_person_cannot_draft_and_review_nor_approve_own_extension(cw):
    with transaction(cw.rt.sessions) as s:  # an office head who is also a handler of A
        admin = s.scalar(select(Staff).where(Staff.name == "admin"))
        push_actions.add_staff(s, admin, "both", "editor", at("2026-01-05"))
        s.flush()
        actions.set_case_roles(s, admin, "both", ("handler", "office_head"), cw.depts["A"],
                               at("2026-01-05"))
    number = cw.register("2026-01-29")
    cw.do("reg", actions.assign, number, at("2026-01-29"), department_id=cw.depts["A"],
          handler="both")
    cw.do("both", actions.request_extension, number, at("2026-01-30"), reason="量大")
    with pytest.raises(PermissionDenied):
        cw.do("both", actions.decide_extension, number, at("2026-01-30"), approve=True)
    cw.do("both", actions.draft_answer, number, at("2026-01-30"), answer_type="予以公开")
    cw.do("both", actions.submit_answer, number, at("2026-01-30"))
    with pytest.raises(PermissionDenied):
        cw.do("both", actions.review_answer, number, at("2026-01-30"), approve=True)
    assert cw.case(number).state == "answer_review"


def test_steps_outside_their_state_are_refused(cw):
    number = cw.register("2026-01-29")
    for fn, kwargs in ((actions.review_answer, {"approve": True}),
                       (actions.archive, {}), (actions.record_delivery, {"how": "微信"})):
        with pytest.raises((InvalidTransition, PermissionDenied)):
            cw.do("head" if fn is actions.review_answer else "reg", fn, number,
                  at("2026-01-30"), **kwargs)
    assert cw.case(number).state == "reviewing"


def test_api_step_takes_no_unknown_or_foreign_fields(env):
    number = env.message()
    with env.rt.sessions() as s:
        reg = s.scalar(select(Staff).where(Staff.name == "reg"))
        secret = push_actions.create_api_token(s, env.rt.settings, reg, env.rt.now(), "t",
                                               ["read", "write"]).secret
        s.commit()
    client, auth = env.app.test_client(), {"Authorization": f"Bearer {secret}"}
    for body in ({"state": "closed"}, {"handler": "reg"}, {"answer_reviewer": "reg"}):
        resp = client.post(f"/api/v1/cases/{number}/accept_message", json=body, headers=auth)
        assert resp.status_code == 422, body
    resp = client.post(f"/api/v1/cases/{number}/rate_case", json={}, headers=auth)
    assert resp.status_code == 404  # a citizen's step is not a staff step
    assert env.state(number) == "submitted"


# --- citizens ------------------------------------------------------------------------------------


def test_citizen_cannot_rate_or_read_anothers_case(cw):
    number = cw.citizen(actions.create_message, at("2026-01-29"), channel="chat",
                        openid="o-victim", category="咨询",
                        content="我的手机号13800001111").case.number
    with pytest.raises(NotFound), transaction(cw.rt.sessions) as s:
        actions.rate_case(s, "o-attacker", number, "不满意", at("2026-01-30"))
    assert cw.read(actions.find_for_citizen, number, "o-attacker", None) is None
    assert cw.read(actions.find_for_citizen, number, "o-attacker", "ZZZZZZ") is None
    assert cw.read(actions.find_for_citizen, number, "", None) is None
    with pytest.raises(NotFound), transaction(cw.rt.sessions) as s:
        actions.submit_correction(s, cw.settings, "o-attacker", number, at("2026-01-30"),
                                  text="x")


# --- the alert job ---------------------------------------------------------------------------


def test_alert_job_twice_records_each_alert_once(cw):
    number = cw.to_handling("2026-01-29")
    due = cw.case(number).due_on
    with transaction(cw.rt.sessions) as s:
        first = jobs.run_alerts(s, cw.settings, at(due.isoformat()))
    with transaction(cw.rt.sessions) as s:
        second = jobs.run_alerts(s, cw.settings, at(due.isoformat(), 16))
    assert first.total == 1 and second.total == 0
    alerts = [e for e in cw.events(number) if e.action == "alert"]
    assert len(alerts) == 1 and not alerts[0].detail.get("notify")  # staff only, no push


# --- XSS ---------------------------------------------------------------------------------------


def test_citizen_text_is_escaped_on_the_staff_pages(env):
    number = env.message(content=EVIL)
    page = text_of(env.client("reg").get(f"/cases/{number}"))
    assert "<script>alert(1)" not in page and "&lt;script&gt;" in page
    queue = text_of(env.client("reg").get("/cases/"))
    assert "<img src=x" not in queue


def test_a_file_name_with_control_characters_is_stored_printable(cw):
    """A newline in an uploaded file's name broke its download (Content-Disposition) with a
    500: only printable characters are kept for display."""
    from bot.store.models import CaseFile

    online(cw, files=(actions.Upload("id\r\nX-Evil: 1.png", "image/png", PNG),))
    with cw.rt.sessions() as s:
        stored = s.scalars(select(CaseFile)).one()
    assert stored.filename == "idX-Evil: 1.png"
    assert all(c.isprintable() for c in stored.filename)


def test_one_citizen_cannot_flood_the_queues(wechat, runtime):
    """Each 留言 takes a tracking number and a place in the staff queues: at most
    [cases] max_new_per_day per citizen per day (chat and H5 together)."""
    from bot.store.models import Case
    from handlers.cases import DAILY_LIMIT

    limit = runtime.settings.cases.max_new_per_day
    for i in range(limit):
        assert "您的留言已提交" in wechat.text(f"留言 建议 第{i}条")
    assert wechat.text("留言 建议 再来一条") == DAILY_LIMIT
    other = "oAnotherCitizen0000000000x"
    assert "您的留言已提交" in wechat.text("留言 建议 另一位市民", openid=other)
    with runtime.sessions() as s:
        assert len(s.scalars(select(Case)).all()) == limit + 1
