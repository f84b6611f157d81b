"""Console account administration (admins only), its service functions, and serving:
`qzbot console`, `qzbot staff set-password`, the demo admin, the gunicorn factory."""

from __future__ import annotations

import re

import pyotp
import pytest
from sqlalchemy import select

from bot.errors import NotFound, PermissionDenied
from bot.store.models import AuditEntry, Staff
from push import accounts, actions
from tests.consolekit import console_app, csrf_token, login, make_staff
from tests.test_first_run import _demo_env, free_port, listening, qzbot

PASSWORD = "Correct-horse-42"


def text(resp) -> str:
    return resp.get_data(as_text=True)


def account(runtime, name: str) -> Staff:
    with runtime.sessions() as session:
        found = session.scalar(select(Staff).where(Staff.name == name))
        session.expunge(found)
        return found


def audits(runtime, action: str) -> list[AuditEntry]:
    with runtime.sessions() as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def admin_client(runtime, name: str = "boss"):
    admin = make_staff(runtime, name, "admin")
    app = console_app(runtime)
    return login(app.test_client(), admin), admin


def post(client, path: str, **data):
    return client.post(path, data={"csrf_token": csrf_token(client, "/accounts"), **data})


def form_login(client, name: str, password: str):
    token = csrf_token(client, "/login")
    return client.post("/login", data={"csrf_token": token, "name": name,
                                       "password": password})


# --- the page ---------------------------------------------------------------------------------


def test_admin_sees_every_account(runtime):
    make_staff(runtime, "wang", "editor")
    client, _ = admin_client(runtime)
    page = text(client.get("/accounts"))
    assert "wang" in page and "boss" in page and "bootstrap-admin" in page
    for needle in ("角色", "双重验证", "最近登录", 'class="table-wrap"', 'name="csrf_token"',
                   '<label for="name"', '<label for="role"', '<label for="role-1"'):
        assert needle in page


@pytest.mark.parametrize("role", ["editor", "reviewer"])
def test_non_admins_get_403_everywhere(runtime, role):
    make_staff(runtime, "wang", "editor")
    other = make_staff(runtime, "someone", role)
    client = login(console_app(runtime).test_client(), other)
    assert client.get("/accounts").status_code == 403
    token = csrf_token(client, "/")
    for path, data in (("/accounts/new", {"name": "x1", "role": "admin"}),
                       ("/accounts/wang/disable", {}), ("/accounts/wang/enable", {}),
                       ("/accounts/wang/reset-password", {}), ("/accounts/wang/reset-totp", {}),
                       (f"/accounts/{other.name}/role", {"role": "admin"})):
        assert client.post(path, data={"csrf_token": token, **data}).status_code == 403
    assert account(runtime, other.name).role == role  # no self-promotion
    with runtime.sessions() as session:  # the service layer refuses too
        with pytest.raises(PermissionDenied):
            actions.reset_password(session, session.get(Staff, other.id), "wang",
                                   runtime.now())


def test_accounts_page_needs_login(runtime):
    client = console_app(runtime).test_client()
    assert client.get("/accounts").status_code == 302


def test_forms_without_csrf_are_refused(runtime):
    make_staff(runtime, "wang", "editor")
    client, _ = admin_client(runtime)
    client.get("/accounts")
    assert client.post("/accounts/wang/disable").status_code == 400
    assert client.post("/accounts/new", data={"name": "x1", "role": "admin"}).status_code == 400
    assert account(runtime, "wang").active
    with runtime.sessions() as session:
        assert actions.staff.find_staff(session, "x1") is None


def test_add_shows_a_temporary_password_once_and_it_logs_in(runtime):
    client, _ = admin_client(runtime)
    resp = post(client, "/accounts/new", name="Zhao", role="editor")
    assert resp.status_code == 200
    temp = re.search(r'id="temp-password">([^<]+)<', text(resp)).group(1)
    assert len(temp) == 16 and "只显示这一次" in text(resp)
    assert temp not in text(client.get("/accounts"))
    made = account(runtime, "zhao")  # names are normalised
    assert made.must_change_password and made.password_hash.startswith("$argon2id$")
    newcomer = console_app(runtime).test_client()
    assert form_login(newcomer, "zhao", temp).headers["Location"] == "/account/password"
    [entry] = audits(runtime, "staff_add")[-1:]
    assert (entry.actor, entry.object_type, entry.object_id) == ("boss", "staff", "zhao")
    assert all(temp not in str(e.detail) for e in audits(runtime, "staff_add"))


def test_add_refuses_a_duplicate_or_reserved_name(runtime):
    make_staff(runtime, "wang", "editor")
    client, _ = admin_client(runtime)
    dup = post(client, "/accounts/new", name="WANG", role="editor")
    assert dup.status_code == 400 and "already exists" in text(dup)
    reserved = post(client, "/accounts/new", name="system", role="editor")
    assert reserved.status_code == 400 and "reserved" in text(reserved)
    bad_role = post(client, "/accounts/new", name="newbie", role="root")
    assert bad_role.status_code == 400


def test_disable_and_enable(runtime):
    make_staff(runtime, "wang", "editor")
    client, _ = admin_client(runtime)
    resp = post(client, "/accounts/wang/disable")
    assert resp.status_code == 303 and resp.headers["Location"].startswith("/accounts")
    assert not account(runtime, "wang").active
    assert "已停用" in text(client.get("/accounts"))
    post(client, "/accounts/wang/enable")
    assert account(runtime, "wang").active
    assert [e.object_id for e in audits(runtime, "staff_disable")] == ["wang"]
    assert [e.actor for e in audits(runtime, "staff_enable")] == ["boss"]


def test_reset_password_shows_a_new_temporary_password(runtime):
    make_staff(runtime, "wang", "editor")
    client, _ = admin_client(runtime)
    before = account(runtime, "wang").session_epoch
    resp = post(client, "/accounts/wang/reset-password")
    temp = re.search(r'id="temp-password">([^<]+)<', text(resp)).group(1)
    after = account(runtime, "wang")
    assert after.must_change_password and after.session_epoch == before + 1
    assert accounts.verify_password(after.password_hash, temp)
    assert audits(runtime, "staff_password_reset")[0].object_id == "wang"


def test_reset_totp(runtime):
    staff = make_staff(runtime, "li", "reviewer")
    with runtime.sessions() as session:
        li = session.get(Staff, staff.id)
        li.totp_secret = accounts.encrypt_secret(runtime.settings.security.secret_key, li.id,
                                                 accounts.new_totp_secret())
        li.totp_enabled = True
        session.commit()
    client, _ = admin_client(runtime)
    assert "已启用" in text(client.get("/accounts"))
    post(client, "/accounts/li/reset-totp")
    after = account(runtime, "li")
    assert not after.totp_enabled and after.totp_secret is None and after.session_epoch == 1
    assert audits(runtime, "staff_totp_reset")[0].actor == "boss"


def test_change_role(runtime):
    make_staff(runtime, "wang", "editor")
    client, _ = admin_client(runtime)
    post(client, "/accounts/wang/role", role="reviewer")
    assert account(runtime, "wang").role == "reviewer"
    [entry] = audits(runtime, "staff_role_change")
    assert entry.detail == {"name": "wang", "old_role": "editor", "role": "reviewer"}
    bad = post(client, "/accounts/wang/role", role="superuser")
    assert bad.status_code == 303 and account(runtime, "wang").role == "reviewer"


def test_forged_account_name_is_refused_cleanly(runtime):
    client, _ = admin_client(runtime)
    resp = post(client, "/accounts/ghost/reset-password")
    assert resp.status_code == 303
    assert "没有账号" in text(client.get("/accounts"))
    assert not audits(runtime, "staff_password_reset")


def test_the_last_admin_can_be_neither_demoted_nor_disabled(runtime):
    admin = make_staff(runtime, "boss", "admin")  # the first account: the only admin
    client = login(console_app(runtime).test_client(), admin)
    post(client, "/accounts/boss/role", role="editor")
    assert account(runtime, "boss").role == "admin"
    assert "最后一个在用的管理员" in text(client.get("/accounts"))
    post(client, "/accounts/boss/disable")
    assert account(runtime, "boss").active
    with runtime.sessions() as session:
        boss = session.get(Staff, admin.id)
        with pytest.raises(PermissionDenied):
            actions.change_role(session, boss, "boss", "reviewer", runtime.now())
        with pytest.raises(PermissionDenied):
            actions.disable_staff(session, boss, "boss", runtime.now())  # the CLI path too
    assert not audits(runtime, "staff_role_change")


def test_demoting_oneself_ends_ones_session(runtime):
    client, _ = admin_client(runtime)
    make_staff(runtime, "deputy", "admin")  # boss is not the last admin
    post(client, "/accounts/boss/role", role="editor")
    assert account(runtime, "boss").role == "editor"
    assert client.get("/accounts").status_code == 302  # back to the login page


def test_service_errors_for_unknown_accounts(runtime):
    admin = make_staff(runtime, "boss", "admin")
    with runtime.sessions() as session:
        boss = session.get(Staff, admin.id)
        for fn in (actions.reset_password, actions.reset_totp, actions.enable_staff):
            with pytest.raises(NotFound):
                fn(session, boss, "ghost", runtime.now())


def test_set_password_by_admin_must_be_changed_but_not_by_oneself(runtime):
    admin = make_staff(runtime, "boss", "admin")
    make_staff(runtime, "wang", "editor")
    with runtime.sessions() as session:
        boss = session.get(Staff, admin.id)
        assert actions.set_password(session, boss, "wang", PASSWORD,
                                    runtime.now()).must_change_password
        assert not actions.set_password(session, boss, "boss", PASSWORD,
                                        runtime.now()).must_change_password
        with pytest.raises(accounts.PasswordRefused, match="至少 12"):
            actions.set_password(session, boss, "wang", "short", runtime.now())
        wang = session.scalar(select(Staff).where(Staff.name == "wang"))
        with pytest.raises(PermissionDenied):
            actions.set_password(session, wang, "boss", PASSWORD, runtime.now())


def test_demo_admin_is_created_and_can_log_in(runtime):
    with runtime.sessions() as session:
        demo = actions.ensure_demo_admin(session, runtime.settings, "demo-admin", runtime.now())
        session.commit()
    assert demo.totp_uri.startswith("otpauth://totp/")
    client = console_app(runtime).test_client()
    assert form_login(client, "demo-admin", demo.password).headers["Location"] == "/login/totp"
    token = csrf_token(client, "/login/totp")
    resp = client.post("/login/totp", data={
        "csrf_token": token, "code": pyotp.TOTP(demo.totp_secret).at(runtime.now())})
    assert resp.headers["Location"] == "/" and client.get("/accounts").status_code == 200
    with runtime.sessions() as session:  # a restart: new password, the same TOTP secret
        again = actions.ensure_demo_admin(session, runtime.settings, "demo-admin",
                                          runtime.now())
        session.commit()
    assert again.totp_secret == demo.totp_secret and again.password != demo.password


# --- serving ----------------------------------------------------------------------------------


def test_qzbot_console_on_a_busy_port_exits_1(tmp_path):
    with listening() as port:
        result = qzbot("console", "--demo", "--port", str(port), env=_demo_env(tmp_path),
                       timeout=30)
    assert result.returncode == 1
    assert f"port {port} is in use" in result.stderr and "--port N" in result.stderr


def test_qzbot_console_refuses_published_secrets_without_demo(tmp_path):
    result = qzbot("console", "--port", str(free_port()), env=_demo_env(tmp_path), timeout=30)
    assert result.returncode == 2 and "secret_key" in result.stderr


def test_demo_with_a_busy_console_port_stops_before_anything_starts(tmp_path):
    with listening() as port:
        result = qzbot("serve", "--demo", "--port", str(free_port()), "--sim-port",
                       str(free_port()), "--console-port", str(port),
                       env=_demo_env(tmp_path), timeout=30)
    assert result.returncode == 1 and "--console-port" in result.stderr
    assert not (tmp_path / "demo.sqlite3").exists()


def test_staff_set_password_lets_the_first_admin_log_in(tmp_path):
    env = _demo_env(tmp_path)
    assert qzbot("db", "upgrade", env=env).returncode == 0
    made = qzbot("staff", "add", "chief", "--role", "admin", env=env)
    key = made.stdout.strip().splitlines()[-1]
    weak = qzbot("staff", "set-password", "chief", "--password-stdin",
                 env={**env, "QZBOT_STAFF_KEY": key}, timeout=30)
    assert weak.returncode != 0  # no stdin: empty password refused
    result = subprocess_with_input(["staff", "set-password", "chief", "--password-stdin"],
                                   PASSWORD + "\n", {**env, "QZBOT_STAFF_KEY": key})
    assert result.returncode == 0, result.stderr
    assert "console password set" in result.stdout
    wrong_key = subprocess_with_input(["staff", "set-password", "chief", "--password-stdin"],
                                      PASSWORD + "\n", {**env, "QZBOT_STAFF_KEY": "nope"})
    assert wrong_key.returncode != 0 and "wrong or missing key" in wrong_key.stderr
    from bot.store.db import make_engine
    engine = make_engine(env["QZBOT_DATABASE__URL"])
    with engine.connect() as conn:
        stored, must = conn.execute(select(Staff.password_hash, Staff.must_change_password)
                                    .where(Staff.name == "chief")).one()
    engine.dispose()
    assert accounts.verify_password(stored, PASSWORD) and not must


def subprocess_with_input(args: list[str], stdin: str, env: dict[str, str]):
    import os
    import subprocess
    import sys

    from tests.test_first_run import ROOT
    clean = {k: v for k, v in os.environ.items() if not k.startswith("QZBOT_")}
    return subprocess.run([sys.executable, "-c", "from bot.cli import main; main()", *args],
                          input=stdin, capture_output=True, text=True, env={**clean, **env},
                          cwd=ROOT, timeout=60)


def test_gunicorn_factory_builds_the_console(monkeypatch, tmp_path):
    from bot import wsgi
    from bot.errors import ConfigError
    from tests.test_first_run import EXAMPLE

    monkeypatch.setenv("QZBOT_CONFIG", str(EXAMPLE))
    monkeypatch.setenv("QZBOT_DATABASE__URL", f"sqlite:///{tmp_path}/c.sqlite3")
    with pytest.raises(ConfigError):  # published demo secrets are refused
        wsgi.console()
    for key, value in {"WECHAT__APP_SECRET": "s" * 32, "WECHAT__TOKEN": "t" * 32,
                       "WECHAT__ENCODING_AES_KEY": "Q" * 43,
                       "SECURITY__SECRET_KEY": "k" * 48}.items():
        monkeypatch.setenv(f"QZBOT_{key}", value)
    from bot.store.db import make_engine, upgrade
    engine = make_engine(f"sqlite:///{tmp_path}/c.sqlite3")
    upgrade(engine)
    engine.dispose()
    app = wsgi.console()
    assert app.name == "qzbot.console"
    assert app.test_client().get("/login").status_code == 200
