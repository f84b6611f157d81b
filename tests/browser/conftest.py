"""Browser tests: Playwright drives Debian's chromium against a live console on loopback.

What runs, per test (function scope, so tests stay independent; ~0.5 s to build):
- a runtime on a fresh SQLite file (a copy of the migrated template) and the real Redis at
  QZBOT_TEST_REDIS_URL (flushed). Browser tests stay SQLite-only on purpose: the data layer
  and every service function run on SQLite *and* PostgreSQL in the other test modules; here
  the subject is the pages, the browser and the wiring between them;
- the small test pack loaded, and a few citizens who follow and subscribe to 出行资讯;
- the WeChat API simulator (wechatsim) on a loopback port; [wechat] api_base_url points at it;
- the console app (`create_console_app(runtime=...)`) served by werkzeug's threaded server on
  127.0.0.1:<free port>, [console] secure_cookies = false (plain http on loopback);
- the citizen webhook app in-process, talked to with tests/wx.py's WeChat stand-in, so a test
  can ask a question before and after a record is published;
- casework (issue 10): [cases] upload_dir in the test's tmp_path; `add_department` and
  `caseworker` (an account with casework roles and a department) set casework up;
- push delivery: approving in the browser enqueues the fan-out (the view does it after its
  commit); `Stack.deliver(campaign_id)` then runs burst RQ SimpleWorkers in this process
  (tests/pushkit.drain), which send to the simulator.

The clock starts at the suite's pinned instant (2026-11-27 10:00 Asia/Shanghai, so the pack's
dated records behave as elsewhere) and then ticks in real time, so idle timeouts and
auto-refresh behave as they would in production.

chromium: `playwright install` cannot download here, so `browser_type_launch_args` points
Playwright at the distribution's chromium (`apt-get install chromium fonts-wqy-microhei`;
scripts/dev test and .ci/run install them). A missing chromium is an error, not a skip.

Screenshots of the main pages are written to tests/browser/artifacts/ (gitignored), full page,
1280 px wide, and the compose page also at 390x844 (a phone).

Run: `scripts/dev test tests/browser` (installs chromium and the font as root if missing), or
`QZBOT_TEST_REDIS_URL=redis://127.0.0.1:6379/N .venv/bin/python -m pytest tests/browser`;
`--headed --slowmo 300` to watch (needs a display). The suite takes about a minute.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyotp
import pytest
from argon2 import PasswordHasher
from flask import Flask
from playwright.sync_api import Browser, BrowserContext, Page, expect
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from bot.jobs import use_runtime
from bot.runtime import Runtime, build_runtime
from bot.store.models import Staff
from cases import actions as case_actions
from console import create_console_app
from push import accounts as push_accounts
from push.accounts import encrypt_secret, hash_password
from tests.conftest import NOW, load_pack, make_settings
from tests.consolekit import make_staff
from tests.pushkit import RATES, add_follower, drain, grant, oid, subscribe
from tests.wx import WeChat

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
PASSWORD = "Qz-browser-test-pw-2026!"  # every test account's password
TIMEOUT_MS = 10_000  # Playwright's per-action/assertion timeout: a loopback page is fast
TEMPLATES = {
    "出行资讯": {"template_id": "TPL_TRAVEL", "channel": "subscribe", "long_term": True,
             "fields": {"thing1": "title", "time2": "date", "thing3": "district"}},
    "项目进展": {"template_id": "TPL_PROJECT", "channel": "subscribe", "long_term": True,
             "fields": {"thing1": "title", "thing2": "summary"}},
}
CITIZENS = 12  # subscribers of 出行资讯 (南安市) with long-term consent


# --- the browser ---------------------------------------------------------------------------


def chromium_path() -> str:
    """Debian's chromium, or a clear failure (the browser tests never skip)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None and os.path.exists("/usr/bin/chromium"):
        found = "/usr/bin/chromium"
    if found is None:
        pytest.fail("The browser tests need Debian's chromium and a CJK font: as root run "
                    "`apt-get install chromium fonts-wqy-microhei` (scripts/dev test does it). "
                    "`playwright install` cannot download here.", pytrace=False)
    return found


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """pytest-playwright's launch options plus Debian's chromium, headless; --no-sandbox as
    root (chromium refuses its sandbox as root in a container)."""
    args = list(browser_type_launch_args.get("args", []))
    if os.geteuid() == 0:
        args.append("--no-sandbox")
    return {**browser_type_launch_args, "executable_path": chromium_path(),
            "headless": browser_type_launch_args.get("headless", True), "args": args}


@pytest.fixture(scope="session")
def base_url() -> None:
    """No base URL: every test navigates with `stack.at(path)` (the console's port is chosen
    per test). Overrides pytest-playwright 0.10's own `base_url`, a session fixture written as
    an instance method, which pytest 9 deprecates (a warning, i.e. an error under our
    filterwarnings = error)."""
    return None


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    """Every context: desktop size, Chinese locale, Shanghai time."""
    return {**browser_context_args, "viewport": DESKTOP, "locale": "zh-CN",
            "timezone_id": "Asia/Shanghai"}


@pytest.fixture(scope="session", autouse=True)
def _artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def shot(page: Page, name: str) -> Path:
    """A full-page PNG of the current page in tests/browser/artifacts/<name>.png."""
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


# --- the live stack ------------------------------------------------------------------------


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:  # noqa: D102 - no access log
        pass


class ConsoleServer:
    """The console app served by werkzeug's threaded server from a daemon thread."""

    def __init__(self, app: Flask) -> None:
        self.server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True,
                                                  request_handler=_Quiet)
        self.url = f"http://127.0.0.1:{self.server.port}"
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05},
                                       name=f"console:{self.server.port}", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@dataclass
class Account:
    """A console account a test logs in with."""

    id: int
    name: str
    role: str
    password: str = PASSWORD
    totp_secret: str | None = None

    def code(self, rt: Runtime) -> str:
        """The TOTP code the console expects now (its clock is the runtime's)."""
        assert self.totp_secret, f"{self.name} has no TOTP secret"
        return pyotp.TOTP(self.totp_secret).at(rt.now())


class TickingClock:
    """Starts at `start` and advances with real time."""

    def __init__(self, start: datetime) -> None:
        self.start = start
        self.t0 = time.monotonic()

    def __call__(self) -> datetime:
        return self.start + timedelta(seconds=time.monotonic() - self.t0)


@dataclass
class Stack:
    """Everything a browser test talks to."""

    rt: Runtime
    url: str
    console: Flask
    sim: Any  # tests.pushkit.Sim
    citizen: WeChat
    citizens: list[str] = field(default_factory=list)

    def at(self, path: str) -> str:
        """An absolute console URL."""
        return self.url + path

    def account(self, name: str, role: str, *, totp: bool | None = None,
                enrolled: bool = True) -> Account:
        """An account with PASSWORD. TOTP: a secret for the roles that need one ([console]
        totp_required_roles) or when `totp` is true; `enrolled=False` leaves it to enrol at
        the first login. Written as test setup (pushkit style); the account pages
        themselves are what test_login/test_accounts exercise."""
        if totp is None:
            totp = role in self.rt.settings.console.totp_required_roles
        staff = make_staff(self.rt, name, role)
        secret = pyotp.random_base32(32) if totp and enrolled else None
        with self.rt.sessions() as s:
            row = s.get(Staff, staff.id)
            row.password_hash = hash_password(PASSWORD)
            row.must_change_password = False
            if secret:
                row.totp_secret = encrypt_secret(self.rt.settings.security.secret_key,
                                                 row.id, secret)
                row.totp_enabled = True
            s.commit()
        return Account(id=staff.id, name=name, role=role, totp_secret=secret)

    def deliver(self, campaign_id: int, timeout: float = 30.0) -> None:
        """Run the push queue (burst RQ workers in this process) until the campaign is sent."""
        drain(self.rt, campaign_id, timeout)


def seed_citizens(rt: Runtime, n: int = CITIZENS) -> list[str]:
    """n followers subscribed to 出行资讯 in 南安市 with long-term consent to TPL_TRAVEL."""
    now = rt.now()
    openids = [oid(i) for i in range(n)]
    with rt.sessions() as s:
        for o in openids:
            add_follower(s, o)
            subscribe(s, o, now, topic="出行资讯", district="南安市")
            grant(s, o, now)
        s.commit()
    return openids


@pytest.fixture
def stack(sqlite_template, tmp_path, redis_client, sim, make_app,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    """The live stack of this module's docstring.

    Passwords are hashed with a cheap argon2id here (8 MiB, 1 pass instead of the production
    OWASP profile of push.accounts.HASHER, 19 MiB, 2 passes): the real parameters cost tens of
    milliseconds per account and login on a busy machine, and the KDF's parameters are not
    what a browser test is about (the account tests check them). The login code path is the
    same (push.accounts.HASHER)."""
    monkeypatch.setattr(push_accounts, "HASHER",
                        PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1))
    path = tmp_path / "qzbot.sqlite3"
    shutil.copy(sqlite_template, path)
    settings = make_settings(
        f"sqlite:///{path}",
        wechat={"api_base_url": sim.url, "api_timeout_seconds": 2},
        console={"secure_cookies": False},
        cases={"upload_dir": str(tmp_path / "case_files")},
        push={"templates": TEMPLATES, "rate_limits": RATES, "batch_size": 50,
              "concurrency": 4, "lease_seconds": 3})
    rt = build_runtime(settings, redis_client=redis_client, clock=TickingClock(NOW))
    rt.claim_process()  # jobs run in this very process (burst SimpleWorkers)
    use_runtime(rt)
    load_pack(rt)
    citizens = seed_citizens(rt)
    citizen_app = make_app(runtime=rt)
    console = create_console_app(runtime=rt)
    server = ConsoleServer(console)
    try:
        yield Stack(rt=rt, url=server.url, console=console, sim=sim,
                    citizen=WeChat(citizen_app), citizens=citizens)
    finally:
        server.stop()
        use_runtime(None)
        rt.clients.close()
        rt.close()


@pytest.fixture(autouse=True)
def _timeouts(context: BrowserContext) -> None:
    """Fail fast: a loopback console answers in milliseconds."""
    context.set_default_timeout(TIMEOUT_MS)
    context.set_default_navigation_timeout(TIMEOUT_MS)
    expect.set_options(timeout=TIMEOUT_MS)


@pytest.fixture
def second(browser: Browser, browser_context_args: dict[str, Any]) -> Iterator[Page]:
    """A page in a SECOND browser context (another person's browser: own cookies)."""
    ctx = browser.new_context(**browser_context_args)
    ctx.set_default_timeout(TIMEOUT_MS)
    try:
        yield ctx.new_page()
    finally:
        ctx.close()


# --- casework (issue 10): departments and casework roles as test setup -----------------------


def _an_admin(s: Any, rt: Runtime) -> Staff:
    """An active admin row to set casework up with (one is made, without a login, if none)."""
    with rt.sessions() as look:
        found = look.query(Staff.id).filter_by(role="admin", active=True).first()
    admin_id = found[0] if found else make_staff(rt, "case-admin", "admin").id
    return s.get(Staff, admin_id)


def add_department(stack: Stack, name: str) -> int:
    """A department (cases.actions.add_department as an admin); its id."""
    with stack.rt.sessions() as s:
        department = case_actions.add_department(s, _an_admin(s, stack.rt), name,
                                                 stack.rt.now())
        s.commit()
        return department.id


def caseworker(stack: Stack, name: str, role: str, case_roles: tuple[str, ...],
               department_id: int | None = None) -> Account:
    """`stack.account(name, role)` holding casework roles (registrar, handler, office_head)
    and a department (cases.actions.set_case_roles as an admin): set-up, not under test (the
    roles page has its own tests)."""
    account = stack.account(name, role)
    with stack.rt.sessions() as s:
        case_actions.set_case_roles(s, _an_admin(s, stack.rt), name, case_roles,
                                    department_id, stack.rt.now())
        s.commit()
    return account


def staff_row(rt: Runtime, name: str) -> Staff:
    """A fresh, detached copy of a staff row."""
    with rt.sessions() as s:
        staff = s.query(Staff).filter_by(name=name).one()
        s.expunge(staff)
        return staff


def number_in(text: str) -> int:
    """The first integer in `text` (e.g. "已发送 12 条" -> 12)."""
    match = re.search(r"\d+", text.replace(",", ""))
    assert match, f"no number in {text!r}"
    return int(match.group())


# --- page helpers ---------------------------------------------------------------------------


def login(page: Page, stack: Stack, account: Account, *, screenshots: str | None = None) -> None:
    """Log in through the forms (name + password, then the TOTP code if the account has one)
    and land on the home page. `screenshots`: a prefix to save the login pages under."""
    page.goto(stack.at("/login"))
    page.get_by_label("账号", exact=True).fill(account.name)
    page.get_by_label("密码", exact=True).fill(account.password)
    if screenshots:
        shot(page, f"{screenshots}-login")
    page.get_by_role("button", name="登录", exact=True).click()
    if account.totp_secret:
        expect(page).to_have_url(re.compile(r"/login/totp$"))
        page.get_by_label("验证码（6 位数字）").fill(account.code(stack.rt))
        if screenshots:
            shot(page, f"{screenshots}-totp")
        page.get_by_role("button", name="验证", exact=True).click()
    expect(page).to_have_url(stack.at("/"))
    expect(page.locator("header .me")).to_contain_text(account.name)


def csrf_of(page: Page) -> str:
    """The CSRF token of the page's session (from <meta name=csrf-token>)."""
    token = page.locator('meta[name="csrf-token"]').get_attribute("content")
    assert token
    return token
