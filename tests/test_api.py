"""The JSON API /api/v1: tokens (shown once, only the hash stored, revoke, expiry, scopes),
bearer and session authentication with CSRF, JSON errors with stable codes, the campaign
flow over the API with the approval pinned to the review hash, masking (both databases)."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import timedelta

import pytest
from rq import Queue
from sqlalchemy import select

from bot.clock import to_utc_naive
from bot.store.models import (
    ApiToken,
    AuditEntry,
    Campaign,
    Delivery,
    Follower,
    Staff,
    Subscription,
)
from push import actions
from push.jobs import PUSH_QUEUE
from tests.conftest import load_pack
from tests.consolekit import console_app, csrf_token, login, make_staff
from tests.pushkit import make_campaign

TEMPLATES = {
    "出行资讯": {"template_id": "TPL_TRAVEL", "channel": "subscribe", "long_term": True,
             "fields": {"thing1": "title", "time2": "date", "thing3": "district"}},
}
OPENIDS = [f"oCitizen{i:020d}" for i in range(3)]


@pytest.fixture
def env(runtime):
    """The console on the small pack, two reachable 出行资讯 subscribers in 南安市, and four
    accounts."""
    runtime.settings = runtime.settings.replace(push={"templates": TEMPLATES})
    load_pack(runtime)
    with runtime.sessions() as s:
        for openid in OPENIDS[:2]:
            s.add(Follower(openid=openid, active=True))
            s.add(Subscription(openid=openid, topic="出行资讯", district="南安市",
                               notice_kind="", source="message",
                               created_at=to_utc_naive(runtime.now())))
        s.commit()
    app = console_app(runtime)
    people = {name: make_staff(runtime, name, role) for name, role in
              (("alice", "editor"), ("carol", "editor"), ("bob", "reviewer"),
               ("root", "admin"))}
    return runtime, app, people


def new_token(rt, staff: Staff, scopes=("read", "write"), name: str = "script") -> str:
    with rt.sessions() as s:
        actor = s.get(Staff, staff.id)
        made = actions.create_api_token(s, rt.settings, actor, rt.now(), name, list(scopes))
        s.commit()
        return made.secret


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def error_code(resp) -> str:
    assert resp.mimetype == "application/json", resp.get_data(as_text=True)[:500]
    body = resp.get_json()
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"])
    assert "Traceback" not in resp.get_data(as_text=True)
    return body["error"]["code"]


# --- tokens ----------------------------------------------------------------------------------


def test_token_is_shown_once_and_only_its_hash_is_stored(env):
    rt, app, people = env
    client = login(app.test_client(), people["alice"])
    token = csrf_token(client, "/account/tokens")
    resp = client.post("/account/tokens", data={"csrf_token": token, "name": "看板",
                                                 "scopes": ["read"]})
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200
    secret = re.search(r'value="(qzt_[A-Za-z0-9_-]{43})"', page).group(1)
    with rt.sessions() as s:
        row = s.scalar(select(ApiToken))
        assert row.token_hash == hashlib.sha256(secret.encode()).hexdigest()
        assert secret not in json.dumps([row.name, row.prefix, row.token_hash, row.scopes])
        assert secret.startswith(row.prefix) and len(row.prefix) == 10
        assert row.scopes == ["read"]
        assert row.expires_at == to_utc_naive(rt.now()) + timedelta(days=90)
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == "api_token_create"))
        assert (entry.object_type, entry.object_id, entry.actor) == ("api_token", str(row.id),
                                                                     "alice")
        assert secret not in json.dumps(entry.detail)
    # the list shows the prefix, never the secret again
    listing = client.get("/account/tokens").get_data(as_text=True)
    assert row.prefix in listing and secret not in listing and "看板" in listing
    # and it works
    me = app.test_client().get("/api/v1/me", headers=bearer(secret))
    assert me.status_code == 200
    assert me.get_json() == {"name": "alice", "role": "editor", "via": "token",
                             "scopes": ["read"]}


def test_token_page_needs_csrf_login_and_valid_input(env):
    rt, app, people = env
    assert app.test_client().get("/account/tokens").status_code in (302, 401)
    client = login(app.test_client(), people["alice"])
    resp = client.post("/account/tokens", data={"name": "x", "scopes": ["read"]})
    assert resp.status_code == 400  # no CSRF token
    token = csrf_token(client, "/account/tokens")
    resp = client.post("/account/tokens", data={"csrf_token": token, "name": "x",
                                                 "scopes": ["admin"]})
    assert resp.status_code == 422 and "scopes" in resp.get_data(as_text=True)
    resp = client.post("/account/tokens", data={"csrf_token": token, "name": "a\x00b",
                                                 "scopes": ["read"]})
    assert resp.status_code == 422
    with rt.sessions() as s:
        assert s.scalar(select(ApiToken)) is None


def test_revoke_own_not_others_admin_any(env):
    rt, app, people = env
    mine = new_token(rt, people["alice"])
    carols = new_token(rt, people["carol"])
    with rt.sessions() as s:
        ids = {t.name + t.prefix: t.id for t in s.scalars(select(ApiToken))}
        carol_id = next(i for k, i in ids.items() if k.endswith(carols[:10]))
        alice_id = next(i for k, i in ids.items() if k.endswith(mine[:10]))
    alice = login(app.test_client(), people["alice"])
    token = csrf_token(alice, "/account/tokens")
    # another account's token: not found, and it keeps working
    resp = alice.post(f"/account/tokens/{carol_id}/revoke", data={"csrf_token": token})
    assert resp.status_code == 303
    assert app.test_client().get("/api/v1/me", headers=bearer(carols)).status_code == 200
    assert "吊销" in alice.get("/account/tokens").get_data(as_text=True)
    # without the CSRF token: refused
    assert alice.post(f"/account/tokens/{alice_id}/revoke").status_code == 400
    assert app.test_client().get("/api/v1/me", headers=bearer(mine)).status_code == 200
    # own: revoked, audited, then refused with a JSON 401
    assert alice.post(f"/account/tokens/{alice_id}/revoke",
                      data={"csrf_token": token}).status_code == 303
    resp = app.test_client().get("/api/v1/me", headers=bearer(mine))
    assert resp.status_code == 401 and error_code(resp) == "unauthorized"
    assert "吊销" in resp.get_json()["error"]["message"]
    # an admin revokes anyone's
    root = login(app.test_client(), people["root"])
    page = root.get("/account/tokens").get_data(as_text=True)
    assert "carol" in page
    token = csrf_token(root, "/account/tokens")
    assert root.post(f"/account/tokens/{carol_id}/revoke",
                     data={"csrf_token": token}).status_code == 303
    assert app.test_client().get("/api/v1/me", headers=bearer(carols)).status_code == 401
    with rt.sessions() as s:
        entries = list(s.scalars(select(AuditEntry).where(
            AuditEntry.action == "api_token_revoke").order_by(AuditEntry.id)))
        assert [(e.actor, e.object_id, e.detail["owner"]) for e in entries] == [
            ("alice", str(alice_id), "alice"), ("root", str(carol_id), "carol")]


def test_expired_token_disabled_account_and_last_used(env, clock):
    rt, app, people = env
    secret = new_token(rt, people["alice"])
    client = app.test_client()
    assert client.get("/api/v1/me", headers=bearer(secret)).status_code == 200
    with rt.sessions() as s:
        first = s.scalar(select(ApiToken)).last_used_at
    assert first == to_utc_naive(rt.now())
    clock.now = clock.now + timedelta(seconds=30)  # touched at most once a minute
    assert client.get("/api/v1/me", headers=bearer(secret)).status_code == 200
    with rt.sessions() as s:
        assert s.scalar(select(ApiToken)).last_used_at == first
    clock.now = clock.now + timedelta(seconds=31)
    assert client.get("/api/v1/me", headers=bearer(secret)).status_code == 200
    with rt.sessions() as s:
        assert s.scalar(select(ApiToken)).last_used_at == to_utc_naive(clock.now)
    clock.now = clock.now + timedelta(days=91)
    resp = client.get("/api/v1/me", headers=bearer(secret))
    assert resp.status_code == 401 and "过期" in resp.get_json()["error"]["message"]
    clock.now = clock.now - timedelta(days=91)
    with rt.sessions() as s:
        s.get(Staff, people["alice"].id).active = False
        s.commit()
    resp = client.get("/api/v1/me", headers=bearer(secret))
    assert resp.status_code == 401 and error_code(resp) == "unauthorized"


@pytest.mark.parametrize("header", ["Bearer qzt_nope", "Bearer ", "Basic YWxpY2U6eA==",
                                    "Bearer " + "qzt_" + "A" * 43, "qzt_x"])
def test_bad_authorization_headers_are_json_401(env, header):
    rt, app, people = env
    resp = app.test_client().get("/api/v1/campaigns", headers={"Authorization": header})
    assert resp.status_code == 401 and error_code(resp) == "unauthorized"


def test_a_bearer_header_wins_over_a_session_cookie(env):
    rt, app, people = env
    client = login(app.test_client(), people["root"])
    resp = client.get("/api/v1/staff", headers=bearer("qzt_forged"))
    assert resp.status_code == 401  # a wrong token is not rescued by the admin's cookie


def test_read_token_cannot_write_and_write_token_needs_no_csrf(env):
    rt, app, people = env
    read = new_token(rt, people["alice"], scopes=["read"])
    write = new_token(rt, people["alice"], scopes=["write"])
    body = {"topic": "出行资讯", "district": "南安市", "records": ["notice:n-ferry"]}
    client = app.test_client()
    resp = client.post("/api/v1/campaigns", json=body, headers=bearer(read))
    assert resp.status_code == 403 and error_code(resp) == "insufficient_scope"
    with rt.sessions() as s:
        assert s.scalar(select(Campaign)) is None
    resp = client.post("/api/v1/campaigns", json=body, headers=bearer(write))
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["campaign"]["status"] == "draft"


def test_session_cookie_reads_and_writes_only_with_the_csrf_header(env):
    rt, app, people = env
    client = login(app.test_client(), people["alice"])
    assert client.get("/api/v1/me").get_json()["via"] == "session"
    body = {"topic": "出行资讯", "district": "南安市", "records": ["notice:n-ferry"]}
    resp = client.post("/api/v1/campaigns", json=body)
    assert resp.status_code == 403 and error_code(resp) == "csrf_failed"
    resp = client.post("/api/v1/campaigns", json=body, headers={"X-CSRFToken": "forged"})
    assert resp.status_code == 403 and error_code(resp) == "csrf_failed"
    with rt.sessions() as s:
        assert s.scalar(select(Campaign)) is None
    token = csrf_token(client, "/")
    resp = client.post("/api/v1/campaigns", json=body, headers={"X-CSRFToken": token})
    assert resp.status_code == 201


# --- errors ------------------------------------------------------------------------------------


def test_errors_are_json_with_stable_codes(env):
    rt, app, people = env
    secret = new_token(rt, people["alice"])
    h = bearer(secret)
    client = app.test_client()
    cases = [
        (client.get("/api/v1/nowhere", headers=h), 404, "not_found"),
        (client.get("/api/v1/campaigns/999", headers=h), 404, "not_found"),
        (client.delete("/api/v1/campaigns", headers=h), 405, "method_not_allowed"),
        (client.post("/api/v1/campaigns", json={"records": "x"}, headers=h), 422,
         "validation_error"),
        (client.post("/api/v1/campaigns", data="{", content_type="application/json",
                     headers=h), 400, "bad_request"),
        (client.post("/api/v1/campaigns", json={"topic": "出行资讯", "records": ["nope:1"]},
                     headers=h), 422, "validation_error"),
        (client.get("/api/v1/staff", headers=h), 403, "forbidden"),
        (client.get("/api/v1/audit", headers=h), 403, "forbidden"),
        (client.get("/api/v1/campaigns?status=bogus", headers=h), 422, "validation_error"),
    ]
    for resp, status, code in cases:
        assert (resp.status_code, error_code(resp)) == (status, code), resp.get_json()
    resp = client.post("/api/v1/campaigns", json={"records": "x", "extra": 1}, headers=h)
    assert set(resp.get_json()["error"]["details"]["fields"]["json"]) == {"records", "extra"}
    resp = client.post("/api/v1/campaigns", json={"title": "a\x00b", "records": ["n"]},
                       headers=h)
    assert resp.status_code == 422


def test_an_unexpected_error_is_a_json_500_without_a_trace(env, monkeypatch):
    rt, app, people = env
    app.config["PROPAGATE_EXCEPTIONS"] = False
    secret = new_token(rt, people["alice"])

    def boom(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(actions, "list_campaigns", boom)
    resp = app.test_client().get("/api/v1/campaigns", headers=bearer(secret))
    assert resp.status_code == 500 and error_code(resp) == "internal_error"
    assert "secret internals" not in resp.get_data(as_text=True)


def test_rate_limit(env, monkeypatch):
    rt, app, people = env
    from console.api import auth
    monkeypatch.setattr(auth, "RATE_PER_MINUTE", 3)
    secret = new_token(rt, people["alice"])
    client = app.test_client()
    codes = [client.get("/api/v1/me", headers=bearer(secret)).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    assert error_code(client.get("/api/v1/me", headers=bearer(secret))) == "rate_limited"


# --- the campaign flow --------------------------------------------------------------------------


def test_campaign_flow_over_the_api_pinned_to_the_review_hash(env):
    rt, app, people = env
    alice = bearer(new_token(rt, people["alice"]))
    bob = bearer(new_token(rt, people["bob"]))
    client = app.test_client()
    resp = client.post("/api/v1/campaigns", headers=alice, json={
        "topic": "出行资讯", "district": "南安市", "records": ["notice:n-ferry"]})
    assert resp.status_code == 201
    cid = resp.get_json()["campaign"]["id"]
    assert client.post(f"/api/v1/campaigns/{cid}/submit", headers=alice).status_code == 200
    # the author cannot approve; an editor cannot approve at all
    resp = client.post(f"/api/v1/campaigns/{cid}/approve", headers=alice,
                       json={"hash": "0" * 64})
    assert resp.status_code == 403
    detail = client.get(f"/api/v1/campaigns/{cid}", headers=bob).get_json()
    review_hash = detail["review_hash"]
    assert re.fullmatch(r"[0-9a-f]{64}", review_hash)
    assert any(review_hash in line for line in detail["review"])
    queue = client.get("/api/v1/campaigns/review-queue", headers=bob).get_json()["items"]
    assert [c["id"] for c in queue] == [cid]
    # a stale hash is refused, nothing changes
    resp = client.post(f"/api/v1/campaigns/{cid}/approve", headers=bob,
                       json={"hash": "f" * 64})
    assert resp.status_code == 422 and error_code(resp) == "validation_error"
    assert client.get(f"/api/v1/campaigns/{cid}", headers=bob).get_json()[
        "campaign"]["status"] == "submitted"
    resp = client.post(f"/api/v1/campaigns/{cid}/approve", headers=bob,
                       json={"hash": review_hash})
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["campaign"]["approved_hash"] == review_hash and body["sending"]
    assert len(Queue(PUSH_QUEUE, connection=rt.redis)) + len(
        Queue(PUSH_QUEUE, connection=rt.redis).scheduled_job_registry) >= 1
    # a second approval is an invalid transition
    resp = client.post(f"/api/v1/campaigns/{cid}/approve", headers=bob,
                       json={"hash": review_hash})
    assert resp.status_code in (403, 409)
    resp = client.post(f"/api/v1/campaigns/{cid}/reject", headers=bob, json={"reason": "x"})
    assert resp.status_code == 409 and error_code(resp) == "invalid_transition"
    listed = client.get("/api/v1/campaigns?status=" + body["campaign"]["status"],
                        headers=alice).get_json()["items"]
    assert [c["id"] for c in listed] == [cid]


def test_deliveries_are_paged_and_masked_for_non_admins(env):
    rt, app, people = env
    with rt.sessions() as s:
        c = make_campaign(s, rt.now(), status="sending")
        for i in range(5):
            s.add(Delivery(campaign_id=c.id, openid=f"oCitizen{i:020d}", batch=0,
                           status="failed" if i == 0 else "sent", errcode=43004 if i == 0
                           else None, reason="api_error" if i == 0 else None,
                           updated_at=to_utc_naive(rt.now())))
        s.commit()
        cid = c.id
    client = app.test_client()
    editor = bearer(new_token(rt, people["alice"]))
    admin = bearer(new_token(rt, people["root"]))
    page = client.get(f"/api/v1/campaigns/{cid}/deliveries?limit=2", headers=editor).get_json()
    assert len(page["items"]) == 2 and page["next_after"] == page["items"][-1]["id"]
    assert all("***" in d["openid"] for d in page["items"])
    assert page["items"][0]["errcode"] == 43004 and page["items"][0]["explanation"]
    assert page["items"][1]["explanation"] is None
    seen = [d["id"] for d in page["items"]]
    while page["next_after"] is not None:
        page = client.get(f"/api/v1/campaigns/{cid}/deliveries?limit=2&after="
                          f"{page['next_after']}", headers=editor).get_json()
        seen += [d["id"] for d in page["items"]]
    assert len(seen) == len(set(seen)) == 5
    full = client.get(f"/api/v1/campaigns/{cid}/deliveries", headers=admin).get_json()
    assert {d["openid"] for d in full["items"]} == {f"oCitizen{i:020d}" for i in range(5)}
    stats = client.get(f"/api/v1/campaigns/{cid}/stats", headers=editor).get_json()
    assert stats["funnel"]["sent"] == 4 and stats["funnel"]["failed"] == 1
    assert client.get("/api/v1/campaigns/999/deliveries", headers=editor).status_code == 404


def test_audit_log_filters_and_masks(env):
    rt, app, people = env
    from push.audit import audit
    with rt.sessions() as s:
        audit(s, "alice", "test_action", rt.now(), object_type="follower",
              object_id=OPENIDS[0], openid=OPENIDS[0])
        s.commit()
    client = app.test_client()
    bob = bearer(new_token(rt, people["bob"]))
    root = bearer(new_token(rt, people["root"]))
    items = client.get("/api/v1/audit?action=test_action", headers=bob).get_json()["items"]
    assert len(items) == 1 and OPENIDS[0] not in json.dumps(items)
    assert items[0]["detail"]["openid"].startswith(OPENIDS[0][:4])
    items = client.get("/api/v1/audit?action=test_action", headers=root).get_json()["items"]
    assert OPENIDS[0] in json.dumps(items)
    page = client.get("/api/v1/audit?limit=1", headers=root).get_json()
    assert len(page["items"]) == 1 and page["next_before"] is not None
    resp = client.get("/api/v1/audit?object_type=campaign&object_id=abc", headers=root)
    assert resp.status_code == 422 and error_code(resp) == "validation_error"


def test_openapi_document_is_served_and_declares_bearer(env):
    rt, app, people = env
    resp = app.test_client().get("/api/v1/openapi.json")
    assert resp.status_code == 200
    doc = resp.get_json()
    assert doc["openapi"] == "3.0.3"
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert "/api/v1/campaigns/{campaign_id}/approve" in doc["paths"]
    error = doc["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]
    unauthorized = doc["components"]["responses"]["UNAUTHORIZED"]
    assert unauthorized["content"]["application/json"]["schema"]["$ref"].endswith("/Error")
    for path, item in doc["paths"].items():  # every operation documents its 401 and 429
        for method, op in item.items():
            if method != "parameters" and path != "/api/v1/openapi.json":
                assert {"401", "429"} <= set(op["responses"]), (method, path)


def test_draft_approval_through_the_api_is_pinned_to_the_digest(env):
    """As on the page: an approval names the content the reviewer read (`digest`), so a
    draft the author rewrote after the reviewer looked is not published."""
    rt, app, people = env
    client = app.test_client()
    alice, bob = bearer(new_token(rt, people["alice"])), bearer(new_token(rt, people["bob"]))
    data = {"id": "f-taxi-receipt", "question": "打车忘拿发票怎么办",
            "answer": "请拨打12328，提供车牌号和乘车时间。"}
    made = client.post("/api/v1/records/drafts", headers=alice,
                       json={"kind": "faq", "data": data})
    assert made.status_code == 201, made.get_json()
    rid = made.get_json()["id"]
    assert client.post(f"/api/v1/records/drafts/{rid}/submit", headers=alice).status_code == 200
    seen = client.get(f"/api/v1/records/drafts/{rid}", headers=bob).get_json()
    digest = seen["revision"]["digest"]
    assert len(digest) == 64
    missing = client.post(f"/api/v1/records/drafts/{rid}/approve", headers=bob, json={})
    assert missing.status_code == 422 and error_code(missing) == "validation_error"
    wrong = client.post(f"/api/v1/records/drafts/{rid}/approve", headers=bob,
                        json={"expect": "0" * 64})
    assert wrong.status_code == 409 and error_code(wrong) == "invalid_transition"
    ok = client.post(f"/api/v1/records/drafts/{rid}/approve", headers=bob,
                     json={"expect": digest})
    assert ok.status_code == 200, ok.get_json()


def test_an_admin_password_reset_revokes_the_accounts_api_tokens(env):
    """A token minted with a stolen session must not outlive the reset of that account."""
    rt, app, people = env
    secret = new_token(rt, people["alice"])
    client = app.test_client()
    assert client.get("/api/v1/me", headers=bearer(secret)).status_code == 200
    with rt.sessions() as s:
        root = s.get(Staff, people["root"].id)
        actions.reset_password(s, root, "alice", rt.now())
        s.commit()
    resp = client.get("/api/v1/me", headers=bearer(secret))
    assert resp.status_code == 401 and error_code(resp) == "unauthorized"
    with rt.sessions() as s:
        from bot.store.models import AuditEntry
        entry = s.scalars(select(AuditEntry).where(
            AuditEntry.action == "api_token_revoke_all")).one()
        assert (entry.actor, entry.object_id, entry.detail["count"]) == ("root", "alice", 1)
