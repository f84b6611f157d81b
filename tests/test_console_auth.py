"""Console login through its forms: password, TOTP, forced steps, lockout, sessions, cookies,
and the credential building blocks (argon2id, policy, TOTP secrets at rest, replay)."""

from __future__ import annotations

import re
import socket
import time
from datetime import timedelta

import pyotp
import pytest
import redis
from sqlalchemy import select

from bot.store.models import AuditEntry, Staff
from console.auth import SEEN
from push import accounts, actions
from tests.consolekit import console_app, csrf_token, login, make_staff

PASSWORD = "Correct-horse-42"
LOCKED = "登录失败次数过多"
SETTINGS_OVERRIDES = {"console": {"login_max_failures": 3, "lockout_minutes": 15}}


# --- helpers ---------------------------------------------------------------------------


def with_password(runtime, name: str, role: str = "editor", password: str = PASSWORD) -> Staff:
    """An account with a console password it chose itself (no forced change)."""
    staff = make_staff(runtime, name, role)
    with runtime.sessions() as session:
        me = session.get(Staff, staff.id)
        actions.set_password(session, me, name, password, runtime.now())
        session.commit()
        session.refresh(me)
        session.expunge(me)
        return me


def with_totp(runtime, name: str, role: str = "reviewer") -> tuple[Staff, str]:
    """An account with a password and TOTP enabled; returns it and the TOTP secret."""
    staff = with_password(runtime, name, role)
    secret = accounts.new_totp_secret()
    with runtime.sessions() as session:
        me = session.get(Staff, staff.id)
        me.totp_secret = accounts.encrypt_secret(runtime.settings.security.secret_key, me.id,
                                                 secret)
        me.totp_enabled = True
        session.commit()
        session.refresh(me)
        session.expunge(me)
        return me, secret


def code(secret: str, runtime, offset_seconds: int = 0) -> str:
    return pyotp.TOTP(secret).at(runtime.now() + timedelta(seconds=offset_seconds))


def client_at(app, address: str):
    """A test client whose requests come from `address`."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def post_login(client, name: str, password: str, **kw):
    token = csrf_token(client, "/login")
    return client.post("/login", data={"csrf_token": token, "name": name,
                                       "password": password}, **kw)


def post_code(client, path: str, value: str):
    token = csrf_token(client, path)
    return client.post(path, data={"csrf_token": token, "code": value})


def actions_of(runtime, action: str) -> list[AuditEntry]:
    with runtime.sessions() as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.action == action)
                                    .order_by(AuditEntry.id)))


def text(resp) -> str:
    return resp.get_data(as_text=True)


def logged_in(client) -> bool:
    return client.get("/").status_code == 200


# --- building blocks ----------------------------------------------------------------------


def test_passwords_are_argon2id_and_the_policy_refuses_weak_ones():
    stored = accounts.hash_password(PASSWORD)
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert accounts.verify_password(stored, PASSWORD)
    assert not accounts.verify_password(stored, PASSWORD + "x")
    assert not accounts.verify_password(None, PASSWORD)  # unknown account: dummy hash
    assert not accounts.needs_rehash(stored)
    assert accounts.needs_rehash("$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo")
    assert accounts.password_problems("short1A", "li")  # too short
    assert accounts.password_problems("wangwei-2026-ok", "wangwei")  # contains the name
    assert accounts.password_problems("abcdefghijklmnop", "li")  # one class only
    assert accounts.password_problems("1234567890123", "li")
    assert accounts.password_problems("交通运输局局长交通运输局局长", "li")  # one class
    assert accounts.password_problems(PASSWORD, "li") == []
    assert accounts.password_problems("交通运输2026年度口令", "li") == []
    temp = accounts.temporary_password()
    assert accounts.password_problems(temp, "王伟") == [] and len(temp) == 16
    assert accounts.password_problems("Reliable-pass-9", "li") == []  # short names: equality
    assert accounts.password_problems("li", "li")


def test_unknown_name_costs_a_real_argon2_verification(monkeypatch):
    calls = []
    real = accounts.HASHER

    class Counting:
        def __getattr__(self, name):
            return getattr(real, name)

        def verify(self, stored, password):
            calls.append(stored)
            return real.verify(stored, password)

    monkeypatch.setattr(accounts, "HASHER", Counting())
    assert not accounts.verify_password(None, "whatever")
    assert len(calls) == 1 and calls[0].startswith("$argon2id$")


def test_totp_secret_is_encrypted_at_rest_and_bound_to_its_row():
    secret = accounts.new_totp_secret()
    sealed = accounts.encrypt_secret("k" * 40, 7, secret)
    assert secret not in sealed and sealed.startswith("v1:")
    assert accounts.decrypt_secret("k" * 40, 7, sealed) == secret
    assert accounts.decrypt_secret("k" * 40, 8, sealed) is None  # copied onto another row
    assert accounts.decrypt_secret("other" * 8, 7, sealed) is None  # another key
    tampered = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    assert accounts.decrypt_secret("k" * 40, 7, tampered) is None
    uri = accounts.provisioning_uri(secret, "li")
    assert uri.startswith("otpauth://totp/") and "issuer=%E6%B3%89%E5%B7%9E" in uri
    assert accounts.qr_data_uri(uri).startswith("data:image/svg+xml")


def test_totp_window_and_each_step_once(runtime):
    secret = accounts.new_totp_secret()
    now = runtime.now()
    r = runtime.redis
    assert accounts.matching_step(secret, code(secret, runtime, -30), now) is not None
    assert accounts.matching_step(secret, code(secret, runtime, 30), now) is not None
    assert accounts.matching_step(secret, code(secret, runtime, 90), now) is None
    assert accounts.matching_step(secret, "12345", now) is None
    assert accounts.verify_totp(r, 1, secret, code(secret, runtime), now)
    assert not accounts.verify_totp(r, 1, secret, code(secret, runtime), now)  # replay
    assert not accounts.verify_totp(r, 1, secret, code(secret, runtime, -30), now)  # older
    assert accounts.verify_totp(r, 2, secret, code(secret, runtime), now)  # per account
    assert 0 < r.ttl(f"{accounts.PREFIX}totp:1") <= 120


# --- login ---------------------------------------------------------------------------------


def test_password_login_for_an_editor(runtime):
    staff = with_password(runtime, "wang")
    client = console_app(runtime).test_client()
    assert client.get("/").status_code == 302  # a browser is sent to the login page
    assert "/login" in client.get("/").headers["Location"]
    page = text(client.get("/login"))
    for needle in ('name="name"', 'name="password"', 'name="csrf_token"', '<label for="name"',
                   '<label for="password"'):
        assert needle in page
    resp = post_login(client, "wang", PASSWORD)
    assert resp.status_code == 302 and resp.headers["Location"] == "/"
    assert "您好，wang" in text(client.get("/"))
    [entry] = actions_of(runtime, "console_login")
    assert (entry.actor, entry.object_type, entry.object_id) == ("wang", "staff", "wang")
    assert PASSWORD not in str(entry.detail)
    with runtime.sessions() as session:
        assert session.get(Staff, staff.id).last_login_at is not None


def test_login_returns_to_the_page_asked_for_but_never_off_site(runtime):
    with_password(runtime, "wang")
    client = console_app(runtime).test_client()
    first = client.get("/account")
    assert first.status_code == 302 and first.headers["Location"] == "/login?next=/account"
    token = csrf_token(client, "/login")
    resp = client.post("/login?next=/account", data={"csrf_token": token, "name": "wang",
                                                      "password": PASSWORD})
    assert resp.headers["Location"] == "/account"
    client = console_app(runtime).test_client()
    token = csrf_token(client, "/login")
    resp = client.post("/login?next=//evil.example/x", data={
        "csrf_token": token, "name": "wang", "password": PASSWORD})
    assert resp.headers["Location"] == "/"
    for sneaky in ("/\t/evil.example/x", "/\n/evil.example", "/%09/evil.example".replace(
            "%09", "\x0b"), "https://evil.example/", "/\\evil.example"):
        client = console_app(runtime).test_client()
        token = csrf_token(client, "/login")
        resp = client.post("/login", query_string={"next": sneaky}, data={
            "csrf_token": token, "name": "wang", "password": PASSWORD})
        assert resp.headers["Location"] == "/", sneaky  # browsers drop tabs: "//evil"


def test_wrong_password_and_unknown_name_get_the_same_answer(runtime):
    with_password(runtime, "wang")
    client = console_app(runtime).test_client()
    wrong = post_login(client, "wang", "Wrong-password-1")
    unknown = post_login(client, "nobody-here", "Wrong-password-1")
    assert wrong.status_code == unknown.status_code == 401
    assert "账号或密码错误" in text(wrong) and "账号或密码错误" in text(unknown)
    assert not logged_in(client)
    failures = actions_of(runtime, "console_login_failed")
    assert [f.detail["reason"] for f in failures] == ["wrong_password", "unknown_name"]
    assert failures[1].actor == actions.ANONYMOUS
    assert all("Wrong-password" not in str(f.detail) for f in failures)


def test_disabled_account_cannot_log_in(runtime):
    with_password(runtime, "wang")
    admin = make_staff(runtime, "boss", "admin")
    with runtime.sessions() as session:
        actions.disable_account(session, session.get(Staff, admin.id), "wang", runtime.now())
        session.commit()
    client = console_app(runtime).test_client()
    resp = post_login(client, "wang", PASSWORD)
    assert resp.status_code == 401 and "账号或密码错误" in text(resp)


def test_login_form_without_csrf_token_is_refused(runtime):
    with_password(runtime, "wang")
    client = console_app(runtime).test_client()
    client.get("/login")
    resp = client.post("/login", data={"name": "wang", "password": PASSWORD})
    assert resp.status_code == 400 and "CSRF" in text(resp)
    assert not logged_in(client)


def test_session_is_renewed_at_login(runtime):
    """Session fixation: whatever the session held before the login is gone after it."""
    with_password(runtime, "wang")
    client = console_app(runtime).test_client()
    with client.session_transaction() as sess:
        sess["planted"] = "by-attacker"
    post_login(client, "wang", PASSWORD)
    with client.session_transaction() as sess:
        assert "planted" not in sess and sess["_user_id"].endswith(":1")


def test_cookie_flags(runtime):
    with_password(runtime, "wang")
    client = console_app(runtime).test_client()
    resp = post_login(client, "wang", PASSWORD)
    cookie = next(c for c in resp.headers.getlist("Set-Cookie") if c.startswith("qzc_session="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie
    runtime.settings = runtime.settings.replace(console={"secure_cookies": False})
    client = console_app(runtime).test_client()
    resp = post_login(client, "wang", PASSWORD)
    cookie = next(c for c in resp.headers.getlist("Set-Cookie") if c.startswith("qzc_session="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie


def test_logout_ends_the_session_and_is_audited(runtime):
    with_password(runtime, "wang")
    client = console_app(runtime).test_client()
    post_login(client, "wang", PASSWORD)
    token = csrf_token(client, "/")
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert not logged_in(client)
    [entry] = actions_of(runtime, "console_logout")
    assert entry.actor == "wang" and entry.object_id == "wang"


def test_logout_needs_csrf(runtime):
    with_password(runtime, "wang")
    client = console_app(runtime).test_client()
    post_login(client, "wang", PASSWORD)
    assert client.post("/logout").status_code == 400
    assert logged_in(client)


# --- TOTP ------------------------------------------------------------------------------------


def test_totp_login_happy_path(runtime):
    _, secret = with_totp(runtime, "li", "reviewer")
    client = console_app(runtime).test_client()
    resp = post_login(client, "li", PASSWORD)
    assert resp.status_code == 302 and resp.headers["Location"] == "/login/totp"
    assert not logged_in(client)  # half logged in: no page yet
    page = text(client.get("/login/totp"))
    assert 'name="code"' in page and '<label for="code"' in page
    resp = post_code(client, "/login/totp", code(secret, runtime))
    assert resp.status_code == 302 and resp.headers["Location"] == "/"
    assert logged_in(client)
    [entry] = actions_of(runtime, "console_login")
    assert entry.detail["totp"] is True


def test_wrong_totp_is_refused_and_audited(runtime):
    _, secret = with_totp(runtime, "li", "reviewer")
    client = console_app(runtime).test_client()
    post_login(client, "li", PASSWORD)
    right = code(secret, runtime)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    resp = post_code(client, "/login/totp", wrong)
    assert resp.status_code == 401 and "验证码错误" in text(resp)
    assert not logged_in(client)
    [entry] = actions_of(runtime, "console_totp_failed")
    assert entry.actor == "li" and wrong not in str(entry.detail)


def test_a_totp_step_is_accepted_only_once(runtime):
    _, secret = with_totp(runtime, "li", "reviewer")
    app = console_app(runtime)
    first = app.test_client()
    post_login(first, "li", PASSWORD)
    used = code(secret, runtime)
    assert post_code(first, "/login/totp", used).headers["Location"] == "/"
    second = app.test_client()  # someone who saw the code over a shoulder
    post_login(second, "li", PASSWORD)
    resp = post_code(second, "/login/totp", used)
    assert resp.status_code == 401 and not logged_in(second)
    runtime.clock.now = runtime.now() + timedelta(seconds=30)  # the next code is fine
    assert post_code(second, "/login/totp", code(secret, runtime)).headers["Location"] == "/"


def test_the_half_login_expires_after_five_minutes(runtime):
    _, secret = with_totp(runtime, "li", "reviewer")
    client = console_app(runtime).test_client()
    post_login(client, "li", PASSWORD)
    runtime.clock.now = runtime.now() + timedelta(minutes=6)
    resp = client.get("/login/totp")
    assert resp.status_code == 302 and resp.headers["Location"] == "/login"
    assert "登录已超时" in text(client.get("/login"))


def test_the_totp_step_cannot_be_skipped(runtime):
    with_totp(runtime, "li", "reviewer")
    client = console_app(runtime).test_client()
    post_login(client, "li", PASSWORD)
    for path in ("/", "/account", "/accounts"):
        assert client.get(path).status_code == 302
    # nor by the enrolment page: it sends the account back to its due step
    assert client.get("/account/totp").headers["Location"] == "/login/totp"
    assert client.get("/account/password").headers["Location"] == "/login/totp"


def test_reviewer_without_totp_must_enrol_first(runtime):
    with_password(runtime, "li", "reviewer")
    client = console_app(runtime).test_client()
    resp = post_login(client, "li", PASSWORD)
    assert resp.headers["Location"] == "/account/totp"
    assert client.get("/").status_code == 302  # the only reachable page is the enrolment
    page = text(client.get("/account/totp"))
    assert 'src="data:image/svg+xml' in page and "otpauth://totp/" in page
    secret = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', page).group(1).replace(" ", "")
    assert text(client.get("/account/totp")).count(secret[:4]) >= 1  # same secret on reload
    right = code(secret, runtime)
    bad = post_code(client, "/account/totp", f"{(int(right) + 7) % 1_000_000:06d}")
    assert bad.status_code == 400 and "验证码错误" in text(bad)
    resp = post_code(client, "/account/totp", right)
    assert resp.headers["Location"] == "/" and logged_in(client)
    with runtime.sessions() as session:
        li = session.scalar(select(Staff).where(Staff.name == "li"))
        assert li.totp_enabled and secret not in li.totp_secret
    assert actions_of(runtime, "staff_totp_enable")[0].object_id == "li"
    # next login asks for a code, and the enrolment code's step is used up
    again = console_app(runtime).test_client()
    assert post_login(again, "li", PASSWORD).headers["Location"] == "/login/totp"
    assert post_code(again, "/login/totp", right).status_code == 401


def test_editor_may_enrol_totp_voluntarily(runtime):
    with_password(runtime, "wang", "editor")
    client = console_app(runtime).test_client()
    post_login(client, "wang", PASSWORD)
    page = text(client.get("/account/totp"))
    secret = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', page).group(1).replace(" ", "")
    resp = post_code(client, "/account/totp", code(secret, runtime))
    assert resp.headers["Location"] == "/account"
    assert "已启用" in text(client.get("/account"))


def test_must_change_password_flow(runtime):
    make_staff(runtime, "wang", "editor")
    admin = make_staff(runtime, "boss", "admin")
    with runtime.sessions() as session:
        temp = actions.reset_password(session, session.get(Staff, admin.id), "wang",
                                      runtime.now()).password
        session.commit()
    client = console_app(runtime).test_client()
    resp = post_login(client, "wang", temp)
    assert resp.headers["Location"] == "/account/password"
    assert client.get("/").status_code == 302
    assert "临时密码" in text(client.get("/account/password"))
    token = csrf_token(client, "/account/password")
    weak = client.post("/account/password", data={
        "csrf_token": token, "old_password": temp, "new_password": "short",
        "confirm": "short"})
    assert weak.status_code == 400 and "至少 12 个字符" in text(weak)
    resp = client.post("/account/password", data={
        "csrf_token": token, "old_password": temp, "new_password": PASSWORD,
        "confirm": PASSWORD})
    assert resp.headers["Location"] == "/" and logged_in(client)
    fresh = console_app(runtime).test_client()
    assert post_login(fresh, "wang", temp).status_code == 401  # the temporary one is gone
    assert post_login(fresh, "wang", PASSWORD).headers["Location"] == "/"
    assert actions_of(runtime, "staff_password_change")[0].object_id == "wang"


def test_reviewer_with_temporary_password_changes_it_then_enrols(runtime):
    make_staff(runtime, "li", "reviewer")
    admin = make_staff(runtime, "boss", "admin")
    with runtime.sessions() as session:
        temp = actions.reset_password(session, session.get(Staff, admin.id), "li",
                                      runtime.now()).password
        session.commit()
    client = console_app(runtime).test_client()
    assert post_login(client, "li", temp).headers["Location"] == "/account/password"
    token = csrf_token(client, "/account/password")
    resp = client.post("/account/password", data={
        "csrf_token": token, "old_password": temp, "new_password": PASSWORD,
        "confirm": PASSWORD})
    assert resp.headers["Location"] == "/account/totp"
    assert not logged_in(client)


def test_own_password_change_needs_the_old_one_and_ends_other_sessions(runtime):
    with_password(runtime, "wang")
    app = console_app(runtime)
    other, here = app.test_client(), app.test_client()
    post_login(other, "wang", PASSWORD)
    post_login(here, "wang", PASSWORD)
    token = csrf_token(here, "/account/password")
    bad = here.post("/account/password", data={
        "csrf_token": token, "old_password": "not-the-old-one", "new_password": "New-pass-2026x",
        "confirm": "New-pass-2026x"})
    assert bad.status_code == 400 and "原密码不正确" in text(bad)
    resp = here.post("/account/password", data={
        "csrf_token": token, "old_password": PASSWORD, "new_password": "New-pass-2026x",
        "confirm": "New-pass-2026x"})
    assert resp.headers["Location"] == "/account"
    assert logged_in(here) and not logged_in(other)


# --- lockout -------------------------------------------------------------------------------


def test_lockout_per_account(runtime):
    with_password(runtime, "wang")
    app = console_app(runtime)
    for i in range(2):
        client = client_at(app, f"10.0.0.{i + 1}")
        assert post_login(client, "wang", "Wrong-password-1").status_code == 401
    client = client_at(app, "10.0.0.3")
    third = post_login(client, "wang", "Wrong-password-1")
    assert third.status_code == 429 and LOCKED in text(third) and "15 分钟" in text(third)
    right = post_login(client_at(app, "10.0.0.4"),
                       "wang", PASSWORD)
    assert right.status_code == 429 and LOCKED in text(right)  # even the right password
    assert actions_of(runtime, "console_lockout")[0].object_id == "wang"
    assert actions_of(runtime, "console_login_locked")
    keys = runtime.redis.keys(f"{accounts.PREFIX}lock:*")
    assert keys and all(0 < runtime.redis.ttl(k) <= 15 * 60 for k in keys)


def test_lockout_per_address(runtime):
    with_password(runtime, "wang")
    app = console_app(runtime)
    attacker = client_at(app, "10.9.9.9")
    for name in ("a1", "a2"):
        assert post_login(attacker, name, "Guess-password-1").status_code == 401
    assert post_login(attacker, "a3", "Guess-password-1").status_code == 429
    resp = post_login(attacker, "wang", PASSWORD)
    assert resp.status_code == 429 and LOCKED in text(resp)
    other = client_at(app, "10.1.1.1")
    assert post_login(other, "wang", PASSWORD).headers["Location"] == "/"


def test_behind_a_trusted_proxy_the_limit_is_per_real_client(runtime):
    """Behind nginx every request comes from the proxy's address: with [console]
    trusted_proxies = 1 the per-address limit counts X-Forwarded-For's client instead, so one
    attacker cannot lock everyone out; without it, the forwarded header is not believed."""
    with_password(runtime, "wang")
    runtime.settings = runtime.settings.replace(console={"trusted_proxies": 1})
    app = console_app(runtime)

    def via_proxy(client_ip: str):
        client = client_at(app, "127.0.0.1")
        client.environ_base["HTTP_X_FORWARDED_FOR"] = client_ip
        return client

    attacker = via_proxy("203.0.113.9")
    for name in ("a1", "a2", "a3"):
        post_login(attacker, name, "Guess-password-1")
    assert post_login(attacker, "wang", PASSWORD).status_code == 429
    assert post_login(via_proxy("198.51.100.7"), "wang", PASSWORD).headers["Location"] == "/"
    runtime.settings = runtime.settings.replace(console={"trusted_proxies": 0})
    direct = console_app(runtime)
    spoofer = client_at(direct, "10.7.7.7")
    for i, name in enumerate(("b1", "b2", "b3")):
        spoofer.environ_base["HTTP_X_FORWARDED_FOR"] = f"192.0.2.{i}"  # ignored
        post_login(spoofer, name, "Guess-password-1")
    assert post_login(spoofer, "wang", PASSWORD).status_code == 429


def test_lockout_message_is_the_same_for_unknown_names(runtime):
    with_password(runtime, "wang")
    app = console_app(runtime)
    answers = {}
    for name in ("wang", "ghost"):
        last = None
        for i in range(3):
            client = client_at(app, f"10.{len(name)}.0.{i}")
            last = post_login(client, name, "Wrong-password-1")
        answers[name] = (last.status_code, re.search(r'id="form-error">([^<]*)<',
                                                     text(last)).group(1))
    assert answers["wang"] == answers["ghost"] and answers["wang"][0] == 429


def test_totp_failures_count_towards_the_lockout(runtime):
    _, secret = with_totp(runtime, "li", "reviewer")
    client = console_app(runtime).test_client()
    post_login(client, "li", PASSWORD)
    right = code(secret, runtime)
    wrong = f"{(int(right) + 3) % 1_000_000:06d}"
    assert post_code(client, "/login/totp", wrong).status_code == 401
    assert post_code(client, "/login/totp", wrong).status_code == 401
    resp = post_code(client, "/login/totp", wrong)
    assert resp.status_code == 302 and resp.headers["Location"] == "/login"
    assert LOCKED in text(client.get("/login"))
    assert client.get("/login/totp").status_code == 302  # the half login is gone
    assert actions_of(runtime, "console_lockout")


def test_success_clears_the_account_count(runtime):
    with_password(runtime, "wang")
    app = console_app(runtime)
    client = app.test_client()
    post_login(client, "wang", "Wrong-password-1")
    post_login(client, "wang", "Wrong-password-1")
    assert post_login(client, "wang", PASSWORD).headers["Location"] == "/"
    other = client_at(app, "10.2.2.2")
    assert post_login(other, "wang", "Wrong-password-1").status_code == 401  # count restarted


def test_redis_down_fails_closed_with_a_message(runtime):
    with_password(runtime, "wang")
    app = console_app(runtime)
    working = runtime.redis
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    runtime.redis = redis.Redis(host="127.0.0.1", port=dead_port, socket_connect_timeout=0.2)
    try:
        client = app.test_client()
        resp = post_login(client, "wang", PASSWORD)
        assert resp.status_code == 503 and "无法连接 Redis" in text(resp)
        assert not logged_in(client)
    finally:
        runtime.redis = working


# --- sessions ---------------------------------------------------------------------------------


def test_idle_timeout_ends_the_session(runtime):
    with_password(runtime, "wang")
    client = console_app(runtime).test_client()
    post_login(client, "wang", PASSWORD)
    assert logged_in(client)
    idle = runtime.settings.console.idle_timeout_minutes
    with client.session_transaction() as sess:
        sess[SEEN] = time.time() - idle * 60 - 5
    assert not logged_in(client)


@pytest.mark.parametrize("change", ["role", "password", "totp", "disable"])
def test_admin_changes_end_existing_sessions(runtime, change):
    _, secret = with_totp(runtime, "li", "reviewer")
    admin = make_staff(runtime, "boss", "admin")
    client = console_app(runtime).test_client()
    post_login(client, "li", PASSWORD)
    post_code(client, "/login/totp", code(secret, runtime))
    assert logged_in(client)
    with runtime.sessions() as session:
        boss = session.get(Staff, admin.id)
        if change == "role":
            actions.change_role(session, boss, "li", "editor", runtime.now())
        elif change == "password":
            actions.reset_password(session, boss, "li", runtime.now())
        elif change == "totp":
            actions.reset_totp(session, boss, "li", runtime.now())
        else:
            actions.disable_account(session, boss, "li", runtime.now())
        session.commit()
    assert not logged_in(client)


def test_htmx_request_without_session_gets_hx_redirect(runtime):
    client = console_app(runtime).test_client()
    resp = client.get("/", headers={"HX-Request": "true"})
    assert resp.status_code == 401 and resp.headers["HX-Redirect"].startswith("/login")


def test_cli_key_keeps_working_next_to_the_console_password(runtime):
    made = with_password(runtime, "wang")
    assert made.password_hash and made.key_hash.startswith("scrypt$")
    with runtime.sessions() as session:
        with pytest.raises(Exception, match="wrong or missing key"):
            actions.login(session, "wang", PASSWORD)  # the password is not a CLI key


def test_logged_in_account_page(runtime):
    staff = with_password(runtime, "wang")
    client = login(console_app(runtime).test_client(), staff)
    page = text(client.get("/account"))
    assert "wang" in page and "编辑" in page and "未启用" in page
