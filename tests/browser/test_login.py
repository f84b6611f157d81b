"""Logging in through the real pages: TOTP for reviewers, TOTP enrolment at an admin's first
login, a wrong code refused, keyboard-only use of the forms, CSRF refusal."""

from __future__ import annotations

import re

import pyotp
from playwright.sync_api import Page, expect

from tests.browser.conftest import Stack, login, shot, staff_row


def _other_code(code: str) -> str:
    """A 6-digit code that is not `code` (nor, in practice, its neighbours)."""
    return f"{(int(code) + 500_000) % 1_000_000:06d}"


def test_reviewer_logs_in_with_password_and_totp(stack: Stack, page: Page) -> None:
    reviewer = stack.account("rita", "reviewer")
    page.goto(stack.at("/"))  # anonymous: no page of the console opens
    expect(page.get_by_role("heading", level=1)).not_to_contain_text("您好")
    page.goto(stack.at("/login"))
    page.get_by_label("账号", exact=True).fill(reviewer.name)
    page.get_by_label("密码", exact=True).fill(reviewer.password)
    shot(page, "login")
    page.get_by_role("button", name="登录", exact=True).click()
    expect(page).to_have_url(re.compile(r"/login/totp$"))
    # half logged in: the other pages stay closed until the code is given
    page.goto(stack.at("/campaigns/"))
    expect(page.get_by_role("heading", level=1)).not_to_have_text(re.compile("推送"))
    page.goto(stack.at("/login/totp"))
    code = reviewer.code(stack.rt)
    page.get_by_label("验证码（6 位数字）").fill(_other_code(code))
    page.get_by_role("button", name="验证", exact=True).click()
    expect(page.locator("#form-error")).to_contain_text("验证码错误")
    page.get_by_label("验证码（6 位数字）").fill(code)
    shot(page, "login-totp")
    page.get_by_role("button", name="验证", exact=True).click()
    expect(page).to_have_url(stack.at("/"))
    expect(page.get_by_role("heading", level=1)).to_have_text("您好，rita")
    nav = page.get_by_role("navigation", name="主导航")
    expect(nav.get_by_role("link", name="审计日志")).to_be_visible()
    expect(nav.get_by_role("link", name="账号", exact=True)).to_have_count(0)  # admins only
    shot(page, "home")


def test_totp_code_cannot_be_replayed(stack: Stack, page: Page, second: Page) -> None:
    """The code just used logs nobody else in (a code seen over a shoulder)."""
    reviewer = stack.account("rita", "reviewer")
    login(page, stack, reviewer)
    code = reviewer.code(stack.rt)  # the same 30 s step as the login just made
    second.goto(stack.at("/login"))
    second.get_by_label("账号", exact=True).fill(reviewer.name)
    second.get_by_label("密码", exact=True).fill(reviewer.password)
    second.get_by_role("button", name="登录", exact=True).click()
    second.get_by_label("验证码（6 位数字）").fill(code)
    second.get_by_role("button", name="验证", exact=True).click()
    expect(second.locator("#form-error")).to_contain_text("已经用过")
    expect(second).to_have_url(re.compile(r"/login/totp$"))


def test_admin_enrols_totp_at_first_login(stack: Stack, page: Page) -> None:
    admin = stack.account("ada", "admin", enrolled=False)
    page.goto(stack.at("/login"))
    page.get_by_label("账号", exact=True).fill(admin.name)
    page.get_by_label("密码", exact=True).fill(admin.password)
    page.get_by_role("button", name="登录", exact=True).click()
    expect(page).to_have_url(re.compile(r"/account/totp$"))
    expect(page.get_by_role("img", name=re.compile("二维码"))).to_be_visible()
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    shot(page, "totp-enrol")
    page.get_by_label("验证码（6 位数字）").fill(pyotp.TOTP(secret).at(stack.rt.now()))
    page.get_by_role("button", name="完成绑定").click()
    expect(page).to_have_url(stack.at("/"))
    nav = page.get_by_role("navigation", name="主导航")
    expect(nav.get_by_role("link", name="账号", exact=True)).to_be_visible()
    assert staff_row(stack.rt, "ada").totp_enabled


def _tab_to(page: Page, element_id: str, limit: int = 12) -> None:
    """Press Tab until the element with `element_id` has the focus (fails after `limit`)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement && document.activeElement.id") == element_id:
            return
    raise AssertionError(f"#{element_id} not reached with {limit} Tab presses")


def test_login_with_the_keyboard_only(stack: Stack, page: Page) -> None:
    """Tab into the fields, type, Enter submits; every field has a label."""
    reviewer = stack.account("rita", "reviewer")
    page.goto(stack.at("/login"))
    for label in ("账号", "密码"):
        expect(page.get_by_label(label, exact=True)).to_be_editable()
    _tab_to(page, "name")
    page.keyboard.type(reviewer.name)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "password"
    page.keyboard.type(reviewer.password)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/login/totp$"))
    expect(page.get_by_label("验证码（6 位数字）")).to_be_editable()
    _tab_to(page, "code")
    page.keyboard.type(reviewer.code(stack.rt))
    page.keyboard.press("Enter")
    expect(page).to_have_url(stack.at("/"))
    # the skip link is the first stop and jumps to the content
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="跳到正文")).to_be_focused()


def test_login_form_without_csrf_token_is_refused(stack: Stack, page: Page) -> None:
    editor = stack.account("eve", "editor")
    page.goto(stack.at("/login"))
    page.get_by_label("账号", exact=True).fill(editor.name)
    page.get_by_label("密码", exact=True).fill(editor.password)
    page.evaluate("document.querySelector('#login-form input[name=csrf_token]').remove()")
    with page.expect_response(lambda r: r.url.endswith("/login")
                              and r.request.method == "POST") as posted:
        page.get_by_role("button", name="登录", exact=True).click()
    assert posted.value.status == 400
    expect(page.get_by_role("heading", level=1)).to_have_text("400 表单已失效")
    # and nobody was logged in
    page.goto(stack.at("/"))
    expect(page.get_by_role("heading", level=1)).not_to_contain_text("您好")
