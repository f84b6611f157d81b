"""The console's frame: security headers, login required, CSRF on, roles, the schema."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from bot.store.models import Base
from tests.consolekit import console_app, login, make_staff


def test_models_match_the_migrations(db_url):
    """The migrated schema is exactly what the models declare (both databases)."""
    engine = create_engine(db_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []


def test_pages_need_login_and_carry_security_headers(runtime):
    app = console_app(runtime)
    client = app.test_client()
    resp = client.get("/")
    assert resp.status_code in (302, 401)
    for header in ("Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options"):
        assert header in resp.headers
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
    assert resp.headers["Cache-Control"] == "no-store"


def test_logged_in_home_and_epoch_ends_sessions(runtime):
    app = console_app(runtime)
    staff = make_staff(runtime, "wang", "editor")
    client = login(app.test_client(), staff)
    resp = client.get("/")
    assert resp.status_code == 200 and "您好，wang" in resp.get_data(as_text=True)
    with runtime.sessions() as session:  # a password reset or disable bumps the epoch
        from bot.store.models import Staff
        session.get(Staff, staff.id).session_epoch = 1
        session.commit()
    assert client.get("/").status_code in (302, 401)


def test_vendored_assets_are_served_with_their_licences(runtime):
    client = console_app(runtime).test_client()
    from console.app import CHARTJS, HTMX
    for asset in (HTMX, CHARTJS):
        resp = client.get(f"/static/{asset}")
        assert resp.status_code == 200 and len(resp.data) > 10_000
        resp.close()
    from pathlib import Path

    import console
    root = Path(console.__file__).parent / "static" / "vendor"
    assert all(any(p.name.startswith("LICENSE") for p in d.iterdir()) for d in root.iterdir())


def test_bearer_api_calls_neither_use_nor_create_a_session(runtime):
    """A script with an API token gets JSON and no console session cookie."""
    from bot.store.models import Staff
    from push import actions

    app = console_app(runtime)
    staff = make_staff(runtime, "api-user", "reviewer")
    with runtime.sessions() as session:
        me = session.get(Staff, staff.id)
        secret = actions.create_api_token(session, runtime.settings, me, runtime.now(),
                                          "script", ["read"]).secret
        session.commit()
    client = app.test_client()
    resp = client.get("/api/v1/campaigns", headers={"Authorization": f"Bearer {secret}"})
    assert resp.status_code == 200 and resp.is_json
    assert "qzc_session" not in " ".join(resp.headers.getlist("Set-Cookie"))
    page = client.get("/login")  # the console's pages still get their session
    assert "qzc_session" in " ".join(page.headers.getlist("Set-Cookie"))
