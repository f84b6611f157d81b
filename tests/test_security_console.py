"""Hostile review of the staff console (brief R1): each test is an attack that worked before
its fix, written first as a failing test.

1. Four-eyes bypass by swap: a reviewer opens a draft in review; its editor re-bases it (allowed
   on a draft in review), rewrites it and submits it again; the reviewer's still-open "批准并
   发布" form then published the rewritten content nobody reviewed. The form now pins what the
   reviewer saw (RevisionView.digest, posted as `expect`); a mismatch is refused.
2. Password guessing with a stolen session: /account/password checked the "current password"
   without any throttle, so a stolen cookie could guess it at leisure and then take the account
   over. Wrong current passwords now count in the login throttle (per name and address).
3. A stolen session cookie outlived "退出登录": the console session is a signed client-side
   cookie, and logout only cleared the browser's copy; a copy kept working (and refreshed its
   idle timer) for as long as it was used. Logout now ends every session of the account (the
   session epoch moves on).
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from bot.store.models import AuditEntry, Record, Staff
from push import actions
from tests.consolekit import console_app, csrf_token, login, make_staff

QUESTION = "电动自行车能带上公交车吗"
BENIGN = "不可以携带电动自行车乘坐公交车。"
EVIL = "请扫码添加客服微信领取补贴：http://evil.example"
STRONG = "Correct-Horse-9-battery"


def _post(client, path: str, data: dict | None = None, token_from: str = "/content/", **kw):
    token = csrf_token(client, token_from)
    return client.post(path, data={"csrf_token": token, **(data or {})}, **kw)


def _text(resp) -> str:
    return resp.get_data(as_text=True)


# --- 1. content approval pinned to what the reviewer saw -----------------------------------


def _faq(client, answer: str, rid: str = "f-sec") -> int:
    resp = _post(client, "/content/new", {"kind": "faq", "f_id": rid, "f_question": QUESTION,
                                          "f_answer": answer, "f_keywords": "电动车"})
    assert resp.status_code == 302, _text(resp)
    return int(re.search(r"/content/d/(\d+)$", resp.headers["Location"]).group(1))


def _approve_form(page: str) -> dict[str, str]:
    """The hidden fields of the revision page's approve form (as the browser would post)."""
    form = re.search(r'<form method="post" action="/content/d/\d+/approve".*?</form>', page,
                     re.S).group(0)
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))


def test_a_draft_swapped_after_the_reviewer_looked_is_not_published(runtime):
    app = console_app(runtime)
    ed = login(app.test_client(), make_staff(runtime, "sec-ed", "editor"))
    rev = login(app.test_client(), make_staff(runtime, "sec-rev", "reviewer"))
    rev_id = _faq(ed, BENIGN)
    assert _post(ed, f"/content/d/{rev_id}/submit").status_code == 302
    seen = _text(rev.get(f"/content/d/{rev_id}"))  # the reviewer reads the benign answer
    assert BENIGN in seen
    form = _approve_form(seen)
    # meanwhile the editor pulls it back by a re-base, rewrites it and submits it again
    assert _post(ed, f"/content/d/{rev_id}/rebase").status_code == 302
    assert _post(ed, f"/content/d/{rev_id}/edit",
                 {"f_question": QUESTION, "f_answer": EVIL, "f_keywords": "电动车"}
                 ).status_code == 302
    assert _post(ed, f"/content/d/{rev_id}/submit").status_code == 302
    # the reviewer's open page posts the approval of what they saw
    resp = rev.post(f"/content/d/{rev_id}/approve", data=form, follow_redirects=True)
    assert EVIL in _text(resp)  # the page now shows the new content to be reviewed
    with runtime.sessions() as session:
        live = session.scalar(select(Record).where(Record.kind == "faq", Record.rid == "f-sec"))
        assert live is None  # nothing the reviewer did not see went live
    # reading the new version and approving it works
    form = _approve_form(_text(rev.get(f"/content/d/{rev_id}")))
    assert rev.post(f"/content/d/{rev_id}/approve", data=form).status_code == 302
    with runtime.sessions() as session:
        live = session.scalar(select(Record).where(Record.kind == "faq", Record.rid == "f-sec"))
        assert live is not None and live.data["answer"] == EVIL


def test_the_approve_form_carries_the_pin(runtime):
    app = console_app(runtime)
    ed = login(app.test_client(), make_staff(runtime, "pin-ed", "editor"))
    rev = login(app.test_client(), make_staff(runtime, "pin-rev", "reviewer"))
    rev_id = _faq(ed, BENIGN, rid="f-pin")
    _post(ed, f"/content/d/{rev_id}/submit")
    form = _approve_form(_text(rev.get(f"/content/d/{rev_id}")))
    assert re.fullmatch(r"[0-9a-f]{64}", form.get("expect", ""))
    form["expect"] = "0" * 64  # forged pin
    rev.post(f"/content/d/{rev_id}/approve", data=form)
    with runtime.sessions() as session:
        assert session.scalar(select(Record).where(Record.rid == "f-pin")) is None


# --- 2. the "current password" check is throttled ------------------------------------------


@pytest.fixture
def victim(runtime):
    app = console_app(runtime)
    staff = make_staff(runtime, "sec-victim", "editor")
    with runtime.sessions() as session:
        admin = session.scalar(select(Staff).where(Staff.name == "bootstrap-admin"))
        actions.set_password(session, admin, "sec-victim", STRONG, runtime.now())
        session.commit()
        staff = session.scalar(select(Staff).where(Staff.name == "sec-victim"))
        session.expunge(staff)
    return app, staff


def test_a_stolen_session_cannot_guess_the_current_password(runtime, victim):
    app, staff = victim
    thief = login(app.test_client(), staff)
    limit = runtime.settings.console.login_max_failures
    for n in range(limit):
        resp = _post(thief, "/account/password",
                     {"old_password": f"guess-{n}-Wrong!", "new_password": "Thief-owns-it-42",
                      "confirm": "Thief-owns-it-42"}, token_from="/account")
        assert resp.status_code in (400, 429)
    # the right guess now is refused too: the name is locked out
    resp = _post(thief, "/account/password",
                 {"old_password": STRONG, "new_password": "Thief-owns-it-42",
                  "confirm": "Thief-owns-it-42"}, token_from="/account")
    assert resp.status_code == 429
    with runtime.sessions() as session:
        changes = session.scalars(select(AuditEntry).where(
            AuditEntry.action == "staff_password_change")).all()
        assert changes == []


# --- 3. logout ends the session everywhere ---------------------------------------------------


def test_a_copied_cookie_dies_with_logout(runtime):
    app = console_app(runtime)
    staff = make_staff(runtime, "sec-copy", "editor")
    victim = login(app.test_client(), staff)
    assert victim.get("/account").status_code == 200
    stolen = victim.get_cookie("qzc_session").value
    token = csrf_token(victim, "/account")
    assert victim.post("/logout", data={"csrf_token": token}).status_code == 302
    thief = app.test_client()
    thief.set_cookie("qzc_session", stolen)
    resp = thief.get("/account")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
