"""Console casework pages (console/views/cases.py, console/views/departments.py), both databases.

Queues by due date (overdue, T-0/T-2/T-5, mine, my department), the case page (timeline,
clocks, masking per role, files with audited downloads, the steps the account may take),
registration of a letter application, an application and a 留言 from intake to the end
through the pages, and the attacks: no casework role, another department's case, missing
CSRF, forged numbers and steps, wrong state, citizen text that tries to be HTML.
"""

from __future__ import annotations

import importlib
import io
import re
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from bot.clock import SHANGHAI
from bot.store.db import transaction
from bot.store.models import AuditEntry, Case, CaseEvent, Staff
from cases import actions
from tests.consolekit import console_app, csrf_token, login, make_staff

case_views = importlib.import_module("console.views.cases")  # the package's `cases` is the bp
PNG = b"\x89PNG\r\n\x1a\n" + b"0" * 64
APPLICANT = {"name": "张三丰", "id_type": "居民身份证", "id_number": "350502199001011234",
             "phone": "13812345678", "address": "泉州市丰泽区东海街道1号"}
EVIL = "<script>alert(1)</script><img src=x onerror=alert(2)>"
# name -> (console role, casework roles, department key)
PEOPLE = {
    "reg": ("editor", ("registrar",), None), "head": ("reviewer", ("office_head",), None),
    "head2": ("reviewer", ("office_head",), None), "han": ("editor", ("handler",), "A"),
    "han2": ("editor", ("handler",), "A"), "hanb": ("editor", ("handler",), "B"),
    "ed": ("editor", (), None),
}


class Env:
    """The console app, its people (detached Staff rows) and departments, plus helpers."""

    def __init__(self, rt, app, people, depts):
        self.rt, self.app, self.people, self.depts = rt, app, people, depts
        self.clients: dict[str, object] = {}

    def client(self, who: str):
        if who not in self.clients:
            self.clients[who] = login(self.app.test_client(), self.people[who])
        return self.clients[who]

    def do(self, who: str, fn, *args, **kwargs):
        """A use-case straight through the service (set-up, not under test)."""
        with transaction(self.rt.sessions) as s:
            staff = s.scalar(select(Staff).where(Staff.name == who))
            return fn(s, self.rt.settings, staff, *args, self.rt.now(), **kwargs)

    def message(self, content: str = "请问泉州港的客运班次？", openid: str = "o-citizen",
                category: str = "咨询") -> str:
        with transaction(self.rt.sessions) as s:
            return actions.create_message(s, self.rt.settings, self.rt.now(), channel="chat",
                                          openid=openid, category=category,
                                          content=content).case.number

    def application(self, subject: str = "2026年泉州港航道维护费用明细") -> str:
        with transaction(self.rt.sessions) as s:
            staff = s.scalar(select(Staff).where(Staff.name == "reg"))
            return actions.register_application(
                s, self.rt.settings, staff, self.rt.now(), channel="letter",
                received_on=self.rt.now().astimezone(SHANGHAI).date(),
                applicant=dict(APPLICANT), applicant_type="自然人", subject=subject,
                document_no=None, delivery_form="纸质", delivery_way="邮寄",
                files=(actions.Upload("身份证.png", "image/png", PNG),)).case.number

    def post(self, who: str, path: str, data: dict | None = None, **kwargs):
        client = self.client(who)
        body = {"csrf_token": csrf_token(client, "/cases/"), **(data or {})}
        return client.post(path, data=body, **kwargs)

    def step(self, who: str, number: str, step: str, **data):
        return self.post(who, f"/cases/{number}/do/{step}", data)

    def state(self, number: str) -> str:
        with self.rt.sessions() as s:
            return s.scalar(select(Case.state).where(Case.number == number))


@pytest.fixture
def env(runtime, tmp_path):
    runtime.settings = runtime.settings.replace(cases={"upload_dir": str(tmp_path / "up")})
    app = console_app(runtime)
    people = {"admin": make_staff(runtime, "admin", "admin")}
    now = runtime.now()
    with transaction(runtime.sessions) as s:
        admin = s.scalar(select(Staff).where(Staff.name == "admin"))
        depts = {"A": actions.add_department(s, admin, "市道管处", now).id,
                 "B": actions.add_department(s, admin, "市水运处", now).id}
    for name, (role, _, _) in PEOPLE.items():
        make_staff(runtime, name, role)
    with transaction(runtime.sessions) as s:
        admin = s.scalar(select(Staff).where(Staff.name == "admin"))
        for name, (_, roles, dept) in PEOPLE.items():
            actions.set_case_roles(s, admin, name, roles, depts.get(dept), now)
    with runtime.sessions() as s:
        for name in PEOPLE:
            staff = s.scalar(select(Staff).where(Staff.name == name))
            s.expunge(staff)
            people[name] = staff
    return Env(runtime, app, people, depts)


def text_of(resp) -> str:
    return resp.get_data(as_text=True)


# --- who may open the pages ------------------------------------------------------------------


def test_nav_and_gate_follow_casework_roles(env):
    editor = env.client("ed")
    assert editor.get("/cases/").status_code == 403
    assert editor.get("/cases/YSQ-2026-000001").status_code == 403
    assert "办件" not in text_of(editor.get("/"))
    page = text_of(env.client("reg").get("/"))
    assert 'href="/cases/"' in page and "办件设置" not in page
    admin_home = text_of(env.client("admin").get("/"))
    assert 'href="/cases/"' in admin_home and 'href="/departments"' in admin_home
    assert env.client("reg").get("/departments").status_code == 403
    assert env.client("admin").get("/cases/").status_code == 200


def test_admin_without_casework_roles_reads_but_takes_no_step(env):
    number = env.application()
    page = text_of(env.client("admin").get(f"/cases/{number}"))
    assert "350502199001011234" in page  # admins read unmasked
    assert "渠道：信函" in page and "渠道：letter" not in page  # the timeline speaks Chinese
    assert "管理员只读" in page and 'action="/cases/' not in page
    resp = env.step("admin", number, "assign", department_id=env.depts["A"])
    assert resp.status_code == 403 and env.state(number) == "reviewing"


# --- queues ----------------------------------------------------------------------------------


def test_queues_by_due_date_levels_mine_and_department(env):
    first = env.message("一")
    env.do("reg", actions.accept_message, first)  # 咨询: 5 working days from Fri 2026-11-27
    later = env.message("二", category="投诉举报")
    env.do("reg", actions.accept_message, later)  # 15 working days
    reg = env.client("reg")
    rows = re.findall(r"LY-2026-\d{6}", text_of(reg.get("/cases/")))
    assert rows.index(first) < rows.index(later)  # earliest due first
    assert first in text_of(reg.get("/cases/?view=t5"))
    assert first not in text_of(reg.get("/cases/?view=t2"))
    env.rt.clock.now = env.rt.clock.now + timedelta(days=5)  # Wed 2026-12-02: due Fri 12-04
    assert first in text_of(reg.get("/cases/?view=t2"))
    assert first not in text_of(reg.get("/cases/?view=t0"))
    assert later not in text_of(reg.get("/cases/?view=t5"))
    env.rt.clock.now = env.rt.clock.now + timedelta(days=2)  # Fri 12-04: due today
    assert first in text_of(reg.get("/cases/?view=t0"))
    env.rt.clock.now = env.rt.clock.now + timedelta(days=3)  # Mon 12-07
    page = text_of(reg.get("/cases/?view=overdue"))
    assert first in page and later not in page and "已超期" in page
    # a handler sees his department's cases only; "mine" once he signed for it
    env.do("reg", actions.transfer_message, first, department_id=env.depts["A"])
    han, hanb = env.client("han"), env.client("hanb")
    assert first in text_of(han.get("/cases/")) and later not in text_of(han.get("/cases/"))
    assert first not in text_of(hanb.get("/cases/"))
    assert first not in text_of(han.get("/cases/?view=mine"))
    env.do("han", actions.sign_message, first)
    assert first in text_of(han.get("/cases/?view=mine"))
    assert first in text_of(han.get("/cases/?view=department"))
    assert first not in text_of(env.client("han2").get("/cases/?view=mine"))
    # filters
    assert first not in text_of(reg.get("/cases/?kind=application"))
    assert first not in text_of(reg.get("/cases/?kind=message&state=accepted"))
    assert later in text_of(reg.get("/cases/?kind=message&state=accepted"))
    assert reg.get("/cases/?view=<bad>&kind=x&state=y").status_code == 200


# --- registration ----------------------------------------------------------------------------


def test_registrar_registers_a_letter_and_sees_the_code_once(env):
    resp = env.post("reg", "/cases/register", {
        "channel": "letter", "received_on": "2026-11-26", "applicant_type": "自然人",
        **{f"applicant_{k}": v for k, v in APPLICANT.items()}, "subject": EVIL,
        "delivery_form": "纸质", "delivery_way": "邮寄",
        "files": (io.BytesIO(PNG), "证件.png", "image/png")},
        content_type="multipart/form-data")
    page = text_of(resp)
    assert resp.status_code == 201, page[:2000]
    number = re.search(r"YSQ-2026-\d{6}", page).group(0)
    code = re.search(r'class="token-secret"><strong>([0-9A-Z]{6})<', page).group(1)
    with env.rt.sessions() as s:
        case = s.scalar(select(Case).where(Case.number == number))
        assert case.state == "reviewing" and case.received_on.isoformat() == "2026-11-26"
        assert code not in case.query_code_hash
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page
    again = text_of(env.client("reg").get(f"/cases/{number}"))
    assert code not in again and "证件.png" in again  # shown once
    assert "2026-12-24" in again  # 20 working days from Thu 2026-11-26


def test_registration_problems_are_listed_and_nothing_is_stored(env):
    resp = env.post("reg", "/cases/register", {"channel": "letter", "applicant_type": "自然人",
                                               "delivery_form": "纸质",
                                               "delivery_way": "邮寄"})
    assert resp.status_code == 400
    page = text_of(resp)
    assert "applicant.name: required" in page and "subject" in page
    with env.rt.sessions() as s:
        assert s.scalar(select(Case.id)) is None
    assert env.post("han", "/cases/register", {}).status_code == 403
    assert env.client("han").get("/cases/register").status_code == 403
    assert env.post("reg", "/cases/register", {"received_on": "2026-13-40"}).status_code == 400


# --- the case page ---------------------------------------------------------------------------


def test_masking_files_and_department_boundaries(env):
    number = env.application()
    env.do("reg", actions.assign, number, department_id=env.depts["A"], handler="han")
    reg_page = text_of(env.client("reg").get(f"/cases/{number}"))
    assert "350502199001011234" in reg_page and "13812345678" in reg_page
    han_page = text_of(env.client("han").get(f"/cases/{number}"))  # the case's own handler
    assert "350502199001011234" in han_page and "13812345678" in han_page
    assert "无权查看" in han_page and "/cases/files/" not in han_page  # identity proof: no
    han2_page = text_of(env.client("han2").get(f"/cases/{number}"))  # same department
    assert "350502199001011234" not in han2_page and "3505**********1234" in han2_page
    assert "138****5678" in han2_page and "张**" in han2_page
    assert env.client("hanb").get(f"/cases/{number}").status_code == 403
    file_id = int(re.search(r'/cases/files/(\d+)"', reg_page).group(1))
    assert env.client("han").get(f"/cases/files/{file_id}").status_code == 403
    assert env.client("ed").get(f"/cases/files/{file_id}").status_code == 403
    resp = env.client("reg").get(f"/cases/files/{file_id}")
    assert resp.status_code == 200 and resp.data == PNG
    assert resp.headers["Content-Disposition"].startswith("attachment")
    with env.rt.sessions() as s:
        reads = s.scalars(select(AuditEntry).where(AuditEntry.action == "case.file_read")).all()
        assert [(r.actor, r.object_id) for r in reads] == [("reg", number)]
    assert env.client("reg").get("/cases/files/987654").status_code == 404


def test_citizen_text_is_escaped_everywhere(env):
    number = env.message(EVIL)
    for who, path in (("reg", "/cases/"), ("reg", f"/cases/{number}")):
        page = text_of(env.client(who).get(path))
        assert "<script>alert" not in page and "<img src=x" not in page
        assert "&lt;script&gt;" in page or "&lt;img" in page
    resp = env.step("reg", number, "reject_message", reason=EVIL)
    assert resp.status_code == 303
    page = text_of(env.client("reg").get(f"/cases/{number}"))
    assert "<script>alert" not in page and page.count("&lt;script&gt;alert(1)") >= 2


def test_an_application_from_registration_to_archive_through_the_pages(env, monkeypatch):
    sent: list[list[int]] = []
    monkeypatch.setattr(case_views, "send_notices",
                        lambda runtime, notices: sent.append(list(notices)))
    number = env.application()
    page = text_of(env.client("reg").get(f"/cases/{number}"))
    assert 'id="step-assign"' in page and 'id="step-archive"' not in page
    assert env.step("reg", number, "assign", department_id=env.depts["A"]).status_code == 303
    assert env.state(number) == "handling"
    han_page = text_of(env.client("han").get(f"/cases/{number}"))
    assert 'id="step-draft_answer"' in han_page and 'id="step-review_answer"' not in han_page
    assert env.client("hanb").get(f"/cases/{number}").status_code == 403
    resp = env.step("han", number, "draft_answer", answer_type="予以公开", reason="", text="")
    assert resp.status_code == 303 and env.state(number) == "answer_drafted"
    page = text_of(env.client("han").get(f"/cases/{number}"))
    assert "第三十六条第（二）项" in page  # the template for 予以公开
    assert env.step("han", number, "submit_answer").status_code == 303
    # the handler may not review; the office head returns, then approves
    assert env.step("han", number, "review_answer", approve="1").status_code == 403
    resp = env.step("head", number, "review_answer", approve="0", note="")
    assert resp.status_code == 400 and env.state(number) == "answer_review"
    assert env.step("head", number, "review_answer", approve="1").status_code == 303
    assert env.state(number) == "delivering"
    assert env.step("reg", number, "archive").status_code == 409  # not delivered yet
    assert env.step("reg", number, "record_delivery", how="邮寄").status_code == 303
    assert env.step("reg", number, "archive").status_code == 303
    assert env.state(number) == "archived"
    page = text_of(env.client("reg").get(f"/cases/{number}"))
    for label in ("登记", "分办", "拟写答复", "答复审核通过", "送达", "归档"):
        assert label in page
    assert "当前状态下您没有可执行的操作" in page
    notices = [i for batch in sent for i in batch]  # handed over after each commit
    with env.rt.sessions() as s:
        assert [s.get(CaseEvent, i).action for i in notices] == ["delivered"]


def test_a_message_through_the_pages_with_extension_by_another_head(env):
    number = env.message()
    assert env.step("reg", number, "accept_message", category="建议").status_code == 303
    assert env.step("reg", number, "transfer_message",
                    department_id=env.depts["A"]).status_code == 303
    assert env.step("hanb", number, "sign_message").status_code == 403
    assert env.step("han", number, "sign_message").status_code == 303
    assert env.step("han", number, "request_extension", reason="需要现场核实").status_code == 303
    assert env.step("han", number, "decide_extension", approve="1").status_code == 403
    assert env.step("head", number, "decide_extension", approve="1").status_code == 303
    assert env.step("han", number, "draft_reply", text="已核实，班次见附表。").status_code == 303
    assert env.step("han", number, "submit_reply").status_code == 303
    assert env.step("head2", number, "review_reply", approve="1").status_code == 303
    assert env.state(number) == "replied"
    page = text_of(env.client("reg").get(f"/cases/{number}"))
    assert "批准延期" in page and "通知群众" in page


def test_attacks_csrf_forged_ids_wrong_state_and_bad_input(env):
    number = env.message()
    client = env.client("reg")
    resp = client.post(f"/cases/{number}/do/accept_message", data={})
    assert resp.status_code == 400 and env.state(number) == "submitted"  # no CSRF token
    assert env.step("reg", "LY-2026-999999", "accept_message").status_code == 404
    assert env.step("reg", "nonsense", "accept_message").status_code == 404
    assert env.step("reg", number, "drop_table").status_code == 404
    assert env.step("reg", number, "archive").status_code == 404  # an application's step
    assert env.step("reg", number, "sign_message").status_code == 403  # a handler's step
    assert env.step("ed", number, "accept_message").status_code == 403
    assert env.step("reg", number, "transfer_message",
                    department_id="x").status_code == 400
    assert env.step("reg", number, "accept_message", category="闲聊").status_code == 400
    assert env.step("reg", number, "reject_message", reason="").status_code == 400
    assert env.state(number) == "submitted"
    assert env.step("reg", number, "accept_message").status_code == 303
    assert env.step("reg", number, "accept_message").status_code == 409


def test_conversion_shows_the_new_code_once(env):
    number = env.message("依申请公开：请提供2026年道路养护合同")
    resp = env.step("reg", number, "convert_message_to_application", applicant_type="自然人")
    page = text_of(resp)
    assert resp.status_code == 200 and "查询码" in page
    new = re.search(r"<h1>(YSQ-2026-\d{6})", page).group(1)
    assert env.state(number) == "closed" and env.state(new) == "reviewing"
    assert number in page  # "由网民留言 LY-... 转来"


# --- departments and casework roles ----------------------------------------------------------


def test_admin_manages_departments_and_casework_roles(env):
    page = text_of(env.client("admin").get("/departments"))
    assert "市道管处" in page and 'id="staff-han"' in page
    assert env.post("admin", "/departments/new", {"name": "局办公室"}).status_code == 303
    assert env.post("ed", "/departments/new", {"name": "偷建"}).status_code == 403
    with env.rt.sessions() as s:
        names = [d.name for d in actions.list_departments(s, s.get(Staff, env.people["admin"].id))]
    assert "局办公室" in names and "偷建" not in names
    resp = env.post("admin", "/departments/staff/ed", {"case_roles": ["handler"]})
    assert resp.status_code == 303
    assert not _roles(env, "ed")[0]  # refused: a handler needs a department
    env.post("admin", "/departments/staff/ed",
             {"case_roles": ["handler", "registrar"], "department_id": str(env.depts["B"])})
    assert _roles(env, "ed") == (["registrar", "handler"], env.depts["B"])
    assert env.client("ed").get("/cases/").status_code == 200
    env.post("admin", f"/departments/{env.depts['B']}/active", {"active": "0"})
    with env.rt.sessions() as s:
        views = actions.list_departments(s, s.get(Staff, env.people["admin"].id))
        assert not next(d for d in views if d.id == env.depts["B"]).active
    assert env.post("admin", "/departments/staff/ghost", {"case_roles": ["registrar"]}
                    ).status_code == 303  # refused with a message, nothing created
    with env.rt.sessions() as s:
        assert s.scalar(select(Staff).where(Staff.name == "ghost")) is None


def _roles(env, name: str):
    with env.rt.sessions() as s:
        staff = s.scalar(select(Staff).where(Staff.name == name))
        return staff.case_roles, staff.department_id


def test_times_are_shanghai_and_pages_fit_a_phone(env):
    number = env.message()
    page = text_of(env.client("reg").get(f"/cases/{number}"))
    assert env.rt.now().astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M") in page
    assert 'class="table-wrap"' in page
    assert isinstance(env.rt.now(), datetime)


def unlabelled(html: str) -> set[str]:
    """Ids of visible inputs, selects and textareas that no <label for=...> names."""
    fields = re.findall(r'<(?:input|select|textarea)\b(?![^>]*type="(?:hidden|submit)")'
                        r'[^>]*\bid="([^"]+)"', html)
    named = set(re.findall(r'<label\b[^>]*\bfor="([^"]+)"', html))
    inputs = len(re.findall(r'<(?:input|select|textarea)\b(?![^>]*type="(?:hidden|submit)")',
                            html))
    assert inputs == len(fields), "an input without an id"
    return set(fields) - named


def test_every_form_field_has_a_label(env):
    message, application = env.message(), env.application()
    env.do("reg", actions.assign, application, department_id=env.depts["A"])
    pages = [("reg", f"/cases/{message}"), ("reg", f"/cases/{application}"),
             ("han", f"/cases/{application}"), ("reg", "/cases/register"),
             ("reg", "/cases/"), ("admin", "/departments")]
    for who, path in pages:
        html = text_of(env.client(who).get(path))
        assert "<form" in html and not unlabelled(html), (who, path, unlabelled(html))
    html = text_of(env.client("han").get(f"/cases/{application}"))
    assert 'id="draft_answer-answer_type"' in html and "<optgroup" in html
