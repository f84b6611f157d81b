"""依申请公开 applications through cases.actions: intake, every transition and its refusals,
the 补正 / consultation / extension clock segments, the answer's four-eyes review, delivery
and archive; on SQLite and PostgreSQL. Also the helpers the other casework tests use."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy import select

from bot.clock import SHANGHAI
from bot.errors import CaseInvalid, InvalidTransition, NotFound, PermissionDenied
from bot.store.db import transaction
from bot.store.models import AuditEntry, Case, CaseClock, CaseEvent, Staff
from cases import actions
from push import actions as push_actions

PNG = b"\x89PNG\r\n\x1a\n" + b"0" * 64
APPLICANT = {"name": "张三", "id_type": "居民身份证", "id_number": "350502199001011234",
             "phone": "13812345678", "address": "泉州市丰泽区东海街道1号"}
STAFF = {  # name -> (case roles, department)
    "reg": (("registrar",), None), "head": (("office_head",), None),
    "head2": (("office_head",), None), "han": (("handler",), "A"),
    "han2": (("handler",), "A"), "hanb": (("handler",), "B"), "plain": ((), None),
}


def at(day: str, hour: int = 10) -> datetime:
    """A Shanghai time on an ISO day."""
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=SHANGHAI)


@pytest.fixture
def cw(runtime, tmp_path):
    """Casework set-up: departments A and B, the STAFF accounts; uploads under tmp_path."""
    settings = runtime.settings.replace(cases={"upload_dir": str(tmp_path / "uploads")})
    now = at("2026-01-05")
    with transaction(runtime.sessions) as s:
        push_actions.add_staff(s, None, "admin", "admin", now)
        s.flush()
        admin = s.scalar(select(Staff).where(Staff.name == "admin"))
        depts = {"A": actions.add_department(s, admin, "市道管处", now).id,
                 "B": actions.add_department(s, admin, "市水运处", now).id}
        for name, (roles, dept) in STAFF.items():
            push_actions.add_staff(s, admin, name, "editor", now)
            s.flush()
            actions.set_case_roles(s, admin, name, roles, depts.get(dept), now)
    return Casework(runtime, settings, depts)


class Casework:
    """Runs one use-case per transaction as a named staff member."""

    def __init__(self, rt, settings, depts):
        self.rt, self.settings, self.depts = rt, settings, depts

    def do(self, who: str, fn, *args, **kwargs):
        with transaction(self.rt.sessions) as s:
            actor = s.scalar(select(Staff).where(Staff.name == who))
            return fn(s, self.settings, actor, *args, **kwargs)

    def citizen(self, fn, *args, **kwargs):
        with transaction(self.rt.sessions) as s:
            return fn(s, self.settings, *args, **kwargs)

    def read(self, fn, *args, **kwargs):
        with self.rt.sessions() as s:
            return fn(s, *args, **kwargs)

    def case(self, number: str) -> Case:
        with self.rt.sessions() as s:
            case = s.scalar(select(Case).where(Case.number == number))
            s.expunge(case)
            return case

    def clocks(self, number: str) -> list[CaseClock]:
        with self.rt.sessions() as s:
            case_id = s.scalar(select(Case.id).where(Case.number == number))
            rows = list(s.scalars(select(CaseClock).where(CaseClock.case_id == case_id)
                                  .order_by(CaseClock.id)))
            s.expunge_all()
            return rows

    def events(self, number: str) -> list[CaseEvent]:
        with self.rt.sessions() as s:
            case_id = s.scalar(select(Case.id).where(Case.number == number))
            rows = list(s.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id)
                                  .order_by(CaseEvent.id)))
            s.expunge_all()
            return rows

    def register(self, received: str = "2026-01-29", **overrides) -> str:
        """A letter application received on `received`, registered that day."""
        fields = dict(channel="letter", received_on=date.fromisoformat(received),
                      applicant=APPLICANT, applicant_type="自然人",
                      subject="2025年泉州市公路养护资金使用情况", document_no=None,
                      delivery_form="电子", delivery_way="微信", openid="o-citizen")
        fields.update(overrides)
        return self.do("reg", actions.register_application, at(received), **fields).case.number

    def to_handling(self, received: str = "2026-01-29", day: str | None = None) -> str:
        number = self.register(received)
        self.do("reg", actions.assign, number, at(day or received), department_id=self.depts["A"])
        return number


def online(cw, day: str = "2026-01-29", openid: str = "o-citizen", **overrides):
    fields = dict(channel="h5", openid=openid, applicant=APPLICANT, applicant_type="自然人",
                  subject="某道路改造项目的环评批复", document_no=None, delivery_form="电子",
                  delivery_way="微信",
                  files=(actions.Upload("id.png", "image/png", PNG, "identity_proof"),))
    fields.update(overrides)
    return cw.citizen(actions.create_application, at(day), **fields)


# --- intake ---------------------------------------------------------------------------------


def test_online_intake_waits_for_receipt_then_20_working_days(cw):
    result = online(cw)
    number = result.case.number
    assert number.startswith("YSQ-2026-") and len(result.query_code) == 6
    assert result.case.state == "registered" and result.case.received_on is None
    assert cw.clocks(number) == []
    confirmed = cw.do("reg", actions.confirm_receipt, number, at("2026-01-29", 16))
    assert confirmed.case.state == "reviewing"
    assert confirmed.case.received_on == date(2026, 1, 29)
    assert confirmed.case.due_on == date(2026, 3, 4)  # Spring Festival
    assert len(confirmed.notices) == 1
    event = cw.events(number)[-1]
    assert event.detail["notify"] == "received" and event.actor == "reg"
    assert cw.case(number).query_code_hash != result.query_code  # stored hashed


def test_numbers_are_sequential_and_query_codes_differ(cw):
    a, b = online(cw), online(cw)
    assert int(b.case.number[-6:]) == int(a.case.number[-6:]) + 1
    assert a.query_code != b.query_code or a.case.number != b.case.number


def test_intake_refuses_missing_fields_and_bad_uploads(cw):
    with pytest.raises(CaseInvalid) as err:
        online(cw, applicant={"name": "", "phone": "1"}, applicant_type="外星人",
               delivery_form="羊皮卷")
    text = "; ".join(err.value.problems)
    assert "applicant.name" in text and "applicant.id_number" in text
    assert "applicant_type" in text and "delivery_form" in text
    with pytest.raises(CaseInvalid, match="proof of identity"):
        online(cw, files=())
    with pytest.raises(CaseInvalid, match="not image/png"):
        online(cw, files=(actions.Upload("id.png", "image/png", b"GIF89a...", "identity_proof"),))
    with pytest.raises(CaseInvalid, match="JPEG, PNG or PDF"):
        online(cw, files=(actions.Upload("x.exe", "application/x-msdownload", b"MZ",
                                         "identity_proof"),))
    big = PNG + b"0" * (cw.settings.cases.max_upload_mb * 1024 * 1024)
    with pytest.raises(CaseInvalid, match="larger than"):
        online(cw, files=(actions.Upload("id.png", "image/png", big, "identity_proof"),))
    with pytest.raises(CaseInvalid, match="registered by staff"):
        online(cw, channel="letter")
    with cw.rt.sessions() as s:
        assert s.scalar(select(Case.id)) is None  # nothing half-created


def test_upload_is_stored_outside_under_a_random_name_and_read_back_audited(cw, tmp_path):
    number = online(cw, files=(actions.Upload("../../etc/id.png", "image/png", PNG,
                                              "identity_proof"),)).case.number
    with cw.rt.sessions() as s:
        view = actions.case_detail(s, s.scalar(select(Staff).where(Staff.name == "reg")), number)
    (file_id, purpose, filename), = view.files
    assert purpose == "identity_proof" and filename == "id.png"
    stored = list((tmp_path / "uploads").iterdir())
    assert len(stored) == 1 and stored[0].name != "id.png" and stored[0].read_bytes() == PNG
    name, ctype, data = cw.do("reg", actions.read_file, file_id, at("2026-01-30"))
    assert (name, ctype, data) == ("id.png", "image/png", PNG)
    with pytest.raises(PermissionDenied):
        cw.do("han", actions.read_file, file_id, at("2026-01-30"))
    with cw.rt.sessions() as s:
        assert s.scalar(select(AuditEntry).where(AuditEntry.action == "case.file_read"))


def test_staff_registration_needs_registrar_and_a_staff_channel(cw):
    with pytest.raises(PermissionDenied):
        cw.do("han", actions.register_application, at("2026-01-29"), channel="letter",
              received_on=date(2026, 1, 29), applicant=APPLICANT, applicant_type="自然人",
              subject="x", document_no=None, delivery_form="纸质", delivery_way="自取")
    with pytest.raises(CaseInvalid, match="channel"):
        cw.register(channel="h5")
    with pytest.raises(CaseInvalid, match="future"):
        cw.register(received="2026-01-29", received_on=date(2026, 2, 2))
    number = cw.register("2026-09-21")
    assert cw.case(number).due_on == date(2026, 10, 26)  # National Day
    assert cw.case(number).state == "reviewing"


# --- transitions and refusals ---------------------------------------------------------------


def test_full_application_from_intake_to_archive(cw):
    number = cw.register("2026-04-28")
    assert cw.case(number).due_on == date(2026, 5, 28)
    with pytest.raises(InvalidTransition):  # the right role, the wrong state
        cw.do("reg", actions.archive, number, at("2026-04-29"))
    with pytest.raises(PermissionDenied):  # not yet in his department
        cw.do("han", actions.draft_answer, number, at("2026-04-29"), answer_type="予以公开")
    cw.do("reg", actions.assign, number, at("2026-04-29"), department_id=cw.depts["A"])
    with pytest.raises(PermissionDenied):  # another department
        cw.do("hanb", actions.draft_answer, number, at("2026-04-30"), answer_type="予以公开")
    drafted = cw.do("han", actions.draft_answer, number, at("2026-04-30"),
                    answer_type="予以公开")
    assert drafted.case.handler == "han" and "张三" in drafted.case.answer_text
    assert "YSQ-2026-" in drafted.case.answer_text
    with pytest.raises(PermissionDenied):  # the case is han's now
        cw.do("han2", actions.submit_answer, number, at("2026-04-30"))
    cw.do("han", actions.submit_answer, number, at("2026-04-30"))
    with pytest.raises(PermissionDenied):  # a handler does not review
        cw.do("han", actions.review_answer, number, at("2026-05-06"), approve=True)
    with pytest.raises(CaseInvalid):
        cw.do("head", actions.review_answer, number, at("2026-05-06"), approve=False)
    back = cw.do("head", actions.review_answer, number, at("2026-05-06"), approve=False,
                 note="补充获取方式")
    assert back.case.state == "answer_drafted"
    cw.do("han", actions.submit_answer, number, at("2026-05-06"))
    approved = cw.do("head", actions.review_answer, number, at("2026-05-07"), approve=True)
    assert approved.case.state == "delivering" and approved.case.answer_reviewer == "head"
    with pytest.raises(InvalidTransition):
        cw.do("reg", actions.archive, number, at("2026-05-07"))
    with pytest.raises(CaseInvalid):
        cw.do("reg", actions.record_delivery, number, at("2026-05-07"), how="飞鸽")
    delivered = cw.do("reg", actions.record_delivery, number, at("2026-05-08"), how="微信")
    assert delivered.case.delivered_on == date(2026, 5, 8) and len(delivered.notices) == 1
    assert all(c.status == "done" for c in cw.clocks(number))
    archived = cw.do("reg", actions.archive, number, at("2026-05-08"))
    assert archived.case.state == "archived" and archived.case.allowed == ()
    actions_done = [e.action for e in cw.events(number)]
    assert actions_done == ["registered", "assigned", "answer_drafted", "answer_submitted",
                            "answer_returned", "answer_submitted", "answer_approved",
                            "delivered", "archived"]
    with cw.rt.sessions() as s:
        audited = s.scalars(select(AuditEntry.action).where(
            AuditEntry.object_type == "case", AuditEntry.object_id == number)).all()
    assert len(audited) == len(actions_done)


def test_reviewer_must_not_be_the_author(cw):
    number = cw.to_handling()
    with transaction(cw.rt.sessions) as s:  # a head who is also the department's handler
        s.scalar(select(Staff).where(Staff.name == "han")).case_roles = ["handler",
                                                                         "office_head"]
    cw.do("han", actions.draft_answer, number, at("2026-02-02"), answer_type="不予公开",
          reason="国家秘密")
    cw.do("han", actions.submit_answer, number, at("2026-02-02"))
    with pytest.raises(PermissionDenied, match="先审查后发布"):
        cw.do("han", actions.review_answer, number, at("2026-02-03"), approve=True)
    assert cw.do("head", actions.review_answer, number, at("2026-02-03"),
                 approve=True).case.state == "delivering"


def test_answer_type_and_reason_checked(cw):
    number = cw.to_handling()
    for kwargs in ({"answer_type": "随便"}, {"answer_type": "不予公开"},
                   {"answer_type": "不予公开", "reason": "不想"},
                   {"answer_type": "予以公开", "reason": "国家秘密"}):
        with pytest.raises(CaseInvalid):
            cw.do("han", actions.draft_answer, number, at("2026-02-02"), **kwargs)
    view = cw.do("han", actions.draft_answer, number, at("2026-02-02"), answer_type="无法提供",
                 reason="本机关不掌握").case
    assert "本机关不掌握相关政府信息" in view.answer_text  # the report's row wording


def test_forged_and_unknown_numbers(cw):
    with pytest.raises(NotFound):
        cw.do("reg", actions.confirm_receipt, "YSQ-2026-999999", at("2026-01-29"))
    message = cw.citizen(actions.create_message, at("2026-01-29"), channel="chat",
                         openid="o-1", category="咨询", content="问个事").case.number
    with pytest.raises(NotFound):  # a 留言 number on an application step
        cw.do("reg", actions.confirm_receipt, message, at("2026-01-29"))
    with cw.rt.sessions() as s, pytest.raises(PermissionDenied):
        actions.case_detail(s, s.scalar(select(Staff).where(Staff.name == "plain")), message)


def test_masking_for_handlers(cw):
    number = cw.to_handling()
    with cw.rt.sessions() as s:
        han = s.scalar(select(Staff).where(Staff.name == "han"))
        reg = s.scalar(select(Staff).where(Staff.name == "reg"))
        hanb = s.scalar(select(Staff).where(Staff.name == "hanb"))
        masked = actions.case_detail(s, han, number).applicant
        full = actions.case_detail(s, reg, number).applicant
        with pytest.raises(PermissionDenied):
            actions.case_detail(s, hanb, number)
        rows = actions.queue(s, hanb, today=date(2026, 2, 2))
    assert full["id_number"] == APPLICANT["id_number"]
    assert masked["id_number"] == "3505**********1234" and masked["name"] == "张*"
    assert masked["phone"] == "138****5678"
    assert rows == []


# --- clock segments ---------------------------------------------------------------------------


def test_correction_restarts_the_20_days(cw):
    number = cw.register("2026-04-28")
    with pytest.raises(CaseInvalid):
        cw.do("reg", actions.request_correction, number, at("2026-04-30"), what=" ")
    asked = cw.do("reg", actions.request_correction, number, at("2026-04-30"),
                  what="请写明所需信息的文号", limit_days=10)
    assert asked.case.state == "correction" and len(asked.notices) == 1
    answer, correction = cw.clocks(number)
    assert answer.status == "paused" and correction.kind == "correction"
    assert asked.case.due_on == correction.due_on
    # the citizen sends it online, the registrar confirms receipt
    cw.citizen(actions.submit_correction, "o-citizen", number, at("2026-05-11"),
               text="文号为泉交〔2025〕1号")
    with pytest.raises(NotFound):
        cw.citizen(actions.submit_correction, "o-other", number, at("2026-05-11"), text="x")
    back = cw.do("reg", actions.receive_correction, number, at("2026-05-12"))
    assert back.case.state == "reviewing"
    answer, correction = cw.clocks(number)
    assert correction.status == "done" and answer.status == "running"
    assert answer.started_on == date(2026, 5, 12) and answer.paused_days == 0
    with cw.rt.sessions() as s:
        from cases.calendar import load
        assert answer.due_on == load(s).add(date(2026, 5, 12), 20).on
    assert back.case.due_on == answer.due_on
    with pytest.raises(InvalidTransition, match="一次"):  # art. 30: once
        cw.do("reg", actions.request_correction, number, at("2026-05-12"), what="again")


def test_correction_notice_only_within_7_working_days(cw):
    number = cw.register("2026-04-28")
    # 7 working days after 04-28 (05-01..05-05 holiday, 05-09 make-up day): 05-11
    with pytest.raises(InvalidTransition, match="补正告知期限"):
        cw.do("reg", actions.request_correction, number, at("2026-05-12"), what="x")
    assert cw.do("reg", actions.request_correction, number, at("2026-05-11"),
                 what="x").case.state == "correction"


def test_consultation_pauses_the_answer_clock(cw):
    number = cw.to_handling("2026-04-28")
    before = cw.case(number).due_on
    started = cw.do("han", actions.start_consultation, number, at("2026-05-06"),
                    third_party="某建设公司")
    assert started.case.state == "consultation"
    answer, consultation = cw.clocks(number)
    assert answer.status == "paused" and consultation.working_days == 15
    ended = cw.do("han", actions.end_consultation, number, at("2026-05-13"),
                  outcome="不同意公开")
    answer, consultation = cw.clocks(number)
    assert ended.case.state == "handling" and consultation.status == "done"
    assert answer.paused_days == 6  # 05-07, 05-08, 05-09 (make-up day), 05-11, 05-12, 05-13
    with cw.rt.sessions() as s:
        from cases.calendar import load
        assert answer.due_on == load(s).add(date(2026, 4, 28), 26).on
    assert ended.case.due_on == answer.due_on > before


def test_extension_needs_an_office_head_who_is_not_the_handler(cw):
    number = cw.to_handling("2026-04-28")
    cw.do("han", actions.draft_answer, number, at("2026-05-06"), answer_type="予以公开")
    with pytest.raises(InvalidTransition, match="没有待批准"):
        cw.do("head", actions.decide_extension, number, at("2026-05-06"), approve=True)
    with pytest.raises(PermissionDenied):
        cw.do("reg", actions.request_extension, number, at("2026-05-06"), reason="x")
    cw.do("han", actions.request_extension, number, at("2026-05-06"), reason="涉及多个科室")
    with pytest.raises(InvalidTransition, match="待批准"):
        cw.do("han", actions.request_extension, number, at("2026-05-06"), reason="again")
    with pytest.raises(PermissionDenied):  # a handler cannot approve
        cw.do("han2", actions.decide_extension, number, at("2026-05-07"), approve=True)
    with transaction(cw.rt.sessions) as s:  # the handler made office head: still refused
        s.scalar(select(Staff).where(Staff.name == "han")).case_roles = ["handler",
                                                                         "office_head"]
    with pytest.raises(PermissionDenied, match="承办人以外"):
        cw.do("han", actions.decide_extension, number, at("2026-05-07"), approve=True)
    before = cw.case(number).due_on
    approved = cw.do("head", actions.decide_extension, number, at("2026-05-07"), approve=True)
    answer = cw.clocks(number)[0]
    assert answer.working_days == 40 and approved.case.due_on == answer.due_on > before
    assert len(approved.notices) == 1
    assert cw.events(number)[-1].detail["notify"] == "extended"
    with pytest.raises(InvalidTransition, match="再次"):
        cw.do("han", actions.request_extension, number, at("2026-05-08"), reason="more")


def test_refused_extension_changes_nothing(cw):
    number = cw.to_handling()
    cw.do("han", actions.request_extension, number, at("2026-02-02"), reason="r")
    before = cw.case(number).due_on
    refused = cw.do("head", actions.decide_extension, number, at("2026-02-03"), approve=False)
    assert refused.case.due_on == before and refused.notices == ()


def test_close_application_as_other(cw):
    number = cw.to_handling()
    with pytest.raises(PermissionDenied):
        cw.do("reg", actions.close_application, number, at("2026-02-02"), reason="其他",
              note="撤回")
    with pytest.raises(CaseInvalid):
        cw.do("head", actions.close_application, number, at("2026-02-02"), reason="国家秘密")
    closed = cw.do("head", actions.close_application, number, at("2026-02-02"), reason="其他",
                   note="申请人撤回申请")
    assert closed.case.state == "closed" and closed.case.answer_type == "其他处理"
    assert closed.case.due_on is None and all(c.status == "done" for c in cw.clocks(number))
    with pytest.raises(InvalidTransition):
        cw.do("head", actions.close_application, number, at("2026-02-03"), reason="其他",
              note="again")
