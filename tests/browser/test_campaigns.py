"""Campaigns in the browser: an editor composes one (live audience size, phone preview), a
reviewer in a second browser approves it, the delivery page follows the simulator's sends by
itself (htmx polling, Chart.js); the author cannot approve; a form without CSRF is refused."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from bot.store.models import Campaign, Staff
from push import actions
from tests.browser.conftest import DESKTOP, PHONE, Stack, csrf_of, login, number_in, shot

FERRY = "受台风影响石井至金门航线停航"  # notice:n-ferry of the small pack, 南安市
APPROVE = re.compile(r"^批准")
TITLE = "金门航线停航提醒"
# Chart.js (vendored) state of a canvas: the first dataset's total, the number of bars
CHART_SUM = """([id, total]) => { const c = window.Chart && Chart.getChart(id);
  return !!c && c.data.datasets[0].data.reduce((a, b) => a + b, 0) === total; }"""
CHART_BARS = """([id, n]) => { const c = window.Chart && Chart.getChart(id);
  return !!c && c.data.labels.length === n; }"""


def compose_ferry_campaign(page: Page, stack: Stack, *, screenshots: bool = False) -> int:
    """On /campaigns/new: 出行资讯 in 南安市 with the ferry notice; save and submit it."""
    page.goto(stack.at("/campaigns/"))
    page.get_by_role("link", name="新建推送").click()
    expect(page).to_have_url(re.compile(r"/campaigns/new$"))
    size = page.locator("#audience-size")
    page.get_by_label("栏目").select_option("出行资讯")
    expect(size.locator("strong")).to_have_text(str(len(stack.citizens)))
    page.get_by_label("区县（可选）").select_option("丰泽区")  # nobody subscribed there
    expect(size.locator("strong")).to_have_text("0")
    page.get_by_label("区县（可选）").select_option("南安市")
    expect(size.locator("strong")).to_have_text(str(len(stack.citizens)))
    page.get_by_label("查找信息（标题或编号）").fill("停航")
    expect(page.locator("#record-list .record-choice")).to_have_count(1)  # the search ran
    page.get_by_label(re.compile(FERRY)).check()
    preview = page.locator("#preview-box")
    expect(preview.locator(".notice-card")).to_contain_text(FERRY)
    expect(preview.locator(".notice-card")).to_contain_text("南安市")
    expect(preview).to_contain_text("客服消息")
    page.get_by_label("标题（可选，默认取第一条信息的标题）").fill(TITLE)
    expect(preview.locator(".notice-card")).to_contain_text(TITLE)
    if screenshots:
        shot(page, "campaign-compose")
        page.set_viewport_size(PHONE)
        expect(preview.locator(".notice-card")).to_be_visible()
        width = page.evaluate("document.documentElement.scrollWidth")
        shot(page, "campaign-compose-phone")
        assert width <= PHONE["width"], f"compose page is {width} px wide on a 390 px phone"
        page.set_viewport_size(DESKTOP)
    page.get_by_role("button", name="保存草稿").click()
    expect(page).to_have_url(re.compile(r"/campaigns/\d+$"))
    campaign_id = int(page.url.rsplit("/", 1)[1])
    expect(page.locator(".flash-success")).to_contain_text("已创建草稿")
    page.get_by_role("button", name="提交审核").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("待审核")
    return campaign_id


def drafted_and_submitted(stack: Stack, author: str) -> int:
    """A submitted ferry campaign by `author`, made through the service layer."""
    rt = stack.rt
    with rt.sessions() as s:
        me = s.query(Staff).filter_by(name=author).one()
        view = actions.create(s, rt.settings, me, rt.now(), refs=["notice:n-ferry"],
                              audience=actions.Audience(topic="出行资讯", district="南安市"))
        actions.submit(s, rt.settings, me, view.id, rt.now())
        s.commit()
        return view.id


def test_compose_approve_in_a_second_browser_and_watch_delivery(stack: Stack, page: Page,
                                                                second: Page) -> None:
    editor = stack.account("eve", "editor")
    reviewer = stack.account("rita", "reviewer")
    # the simulator: one citizen has unfollowed (43004), one refuses messages (43101)
    gone, refusing = stack.citizens[0], stack.citizens[1]
    stack.sim.faults({"kind": "errcode", "api": "message/subscribe/bizsend", "errcode": 43004,
                      "errmsg": "require subscribe", "openids": [gone]})
    stack.sim.recipients(refused=[refusing])

    login(page, stack, editor)
    campaign_id = compose_ferry_campaign(page, stack, screenshots=True)
    detail = stack.at(f"/campaigns/{campaign_id}")

    # the author sees no approve button (an editor does not review)
    expect(page.get_by_role("button", name=APPROVE)).to_have_count(0)

    # the reviewer, in another browser, finds it in the review queue and approves it
    login(second, stack, reviewer)
    second.goto(stack.at("/campaigns/"))
    queue = second.get_by_role("region", name=re.compile("待我审核"))
    expect(queue).to_contain_text(TITLE)
    shot(second, "campaign-review-queue")
    queue.get_by_role("link", name=TITLE).click()
    expect(second).to_have_url(detail)
    expect(second.locator(".notice-card")).to_contain_text(TITLE)  # thing1 = the title
    review_hash = second.locator("#review-hash").inner_text()
    assert re.fullmatch(r"[0-9a-f]{64}", review_hash)
    shot(second, "campaign-review")
    second.get_by_role("button", name=APPROVE).click()
    expect(second.locator(".flash-success")).to_contain_text("已批准")
    with stack.rt.sessions() as s:
        c = s.get(Campaign, campaign_id)
        assert (c.approver, c.author, c.approved_hash) == ("rita", "eve", review_hash)

    # the delivery page, open before anything is sent, follows the sends by itself
    second.goto(stack.at(f"/campaigns/{campaign_id}/delivery"))
    sent = second.locator('#progress td[data-k="sent"]')
    expect(sent).to_have_text("0")
    expect(second.locator("#progress")).to_contain_text("每 3 秒自动刷新")
    stack.deliver(campaign_id)
    assert len(stack.sim.messages()) == len(stack.citizens) - 2
    expect(sent).to_have_text(str(len(stack.citizens) - 2), timeout=12_000)  # polled, no reload
    progress = second.locator("#progress")
    expect(progress.locator('td[data-k="failed"]')).to_have_text("2")
    expect(progress.locator("h2 .badge")).to_have_text("已完成")
    reasons = progress.locator("table.reasons")
    expect(reasons).to_contain_text("43004")
    expect(reasons).to_contain_text("43101")
    assert number_in(progress.locator('td[data-k="targeted"]').inner_text()) \
        == len(stack.citizens)
    # the charts (Chart.js from stats.json) catch up too
    second.wait_for_function(CHART_SUM, arg=["chart-minutes", len(stack.citizens) - 2],
                             timeout=15_000)
    second.wait_for_function(CHART_BARS, arg=["chart-reasons", 2])
    shot(second, "campaign-delivery")
    assert gone not in stack.sim.received() and refusing not in stack.sim.received()

    # the author's page now links to the delivery figures
    page.goto(detail)
    expect(page.get_by_role("heading", level=1)).to_contain_text("已完成")
    expect(page.get_by_role("link", name="发送情况")).to_be_visible()


def test_the_author_cannot_approve(stack: Stack, page: Page, second: Page) -> None:
    """An editor author: no button, and a forged POST (valid CSRF token and review hash) is
    refused. An admin author (admins may review): the page says another account must review,
    and the forged POST is refused by the service layer."""
    editor = stack.account("eve", "editor")
    login(page, stack, editor)
    campaign_id = compose_ferry_campaign(page, stack)
    review_hash = page.locator("#review-hash").inner_text()
    forged = page.request.post(stack.at(f"/campaigns/{campaign_id}/approve"),
                               form={"csrf_token": csrf_of(page), "expect": review_hash})
    assert forged.status == 403

    admin = stack.account("ada", "admin")
    own = drafted_and_submitted(stack, "ada")  # composing in the page is tested above
    login(second, stack, admin)
    second.goto(stack.at(f"/campaigns/{own}"))
    expect(second.get_by_role("heading", level=1)).to_contain_text("待审核")
    expect(second.get_by_role("button", name=APPROVE)).to_have_count(0)
    expect(second.get_by_text("须由其他账号审核")).to_be_visible()
    forged = second.request.post(stack.at(f"/campaigns/{own}/approve"),
                                 form={"csrf_token": csrf_of(second),
                                       "expect": second.locator("#review-hash").inner_text()})
    assert forged.status == 403
    assert "无权操作" in forged.text()
    with stack.rt.sessions() as s:
        assert {s.get(Campaign, cid).status for cid in (campaign_id, own)} == {"submitted"}
    assert stack.sim.messages() == []


def test_compose_form_without_csrf_token_is_refused(stack: Stack, page: Page) -> None:
    editor = stack.account("eve", "editor")
    login(page, stack, editor)
    page.goto(stack.at("/campaigns/new"))
    page.get_by_label("栏目").select_option("出行资讯")
    page.get_by_label("查找信息（标题或编号）").fill("停航")
    page.get_by_label(re.compile(FERRY)).check()
    page.evaluate("document.querySelector('#compose input[name=csrf_token]').remove()")
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.get_by_role("button", name="保存草稿").click()
    assert posted.value.status == 400
    expect(page.get_by_role("heading", level=1)).to_have_text("400 表单已失效")
    expect(page.locator("main")).to_contain_text("CSRF")
    with stack.rt.sessions() as s:
        assert s.query(Campaign).count() == 0
