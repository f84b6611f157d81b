"""Every /api/v1 endpoint x every kind of caller (both databases).

The endpoints are read from the app's url_map, so a new endpoint without a row in ROLES
fails `test_every_endpoint_has_a_rule`. Callers: anonymous, editor / reviewer / admin tokens,
a revoked token, an expired token, a read-only token on a write endpoint, and a console
session without the CSRF header on a write endpoint. Ids in paths name nothing, so a caller
the role gate lets through gets 404 / 422 / 409 from the service, never 401 / 403.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.store.models import ApiToken, Staff
from push import actions
from tests.consolekit import console_app, login, make_staff

# endpoint -> roles that pass the gate (() = any authenticated caller; admins pass all)
ROLES: dict[str, tuple[str, ...]] = {
    "api_campaigns.list_campaigns": (),
    "api_campaigns.review_queue": (),
    "api_campaigns.create_campaign": ("editor",),
    "api_campaigns.get_campaign": (),
    "api_campaigns.submit_campaign": ("editor",),
    "api_campaigns.approve_campaign": ("reviewer",),
    "api_campaigns.reject_campaign": ("reviewer",),
    "api_campaigns.schedule_campaign": ("editor", "reviewer"),
    "api_campaigns.cancel_campaign": ("editor", "reviewer"),
    "api_campaigns.campaign_stats": (),
    "api_campaigns.campaign_deliveries": (),
    "api_records.list_records": (),
    "api_records.review_queue": (),
    "api_records.create_draft": ("editor",),
    "api_records.get_draft": (),
    "api_records.update_draft": ("editor",),
    "api_records.submit_draft": ("editor",),
    "api_records.approve_draft": ("reviewer",),
    "api_records.reject_draft": ("reviewer",),
    "api_records.withdraw_draft": (),
    "api_records.get_record": (),
    "api_audit.audit_log": ("reviewer",),
    "api_questions.summary": (),
    "api_questions.unanswered": (),
    "api_accounts.me": (),
    "api_accounts.list_staff": ("admin",),
    # casework (issue 10): any casework role or admin; cases.actions decides per case
    "api_cases.list_cases": ("casework",),
    "api_cases.list_steps": ("casework",),
    "api_cases.list_departments": ("casework",),
    "api_cases.get_case": ("casework",),
    "api_cases.take_step": ("casework",),
    "api_cases.register_application": ("casework",),
}
PUBLIC = {"api-docs.openapi_json"}  # the OpenAPI document describes, it reveals no data
ARGS = {"int": 987654, "default": "nope"}


def api_calls(app) -> list[tuple[str, str, str]]:
    """(endpoint, method, url) for every API rule, path arguments filled with unknown ids."""
    calls = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        values = {name: ARGS["int" if type(conv).__name__ == "IntegerConverter"
                             else "default"] for name, conv in rule._converters.items()}
        url = app.url_map.bind("localhost").build(rule.endpoint, values)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            calls.append((rule.endpoint, method, url))
    return calls


@pytest.fixture
def env(runtime, clock):
    app = console_app(runtime)
    people = {role: make_staff(runtime, f"p-{role}", role)
              for role in ("editor", "reviewer", "admin")}
    tokens: dict[str, str] = {}
    with runtime.sessions() as s:
        for role, staff in people.items():
            actor = s.get(Staff, staff.id)
            tokens[role] = actions.create_api_token(s, runtime.settings, actor, runtime.now(),
                                                    "t", ["read", "write"]).secret
        admin = s.get(Staff, people["admin"].id)
        tokens["read-only"] = actions.create_api_token(s, runtime.settings, admin,
                                                       runtime.now(), "ro", ["read"]).secret
        revoked = actions.create_api_token(s, runtime.settings, admin, runtime.now(), "rv",
                                           ["read", "write"])
        actions.revoke_api_token(s, admin, revoked.token.id, runtime.now())
        tokens["revoked"] = revoked.secret
        expired = actions.create_api_token(s, runtime.settings, admin, runtime.now(), "ex",
                                           ["read", "write"])
        tokens["expired"] = expired.secret
        s.flush()
        row = s.scalar(select(ApiToken).where(ApiToken.id == expired.token.id))
        row.expires_at = row.created_at - timedelta(seconds=1)
        s.commit()
    return runtime, app, people, tokens


def call(client, method: str, url: str, headers: dict | None = None):
    kwargs = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
    return client.open(url, method=method, headers=headers or {}, **kwargs)


def code_of(resp) -> str:
    assert resp.mimetype == "application/json", (resp.status_code, resp.get_data()[:300])
    return resp.get_json()["error"]["code"]


def test_every_endpoint_has_a_rule(env):
    rt, app, people, tokens = env
    endpoints = {endpoint for endpoint, _, _ in api_calls(app)}
    assert endpoints - PUBLIC == set(ROLES), "add the new endpoint to ROLES"
    for endpoint, roles in ROLES.items():  # the table and the decorators agree
        assert getattr(app.view_functions[endpoint], "qz_roles", None) == roles, endpoint


def test_anonymous_revoked_and_expired_get_401(env):
    rt, app, people, tokens = env
    client = app.test_client()
    for endpoint, method, url in api_calls(app):
        if endpoint in PUBLIC:
            assert client.get(url).status_code == 200
            continue
        for who in (None, "revoked", "expired"):
            headers = {"Authorization": f"Bearer {tokens[who]}"} if who else {}
            resp = call(client, method, url, headers)
            assert resp.status_code == 401 and code_of(resp) == "unauthorized", (who, method,
                                                                                 url)


@pytest.mark.parametrize("role", ["editor", "reviewer", "admin"])
def test_roles_match_the_pages(env, role):
    rt, app, people, tokens = env
    client = app.test_client()
    headers = {"Authorization": f"Bearer {tokens[role]}"}
    for endpoint, method, url in api_calls(app):
        if endpoint in PUBLIC:
            continue
        allowed = role == "admin" or not ROLES[endpoint] or role in ROLES[endpoint]
        resp = call(client, method, url, headers)
        if allowed:
            assert resp.status_code not in (401, 403, 500), (role, method, url,
                                                             resp.get_json())
            assert resp.status_code < 300 or code_of(resp) in (
                "not_found", "validation_error", "invalid_transition", "conflict")
        else:
            assert resp.status_code == 403 and code_of(resp) == "forbidden", (role, method,
                                                                              url)


def test_a_read_only_token_cannot_write_and_a_session_needs_csrf(env):
    rt, app, people, tokens = env
    client = app.test_client()
    session_client = login(app.test_client(), people["admin"])
    writes = [(e, m, u) for e, m, u in api_calls(app) if m != "GET"]
    reads = [(e, m, u) for e, m, u in api_calls(app) if m == "GET" and e not in PUBLIC]
    assert writes and reads
    for _endpoint, method, url in writes:
        resp = call(client, method, url, {"Authorization": f"Bearer {tokens['read-only']}"})
        assert resp.status_code == 403 and code_of(resp) == "insufficient_scope", url
        resp = call(session_client, method, url)
        assert resp.status_code == 403 and code_of(resp) == "csrf_failed", url
    for _endpoint, method, url in reads:
        resp = call(client, method, url, {"Authorization": f"Bearer {tokens['read-only']}"})
        assert resp.status_code not in (401, 403), url
        assert call(session_client, method, url).status_code not in (401, 403), url
