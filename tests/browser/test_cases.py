"""Casework (issue 10) in the browser: the staff flows of 网民留言 and 依申请公开.

1. A citizen's 留言 arrives through the chat; a registrar accepts and transfers it; the
   department's handler (another browser) signs for it and drafts a reply; the office head
   (a third browser) approves it; the citizen's `查询 <编号>` shows each state, and the reply
   only after the review; the progress notices reach the simulator as customer-service
   messages; the citizen's 满意 in the chat shows on the case (回访).
2. A registrar registers a letter application in the console form (every field labelled),
   assigns it; the handler drafts 予以公开 and submits; she also heads the disclosure office,
   yet gets no review form for her own answer and a forged review POST is refused (four
   eyes); another office head approves; delivery, archive; the timeline lists every step
   with its date and actor; the case page also fits a phone.
3. An application received on 2026-12-28: its 20 working days reach 2027, a provisional
   calendar year, so the deadline is shown with 暂定 on the case and in the queue.
4. Access: an editor without a casework role gets 403 everywhere under /cases; a handler of
   the case's department sees the applicant masked and cannot read the identity proof; a
   handler of another department gets 403; a step without CSRF is refused.

Set-up that is not under test (departments, casework roles, a case registered straight
through the service for 4.) uses conftest's add_department / caseworker.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from bot.clock import SHANGHAI
from bot.store.models import Case, CaseFile, Staff
from cases import actions
from tests.browser.conftest import (
    PHONE,
    TIMEOUT_MS,
    Stack,
    add_department,
    caseworker,
    csrf_of,
    login,
    shot,
)
from tests.pushkit import drain
from tests.wx import CITIZEN

COMPLAINT = "留言 投诉 某路段施工占道"
REPLY = ("经核查，该路段施工已办理占道许可，我处已督促施工单位设置围挡和警示标志，"
         "并于本周内恢复一条车道通行。")
APPLICANT = {"name": "张三丰", "id_type": "居民身份证", "id_number": "350502199001011234",
             "phone": "13812345678", "address": "泉州市丰泽区东海街道1号"}
PNG = b"\x89PNG\r\n\x1a\n" + b"0" * 64
SUBJECT = "2026年泉州港航道维护费用明细"


@pytest.fixture
def third(browser: Browser, browser_context_args: dict[str, Any]) -> Iterator[Page]:
    """A page in a THIRD browser context (a third person's browser)."""
    ctx = browser.new_context(**browser_context_args)
    ctx.set_default_timeout(TIMEOUT_MS)
    try:
        yield ctx.new_page()
    finally:
        ctx.close()


def state_badge(page: Page) -> Any:
    """The case page's state badge (in its heading)."""
    return page.locator("h1 .badge")


def open_from_queue(page: Page, stack: Stack, number: str) -> None:
    """Casework in the navigation, then the case's row in the queue."""
    page.get_by_role("navigation", name="主导航").get_by_role("link", name="办件",
                                                              exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("办件")
    page.get_by_role("link", name=number, exact=True).click()
    expect(page).to_have_url(stack.at(f"/cases/{number}"))


def step(page: Page, name: str) -> Any:
    """The form of one step on the case page (id step-<name>)."""
    return page.locator(f"#step-{name}")


def case_state(stack: Stack, number: str) -> str:
    """The stored state of a case (to check a refused step changed nothing)."""
    with stack.rt.sessions() as s:
        return s.scalar(select(Case.state).where(Case.number == number))


def register_letter(page: Page, subject: str, *, check_labels: bool = False) -> str:
    """Fill the registration form as a registrar (from the queue page); the new number."""
    page.get_by_role("link", name="登记来信/传真/邮件/当面申请").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("登记依申请公开")
    if check_labels:  # every visible input, select and textarea has a <label for=...>
        unlabelled = page.locator("form.case-form").evaluate(
            """f => [...f.querySelectorAll('input:not([type=hidden]), select, textarea')]
                   .filter(el => !el.labels || el.labels.length === 0
                                 || !el.labels[0].textContent.trim())
                   .map(el => el.name)""")
        assert unlabelled == []
    page.get_by_label("渠道", exact=True).select_option(label="信函")
    page.get_by_label("申请人类型").select_option("自然人")
    page.get_by_label("姓名/名称（必填）").fill(APPLICANT["name"])
    page.get_by_label("证件类型（必填）").fill(APPLICANT["id_type"])
    page.get_by_label("证件号码（必填）").fill(APPLICANT["id_number"])
    page.get_by_label("联系电话（必填）").fill(APPLICANT["phone"])
    page.get_by_label("通信地址").fill(APPLICANT["address"])
    page.get_by_label("所需政府信息的名称或内容描述").fill(subject)
    page.get_by_label("文号（如知道）").fill("泉交〔2026〕12号")
    page.get_by_label("提供形式").select_option("纸质")
    page.get_by_label("获取方式").select_option("邮寄")
    page.get_by_label(re.compile("^身份证明")).set_input_files(
        files=[{"name": "身份证.png", "mimeType": "image/png", "buffer": PNG}])
    page.get_by_role("button", name="登记并开始计时").click()
    expect(page.locator(".token-new")).to_contain_text("查询码")
    heading = page.get_by_role("heading", level=1).inner_text()
    match = re.search(r"YSQ-\d{4}-\d{6}", heading)
    assert match, heading
    return match.group()


def departments(stack: Stack) -> dict[str, int]:
    """Two departments (ids by key A, B)."""
    return {"A": add_department(stack, "市道管处"), "B": add_department(stack, "市水运处")}


# --- 1. a 留言 from the chat to the citizen's 查询 -------------------------------------------


def test_message_from_chat_to_reviewed_reply(stack: Stack, page: Page, second: Page,
                                             third: Page) -> None:
    depts = departments(stack)
    registrar = caseworker(stack, "rhea", "editor", ("registrar",))
    handler = caseworker(stack, "hans", "editor", ("handler",), depts["A"])
    head = caseworker(stack, "olga", "reviewer", ("office_head",))

    receipt = stack.citizen.text(COMPLAINT)
    match = re.search(r"编号：(LY-2026-\d{6})", receipt)
    assert match, receipt
    number = match.group(1)
    assert "投诉举报" in receipt and "查询码" in receipt

    # the registrar: the queue, accept, transfer to 市道管处
    login(page, stack, registrar)
    page.get_by_role("navigation", name="主导航").get_by_role("link", name="办件",
                                                              exact=True).click()
    row = page.get_by_role("row", name=re.compile(number))
    expect(row).to_contain_text("已提交")
    expect(row).to_contain_text("某路段施工占道")
    shot(page, "cases-queue")
    open_from_queue(page, stack, number)
    expect(state_badge(page)).to_have_text("已提交")
    step(page, "accept_message").get_by_role("button", name="受理", exact=True).click()
    expect(state_badge(page)).to_have_text("已受理")
    assert "当前状态：已受理" in stack.citizen.text(f"查询 {number}")
    form = step(page, "transfer_message")
    form.get_by_label("承办部门").select_option(label="市道管处")
    form.get_by_role("button", name="转办", exact=True).click()
    expect(state_badge(page)).to_have_text("转办")
    expect(page.locator("dl.facts").first).to_contain_text("市道管处")
    shot(page, "cases-message-transferred")

    # the department's handler, in his own browser: sign for it, draft, submit
    login(second, stack, handler)
    open_from_queue(second, stack, number)
    step(second, "sign_message").get_by_role("button", name="签收", exact=True).click()
    expect(state_badge(second)).to_have_text("已签收")
    form = step(second, "draft_reply")
    form.get_by_label("答复内容").fill(REPLY)
    form.get_by_role("button", name="拟写答复").click()
    expect(state_badge(second)).to_have_text("办理中")
    step(second, "submit_reply").get_by_role("button", name="提交审核").click()
    expect(state_badge(second)).to_have_text("答复审核")
    expect(step(second, "review_reply")).to_have_count(0)  # not his to review
    shot(second, "cases-message-submitted")
    before = stack.citizen.text(f"查询 {number}")
    assert "当前状态：答复审核" in before and REPLY not in before  # not before the review

    # the office head, a third person: approves
    login(third, stack, head)
    open_from_queue(third, stack, number)
    expect(third.locator(".case-answer")).to_have_text(REPLY)
    step(third, "review_reply").get_by_role("button", name="通过", exact=True).click()
    expect(state_badge(third)).to_have_text("已答复")
    timeline = third.locator("ol.case-timeline")
    for label in ("提交", "受理", "转办", "签收", "拟写答复", "提交答复审核", "已答复"):
        expect(timeline).to_contain_text(label)
    shot(third, "cases-message-replied")

    answer = stack.citizen.text(f"查询 {number}")
    assert "当前状态：已答复" in answer
    assert REPLY in answer
    assert "满意" in answer  # asked to rate it (回访)
    assert case_state(stack, number) == "replied"

    # the progress notices went out through push's channels (customer-service messages: the
    # citizen wrote within 48 hours) and are recorded on the case
    drain(stack.rt)
    sent = [m["payload"]["text"]["content"] for m in stack.sim.messages()
            if m.get("touser") == CITIZEN and m.get("api") == "message/custom/send"]
    assert len(sent) == 3, sent  # accepted, answered (with the reply), asked to rate it
    assert all(number in text for text in sent)
    assert "已受理" in sent[0] and REPLY in sent[1] and "满意" in sent[2]

    # the citizen rates it in the chat (回访); the office head's page shows it
    assert "感谢您的评价（满意）" in stack.citizen.text("满意")
    third.reload()
    expect(state_badge(third)).to_have_text("已回访")
    expect(third.locator("dl.facts").first).to_contain_text("满意")


# --- 2. a letter application from registration to archive -----------------------------------


def test_application_registered_answered_reviewed_delivered_archived(
        stack: Stack, page: Page, second: Page, third: Page) -> None:
    depts = departments(stack)
    registrar = caseworker(stack, "rhea", "editor", ("registrar",))
    # she handles 市道管处's cases and also heads the disclosure office: four eyes still hold
    handler = caseworker(stack, "hana", "editor", ("handler", "office_head"), depts["A"])
    head = caseworker(stack, "olga", "reviewer", ("office_head",))

    login(page, stack, registrar)
    page.get_by_role("navigation", name="主导航").get_by_role("link", name="办件",
                                                              exact=True).click()
    number = register_letter(page, SUBJECT, check_labels=True)
    expect(state_badge(page)).to_have_text("审核")
    facts = page.locator("dl.facts").first
    expect(facts).to_contain_text("信函")
    expect(facts).to_contain_text("2026-11-27")  # received today
    expect(facts).to_contain_text("2026-12-25")  # + 20 working days, an official year
    expect(facts).not_to_contain_text("暂定")
    applicant = page.get_by_role("region", name="申请人", exact=True)
    for shown in (APPLICANT["name"], APPLICANT["id_number"], APPLICANT["phone"]):
        expect(applicant).to_contain_text(shown)  # a registrar sees it all
    proof = page.get_by_role("region", name="材料", exact=True).get_by_role("link",
                                                                            name="身份证.png")
    download = page.request.get(stack.at(proof.get_attribute("href") or ""))
    assert download.status == 200 and download.body() == PNG
    shot(page, "cases-application-registered")

    form = step(page, "assign")
    form.get_by_label("承办部门").select_option(label="市道管处")
    form.get_by_label("承办人账号（可不填）").fill("hana")
    form.get_by_role("button", name="分办", exact=True).click()
    expect(state_badge(page)).to_have_text("办理")

    # the handler drafts 予以公开 from the template and submits it
    login(second, stack, handler)
    open_from_queue(second, stack, number)
    form = step(second, "draft_answer")
    form.get_by_label("答复类型", exact=True).select_option("予以公开")
    form.get_by_role("button", name="拟写答复").click()
    expect(state_badge(second)).to_have_text("答复拟稿")
    expect(second.locator(".case-answer")).to_contain_text(SUBJECT)  # the template's text
    step(second, "submit_answer").get_by_role("button", name="提交审核").click()
    expect(state_badge(second)).to_have_text("答复审核")
    # ... but cannot review her own answer: no form, and a forged POST is refused
    expect(step(second, "review_answer")).to_have_count(0)
    expect(second.get_by_role("button", name="通过", exact=True)).to_have_count(0)
    forged = second.request.post(stack.at(f"/cases/{number}/do/review_answer"),
                                 form={"csrf_token": csrf_of(second), "approve": "1"})
    assert forged.status == 403
    assert "拟稿人以外" in forged.text()
    assert case_state(stack, number) == "answer_review"
    shot(second, "cases-application-own-answer")

    # another office head approves
    login(third, stack, head)
    open_from_queue(third, stack, number)
    expect(third.locator(".case-answer")).to_contain_text(SUBJECT)
    step(third, "review_answer").get_by_role("button", name="通过", exact=True).click()
    expect(state_badge(third)).to_have_text("送达")

    # the registrar records the delivery and archives
    page.reload()
    form = step(page, "record_delivery")
    form.get_by_label("送达方式").select_option("邮寄")
    form.get_by_role("button", name="登记送达").click()
    answer = page.get_by_role("region", name="答复", exact=True)
    expect(answer).to_contain_text("邮寄送达 2026-11-27")
    step(page, "archive").get_by_role("button", name="归档", exact=True).click()
    expect(state_badge(page)).to_have_text("归档")
    expect(page.get_by_role("region", name="办理", exact=True)).to_contain_text("没有可执行的操作")

    items = page.locator("ol.case-timeline > li")
    texts = items.all_inner_texts()
    wanted = ["登记", "分办", "拟写答复", "提交答复审核", "答复审核通过", "送达", "归档"]
    labels = [page.locator("ol.case-timeline > li strong").nth(i).inner_text()
              for i in range(len(texts))]
    assert labels == wanted, labels
    assert all(re.match(r"2026-11-27 \d\d:\d\d", t) for t in texts), texts
    actors = [t.split(" · ")[1] for t in texts]
    assert actors == ["rhea", "rhea", "hana", "hana", "olga", "rhea", "rhea"], actors
    shot(page, "cases-application-archived")
    page.set_viewport_size(PHONE)  # a phone: the page reflows, no sideways scrolling
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, "cases-application-phone")
    with stack.rt.sessions() as s:
        case = s.scalar(select(Case).where(Case.number == number))
        assert (case.state, case.answer_author, case.answer_reviewer) == (
            "archived", "hana", "olga")
        assert case.delivered_on == date(2026, 11, 27)


# --- 3. a provisional deadline ----------------------------------------------------------------


def test_deadline_into_a_provisional_year_is_marked(stack: Stack, page: Page) -> None:
    # late December 2026: 20 working days from 12-28 reach 2027-01-26, past 元旦 of 2027,
    # a year whose notice is not out (provisional)
    stack.rt.clock.start = datetime(2026, 12, 28, 10, 0, tzinfo=SHANGHAI)
    registrar = caseworker(stack, "rhea", "editor", ("registrar",))
    login(page, stack, registrar)
    page.get_by_role("navigation", name="主导航").get_by_role("link", name="办件",
                                                              exact=True).click()
    number = register_letter(page, "2027年春运期间客运班次安排")
    facts = page.locator("dl.facts").first
    expect(facts).to_contain_text("2026-12-28")
    expect(facts).to_contain_text("2027-01-26 暂定")
    clocks = page.get_by_role("region", name="期限", exact=True)
    expect(clocks.locator("tbody tr")).to_have_count(1)
    expect(clocks.locator("tbody tr")).to_contain_text("2027-01-26 暂定")
    shot(page, "cases-provisional-case")
    page.get_by_role("link", name="‹ 返回办件").click()
    row = page.get_by_role("row", name=re.compile(number))
    expect(row.locator(".badge-warn")).to_have_text("暂定")
    expect(row).to_contain_text("2027-01-26")
    shot(page, "cases-provisional-queue")
    with stack.rt.sessions() as s:
        case = s.scalar(select(Case).where(Case.number == number))
        assert (case.due_on, case.due_provisional) == (date(2027, 1, 26), True)


# --- 4. who sees what --------------------------------------------------------------------------


def registered_and_assigned(stack: Stack, department_id: int) -> tuple[str, int]:
    """An application by letter assigned to a department, straight through the service
    (set-up); its number and the identity proof's file id."""
    now = stack.rt.now()
    with stack.rt.sessions() as s:
        reg = s.scalar(select(Staff).where(Staff.name == "rhea"))
        number = actions.register_application(
            s, stack.rt.settings, reg, now, channel="letter",
            received_on=now.astimezone(SHANGHAI).date(), applicant=dict(APPLICANT),
            applicant_type="自然人", subject=SUBJECT, document_no=None, delivery_form="纸质",
            delivery_way="邮寄", files=(actions.Upload("身份证.png", "image/png", PNG),),
        ).case.number
        actions.assign(s, stack.rt.settings, reg, number, now, department_id=department_id)
        file_id = s.scalar(select(CaseFile.id).join(Case, Case.id == CaseFile.case_id)
                           .where(Case.number == number))
        s.commit()
    return number, file_id


def test_access_and_masking(stack: Stack, page: Page, second: Page, third: Page) -> None:
    depts = departments(stack)
    caseworker(stack, "rhea", "editor", ("registrar",))  # registers it (set-up)
    handler = caseworker(stack, "hans", "editor", ("handler",), depts["A"])
    other = caseworker(stack, "hugo", "editor", ("handler",), depts["B"])
    editor = stack.account("eve", "editor")
    number, file_id = registered_and_assigned(stack, depts["A"])

    # an editor without a casework role: no navigation entry, 403 on every page and step
    login(page, stack, editor)
    expect(page.get_by_role("navigation", name="主导航").get_by_role(
        "link", name="办件", exact=True)).to_have_count(0)
    for path in ("/cases/", f"/cases/{number}", "/cases/register", f"/cases/files/{file_id}"):
        page.goto(stack.at(path))
        expect(page.get_by_role("heading", level=1)).to_contain_text("403")
    shot(page, "cases-editor-403")
    forged = page.request.post(stack.at(f"/cases/{number}/do/draft_answer"),
                               form={"csrf_token": csrf_of(page), "answer_type": "予以公开"})
    assert forged.status == 403
    forged = page.request.post(stack.at("/cases/register"),
                               form={"csrf_token": csrf_of(page), "channel": "letter"})
    assert forged.status == 403

    # the department's handler: the applicant masked, the identity proof not readable
    login(second, stack, handler)
    open_from_queue(second, stack, number)
    applicant = second.get_by_role("region", name="申请人", exact=True)
    expect(applicant).to_contain_text("张**")
    expect(applicant).to_contain_text("3505**********1234")
    expect(applicant).to_contain_text("138****5678")
    for secret in (APPLICANT["name"], APPLICANT["id_number"], APPLICANT["phone"],
                   APPLICANT["address"]):
        assert secret not in second.content()
    files = second.get_by_role("region", name="材料", exact=True)
    expect(files).to_contain_text("无权查看")
    expect(files.get_by_role("link")).to_have_count(0)
    shot(second, "cases-handler-masked")
    assert second.request.get(stack.at(f"/cases/files/{file_id}")).status == 403
    # a step without the CSRF token is refused, and changes nothing
    no_csrf = second.request.post(stack.at(f"/cases/{number}/do/draft_answer"),
                                  form={"answer_type": "予以公开"})
    assert no_csrf.status == 400
    assert case_state(stack, number) == "handling"

    # a handler of another department: not in his queue, 403 on the page and the steps
    login(third, stack, other)
    third.get_by_role("navigation", name="主导航").get_by_role("link", name="办件",
                                                               exact=True).click()
    expect(third.get_by_role("link", name=number, exact=True)).to_have_count(0)
    third.goto(stack.at(f"/cases/{number}"))
    expect(third.get_by_role("heading", level=1)).to_contain_text("403")
    forged = third.request.post(stack.at(f"/cases/{number}/do/draft_answer"),
                                form={"csrf_token": csrf_of(third), "answer_type": "予以公开"})
    assert forged.status == 403
    assert case_state(stack, number) == "handling"
