"""The browser harness itself: chromium starts, the live console answers on loopback, its
vendored scripts load under the strict CSP (no violation, htmx present), Chinese renders with
a CJK font, and the simulator and citizen app are wired to the same runtime."""

from __future__ import annotations

from playwright.sync_api import Page

from tests.browser.conftest import Stack


def test_console_serves_pages_under_its_csp(stack: Stack, page: Page) -> None:
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    resp = page.goto(stack.at("/"))
    assert resp is not None
    assert resp.headers["content-security-policy"].startswith("default-src 'self'")
    assert resp.headers["x-frame-options"] == "DENY"
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert page.evaluate("typeof window.htmx") == "object", "vendored htmx did not load"
    # a CSP violation is reported on the console as an error; there must be none
    csp = [p for p in problems if "Content Security Policy" in p]
    assert not csp, csp


def test_chinese_text_has_a_cjk_font(page: Page) -> None:
    """A CJK glyph must be as wide as 1 em; with no CJK font chromium draws tofu boxes of
    another width (narrow replacement glyphs)."""
    page.set_content('<html lang="zh-CN"><body><span id="t" '
                     'style="font-size:40px">泉州交通运输</span></body></html>')
    width = page.evaluate("document.getElementById('t').getBoundingClientRect().width")
    assert 230 <= width <= 250, f"6 CJK glyphs at 40 px are {width} px wide: no CJK font?"
    fonts = page.evaluate("document.fonts.check('40px \"WenQuanYi Micro Hei\"')")
    assert fonts, "fonts-wqy-microhei is not installed (apt-get install fonts-wqy-microhei)"


def test_citizen_app_and_simulator_share_the_runtime(stack: Stack) -> None:
    reply = stack.citizen.text("12328")
    assert "12328" in reply
    assert stack.sim.messages() == []
    assert len(stack.citizens) > 0
