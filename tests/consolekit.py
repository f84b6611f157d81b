"""Console test kit: build the console app on the test runtime, make staff, log in.

`login(client, staff)` logs a test client in without the login form (it writes the
Flask-Login session the way a real login does), so page tests do not depend on the login
flow; the login flow itself is tested through its forms in tests/test_console_auth.py.
"""

from __future__ import annotations

import time

from flask import Flask
from flask.testing import FlaskClient
from flask_login.utils import _create_identifier

from bot.store.models import Staff
from console import create_console_app
from console.auth import SEEN
from push import actions


def console_app(runtime, **overrides) -> Flask:
    """The console app on `runtime`; CSRF stays ON (tests send the token, see csrf_token)."""
    app = create_console_app(runtime=runtime)
    app.config.update(TESTING=True, **overrides)
    return app


def make_staff(runtime, name: str, role: str = "editor") -> Staff:
    """Create an account (bootstrapping the first admin if there is none); returns it detached."""
    with runtime.sessions() as session:
        admin = session.query(Staff).filter_by(role="admin", active=True).first()
        if admin is None and role != "admin":
            actions.add_staff(session, None, "bootstrap-admin", "admin", runtime.now())
            session.flush()
            admin = session.query(Staff).filter_by(name="bootstrap-admin").one()
        actions.add_staff(session, admin, name, role, runtime.now())
        session.commit()
        staff = session.query(Staff).filter_by(name=name).one()
        session.expunge(staff)
        return staff


def login(client: FlaskClient, staff: Staff) -> FlaskClient:
    """Log `client` in as `staff` (session identity "<id>:<epoch>", fresh)."""
    with client.application.test_request_context(environ_base=client.environ_base):
        ident = _create_identifier()  # session_protection = "strong" checks it
    with client.session_transaction() as sess:
        sess["_id"] = ident
        sess["_user_id"] = f"{staff.id}:{staff.session_epoch or 0}"
        sess["_fresh"] = True
        sess[SEEN] = time.time()
    return client


def csrf_token(client: FlaskClient, path: str = "/") -> str:
    """A valid CSRF token for `client`'s session, read from a page's <meta name=csrf-token>."""
    html = client.get(path).get_data(as_text=True)
    marker = 'name="csrf-token" content="'
    start = html.index(marker) + len(marker)
    return html[start:html.index('"', start)]
