"""Layout and live-refresh details found in the first browser run (issue 9, brief H7): a record
choice on the compose page is one line (checkbox beside its label, keyboard-usable); the
accounts page's action buttons stay inside their table cell, on a desktop and a 360 px phone;
the delivery page's start/finish times refresh with the progress fragment."""

from __future__ import annotations

import re

from playwright.sync_api import Locator, Page, expect

from bot.store.models import Staff
from push import actions
from push.jobs import enqueue_fanout
from tests.browser.conftest import DESKTOP, Stack, login, shot
from tests.browser.test_campaigns import FERRY, drafted_and_submitted

NARROW = {"width": 360, "height": 740}


def _box(loc: Locator) -> dict[str, float]:
    box = loc.bounding_box()
    assert box is not None, f"{loc} is not rendered"
    return box


def _inside(inner: dict[str, float], outer: dict[str, float], slack: float = 0.5) -> bool:
    return (inner["x"] >= outer["x"] - slack and inner["y"] >= outer["y"] - slack
            and inner["x"] + inner["width"] <= outer["x"] + outer["width"] + slack
            and inner["y"] + inner["height"] <= outer["y"] + outer["height"] + slack)


def test_record_checkbox_sits_beside_its_label_and_works_by_keyboard(stack: Stack,
                                                                     page: Page) -> None:
    login(page, stack, stack.account("eve", "editor"))
    page.goto(stack.at("/campaigns/new"))
    page.get_by_label("栏目").select_option("出行资讯")
    page.get_by_label("查找信息（标题或编号）").fill("停航")
    choice = page.locator("#record-list .record-choice")
    expect(choice).to_have_count(1)
    box = page.get_by_role("checkbox", name=re.compile(FERRY))
    label = choice.locator("label")
    b, lab = _box(box), _box(label)
    # one line: the checkbox's vertical middle lies within the label's first line, left of it
    middle = b["y"] + b["height"] / 2
    assert lab["y"] <= middle <= lab["y"] + 1.6 * 16 + 2, (b, lab)
    assert b["x"] + b["width"] <= lab["x"] + 0.5 or label.locator("input").count() == 1, (b, lab)
    # the keyboard: focus the checkbox, Space ticks it, the preview follows
    box.focus()
    page.keyboard.press("Space")
    expect(box).to_be_checked()
    expect(page.locator("#preview-box .notice-card")).to_contain_text(FERRY)


def test_account_actions_stay_inside_their_cell(stack: Stack, page: Page) -> None:
    login(page, stack, stack.account("ada", "admin"))
    for name in ("bob", "carol"):
        stack.account(name, "editor")
    page.goto(stack.at("/accounts"))
    rows = page.locator("table.accounts tbody tr")
    expect(rows).to_have_count(3)
    for size in (DESKTOP, NARROW):
        page.set_viewport_size(size)
        for i in range(rows.count()):
            row = rows.nth(i)
            cell = row.locator("td.actions")
            cell_box, row_box = _box(cell), _box(row)
            # a real table cell: it fills its row (a flex <td> floats inside it, with gaps)
            assert cell.evaluate("td => getComputedStyle(td).display") == "table-cell"
            assert abs(cell_box["y"] - row_box["y"]) <= 1, (size, cell_box, row_box)
            assert abs(cell_box["height"] - row_box["height"]) <= 1, (size, cell_box, row_box)
            for button in cell.locator("button").all():
                assert _inside(_box(button), cell_box), (size, _box(button), cell_box)
        if size is NARROW:
            shot(page, "accounts-phone")
    page.set_viewport_size(DESKTOP)


def test_delivery_times_refresh_with_the_progress(stack: Stack, page: Page) -> None:
    editor = stack.account("eve", "editor")
    stack.account("rita", "reviewer")
    campaign_id = drafted_and_submitted(stack, "eve")
    login(page, stack, editor)
    page.goto(stack.at(f"/campaigns/{campaign_id}/delivery"))
    progress = page.locator("#progress")
    expect(progress).to_contain_text("开始 — · 结束 —")
    rt = stack.rt
    with rt.sessions() as s:
        rita = s.query(Staff).filter_by(name="rita").one()
        result = actions.approve(s, rt.settings, rita, campaign_id, rt.now())
        s.commit()
    enqueue_fanout(rt, campaign_id, at=result.fan_out.at)
    stack.deliver(campaign_id)
    # no reload: the polled fragment carries the times and the status
    expect(progress.locator("h2 .badge")).to_have_text("已完成", timeout=12_000)
    times = progress.locator(".times")
    expect(times).to_have_text(re.compile(r"开始 2026-11-27 10:\d\d\s+· 结束 2026-11-27 10:\d\d"))
    expect(times.locator("time")).to_have_count(2)
    assert re.fullmatch(r"2026-11-27T10:\d\d:\d\d\+08:00",
                        times.locator("time").first.get_attribute("datetime") or "")
