"""An admin's pages in the browser: add an account (its holder logs in with the temporary
password and must change it), the audit log filtered by that account, and the citizens'
unanswered questions turned into a prefilled FAQ draft."""

from __future__ import annotations

import re
import time

from playwright.sync_api import Page, expect

from tests.browser.conftest import Stack, login, shot

UNANSWERED = "火星上的公交卡怎么充值"  # nothing in the small pack answers this
NEW_PASSWORD = "Quanzhou-new-2026!"


def _reload_until(page: Page, locator_text: str, seconds: float = 6.0) -> None:
    """Reload until the page shows `locator_text` (figures written once a second by the
    citizen app's background writer)."""
    deadline = time.monotonic() + seconds
    while locator_text not in page.locator("main").inner_text():
        assert time.monotonic() < deadline, f"{locator_text!r} never appeared on {page.url}"
        page.wait_for_timeout(300)
        page.reload()


def test_admin_adds_an_account_that_must_change_its_password(stack: Stack, page: Page,
                                                             second: Page) -> None:
    admin = stack.account("ada", "admin")
    login(page, stack, admin)
    page.get_by_role("navigation", name="主导航").get_by_role("link", name="账号",
                                                              exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("账号管理")
    page.get_by_label("账号名（字母、数字、汉字及 . _ -）").fill("newbie")
    page.get_by_label("角色", exact=True).select_option("editor")
    page.get_by_role("button", name="新建并生成临时密码").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("账号已创建")
    temporary = page.locator("#temp-password").inner_text().strip()
    assert len(temporary) >= 12
    page.get_by_role("link", name="返回账号列表").click()
    expect(page.locator("#acct-newbie")).to_contain_text("待修改临时密码")
    shot(page, "accounts")

    # the new account's first login: the temporary password, then a password of its own
    second.goto(stack.at("/login"))
    second.get_by_label("账号", exact=True).fill("newbie")
    second.get_by_label("密码", exact=True).fill(temporary)
    second.get_by_role("button", name="登录", exact=True).click()
    expect(second).to_have_url(re.compile(r"/account/password$"))
    second.get_by_label("当前密码").fill(temporary)
    second.get_by_label(re.compile("^新密码")).fill(NEW_PASSWORD)
    second.get_by_label("再次输入新密码").fill(NEW_PASSWORD)
    second.get_by_role("button", name="保存新密码").click()
    expect(second).to_have_url(stack.at("/"))
    expect(second.get_by_role("heading", level=1)).to_have_text("您好，newbie")

    # the audit log, filtered by that account, shows what happened to it
    page.get_by_role("navigation", name="主导航").get_by_role("link", name="审计日志").click()
    page.get_by_label("操作人").fill("newbie")
    page.get_by_role("button", name="筛选", exact=True).click()
    table = page.locator("table.qz-audit")
    expect(table).to_contain_text("console_login")
    actors = table.locator("tbody tr td:nth-child(2)")
    expect(actors).not_to_have_count(0)
    assert set(actors.all_inner_texts()) == {"newbie"}


def test_audit_log_filters_by_actor(stack: Stack, page: Page, second: Page) -> None:
    editor = stack.account("eve", "editor")
    login(second, stack, editor)
    reviewer = stack.account("rita", "reviewer")
    login(page, stack, reviewer)
    page.get_by_role("navigation", name="主导航").get_by_role("link", name="审计日志").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("审计日志")
    table = page.locator("table.qz-audit")
    expect(table).to_contain_text("eve")
    expect(table).to_contain_text("rita")
    page.get_by_label("操作人").fill("eve")
    page.get_by_role("button", name="筛选", exact=True).click()
    actors = table.locator("tbody tr td:nth-child(2)")
    expect(actors).not_to_have_count(0)
    assert set(actors.all_inner_texts()) == {"eve"}
    expect(table).to_contain_text("console_login")
    times = table.locator("tbody tr td:first-child").all_inner_texts()
    assert all(t.startswith("2026-11-27 10:0") for t in times), times  # Beijing time
    shot(page, "audit")
    # an editor does not see the audit log
    second.goto(stack.at("/audit/"))
    expect(second.get_by_role("heading", level=1)).to_contain_text("403")


def test_unanswered_question_becomes_a_prefilled_faq_draft(stack: Stack, page: Page) -> None:
    for _ in range(2):
        stack.citizen.text(UNANSWERED)
    stack.citizen.text("投诉电话")  # answered
    admin = stack.account("ada", "admin")
    login(page, stack, admin)
    page.get_by_role("navigation", name="主导航").get_by_role("link", name="群众提问").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("群众提问")
    _reload_until(page, UNANSWERED)
    row = page.get_by_role("row", name=re.compile(UNANSWERED))
    expect(row.locator("td.num")).to_have_text("2")
    first_seen = row.locator("time").first.inner_text()
    shot(page, "questions")
    row.get_by_role("link", name="据此新建问答").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("新建")
    expect(page.get_by_label(re.compile("^问题"))).to_have_value(UNANSWERED)
    shot(page, "questions-faq-draft")
    # asked at about 10:00 Beijing time (the stack's clock): staff see Asia/Shanghai times
    assert re.fullmatch(r"2026-11-27 10:0\d", first_seen), first_seen
