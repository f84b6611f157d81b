"""Content in the browser: an editor edits a record (a draft with a diff), a reviewer in a
second browser publishes it from the review queue, and the citizen's answer changes."""

from __future__ import annotations

import re

from playwright.sync_api import Dialog, Page, expect

from tests.browser.conftest import Stack, login, shot

HOTLINE = "交通运输服务监督电话"  # hotline:hl-12328 of the small pack
OLD_HOURS, NEW_HOURS = "8:00-18:00", "7:30-21:00"


def test_edit_review_publish_changes_the_citizens_answer(stack: Stack, page: Page,
                                                         second: Page) -> None:
    editor = stack.account("eve", "editor")
    reviewer = stack.account("rita", "reviewer")
    before = stack.citizen.text("投诉电话")
    assert HOTLINE in before and OLD_HOURS in before

    # the editor finds the record through the list's filters and edits it
    login(page, stack, editor)
    page.get_by_role("navigation", name="主导航").get_by_role("link", name="内容").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("内容记录")
    page.get_by_label("标题包含").fill("监督电话")
    page.get_by_label("类型", exact=True).select_option("hotline")
    page.get_by_role("button", name="筛选", exact=True).click()
    rows = page.locator("table tbody tr")
    expect(rows).to_have_count(1)
    page.get_by_label("类型", exact=True).select_option("")
    page.get_by_label("标题包含").fill("")
    page.get_by_role("button", name="筛选", exact=True).click()
    expect(rows).not_to_have_count(1)
    shot(page, "content-list")
    page.get_by_role("link", name=HOTLINE).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(HOTLINE)
    expect(page.locator(".source")).to_contain_text("内容包导入")
    shot(page, "content-record")
    page.get_by_role("link", name="编辑（新建草稿）").click()
    hours = page.get_by_label("服务时间")
    expect(hours).to_have_value(OLD_HOURS)
    hours.fill(NEW_HOURS)
    shot(page, "content-record-edit")
    page.get_by_role("button", name="保存草稿").click()
    expect(page.locator(".flash-success")).to_contain_text("已保存草稿")
    diff = page.locator("table.diff")
    expect(diff.get_by_role("row", name=re.compile("服务时间"))).to_be_visible()
    expect(diff.locator("ins")).not_to_have_count(0)
    page.get_by_role("button", name="提交审核").click()
    expect(page.locator(".flash-success")).to_contain_text("已提交审核")
    expect(page.get_by_role("button", name="批准并发布")).to_have_count(0)  # not the author's
    assert OLD_HOURS in stack.citizen.text("投诉电话")  # a draft in review changes nothing

    # the reviewer, in another browser, publishes it from the queue
    login(second, stack, reviewer)
    second.goto(stack.at("/content/"))
    second.get_by_role("link", name="审核队列").click()
    expect(second.get_by_role("heading", level=1)).to_have_text("内容审核队列")
    shot(second, "content-review-queue")
    second.get_by_role("link", name=HOTLINE).click()
    expect(second.locator("table.diff")).to_contain_text(NEW_HOURS)
    shot(second, "content-review")
    asked: list[str] = []

    def accept(dialog: Dialog) -> None:
        asked.append(dialog.message)
        dialog.accept()

    second.once("dialog", accept)
    second.get_by_role("button", name="批准并发布").click()
    expect(second.locator(".flash-success")).to_contain_text("已发布（群众可见）")
    assert asked and "发布" in asked[0]  # the page asked before publishing

    after = stack.citizen.text("投诉电话")
    assert NEW_HOURS in after and OLD_HOURS not in after, after

    # the record now says where its live version came from
    second.goto(stack.at("/content/r/hotline/hl-12328"))
    expect(second.locator(".source")).to_contain_text("控制台编辑")
    expect(second.locator(".source")).to_contain_text("rita")


def test_an_editor_cannot_publish_with_a_forged_post(stack: Stack, page: Page) -> None:
    """The publish endpoint refuses an editor (forged POST) even with a valid CSRF token."""
    editor = stack.account("eve", "editor")
    login(page, stack, editor)
    page.goto(stack.at("/content/edit/hotline/hl-12328"))
    page.get_by_label("服务时间").fill(NEW_HOURS)
    page.get_by_role("button", name="保存草稿").click()
    page.get_by_role("button", name="提交审核").click()
    expect(page.locator(".flash-success")).to_contain_text("已提交审核")
    rev_id = int(re.search(r"/content/d/(\d+)", page.url).group(1))
    token = page.locator('meta[name="csrf-token"]').get_attribute("content")
    forged = page.request.post(stack.at(f"/content/d/{rev_id}/approve"),
                               form={"csrf_token": token or ""})
    assert forged.status == 403
    assert OLD_HOURS in stack.citizen.text("投诉电话")
