"""Issue 6 items 3, 4, 5a, as an attacker would try them: one person publishing alone,
look-alike or reserved accounts, a racing bootstrap, changes slipped in after approval, and
a reschedule into quiet hours. Real Redis, SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.clock import SHANGHAI, to_local_naive, to_utc_naive
from bot.errors import CampaignInvalid, NotFound, PermissionDenied
from bot.store.models import AuditEntry, Campaign, Follower, Record, Staff, Subscription
from push import campaigns as C
from push.campaigns import Audience
from push.staff import add_staff, authenticate
from tests.conftest import SMALL_PACK, load_pack

TEMPLATES = {
    "出行资讯": {"template_id": "TPL_TRAVEL", "channel": "subscribe", "long_term": True,
             "fields": {"thing1": "title", "time2": "date", "thing3": "district"}},
}
FERRY_BODY = "受台风影响，石井码头至金门航线暂停运营，复航时间另行通知。"


@pytest.fixture
def rt(runtime):
    runtime.settings = runtime.settings.replace(push={"templates": TEMPLATES})
    load_pack(runtime)
    keys = {}
    with runtime.sessions() as s:
        for i, district in enumerate(["南安市", "丰泽区"]):
            openid = f"oCitizen{i:020d}"
            s.add(Follower(openid=openid, active=True))
            s.add(Subscription(openid=openid, topic="出行资讯", district=district,
                               notice_kind="", source="message",
                               created_at=to_utc_naive(runtime.now())))
        for name, role in (("root", "admin"), ("alice", "editor"), ("bob", "reviewer"),
                           ("carol", "reviewer")):
            keys[name] = add_staff(s, name, role, runtime.now(), "bootstrap")[1]
        s.commit()
    runtime.keys = keys
    return runtime


def who(session, name: str) -> Staff:
    return session.scalar(select(Staff).where(Staff.name == name))


def make(rt, session, actor="alice", **aud) -> Campaign:
    aud = aud or {"topic": "出行资讯", "district": "南安市"}
    return C.create_campaign(session, rt.settings, rt.now(), actor=actor,
                             refs=["notice:n-ferry"], audience=Audience(**aud))


def approved(rt, session) -> Campaign:
    c = make(rt, session)
    C.submit(session, c, who(session, "alice"), rt.now())
    C.approve(session, rt.settings, c, who(session, "bob"), rt.now())
    return c


def trail(session, campaign_id: int) -> list[tuple[str, str]]:
    return [(a.actor, a.action) for a in session.scalars(
        select(AuditEntry).where(AuditEntry.campaign_id == campaign_id).order_by(AuditEntry.id))]


# --- item 3: two real people -------------------------------------------------------------

def test_admin_who_submitted_cannot_approve(rt):
    """An admin submitting someone else's draft and approving it is one person publishing."""
    with rt.sessions() as s:
        c = make(rt, s)
        C.submit(s, c, who(s, "root"), rt.now())
        assert c.submitter == "root"
        with pytest.raises(PermissionDenied, match="another staff account"):
            C.approve(s, rt.settings, c, who(s, "root"), rt.now())
        C.approve(s, rt.settings, c, who(s, "bob"), rt.now())
        assert c.status == "approved" and c.approver == "bob"


def test_system_draft_needs_a_second_person(rt):
    """Drafts made on content import are written by `system`: the submitter is the author."""
    from push.drafts import drafts_for_changes

    with rt.sessions() as s:
        [cid] = drafts_for_changes(s, rt.settings, rt.now(), ["notice:n-ferry"])
        c = C.get_campaign(s, cid)
        assert c.author == "system"
        C.submit(s, c, who(s, "root"), rt.now())
        with pytest.raises(PermissionDenied, match="another staff account"):
            C.approve(s, rt.settings, c, who(s, "root"), rt.now())


def test_lookalike_and_reserved_names_are_refused(rt):
    with rt.sessions() as s:
        for name in ("ａｌｉｃｅ", "ALICE", " Alice ", "ali\u200bce", "Ｓｙｓｔｅｍ", "system",
                     "BOOTSTRAP", "-", "a b"):
            with pytest.raises(PermissionDenied):
                add_staff(s, name, "reviewer", rt.now(), "root")
        staff, _ = add_staff(s, "Ｄａｖｅ", "reviewer", rt.now(), "root")
        assert staff.name == "dave"  # stored normalised
        s.commit()
        # lookups normalise: the full-width spelling logs in to the same account
        assert authenticate(s, "ＡＬＩＣＥ", rt.keys["alice"]).name == "alice"
        with pytest.raises(PermissionDenied, match="wrong or missing key"):
            authenticate(s, "Alice", rt.keys["bob"])


def test_author_under_another_spelling_cannot_approve(rt):
    """A campaign written by "alice" cannot be approved by the account "ａｌｉｃｅ" — there is
    none, and a reviewer login under a look-alike resolves to the real account."""
    with rt.sessions() as s:
        c = make(rt, s, actor="bob")
        C.submit(s, c, who(s, "alice"), rt.now())
        reviewer = authenticate(s, "ＢＯＢ", rt.keys["bob"])
        with pytest.raises(PermissionDenied, match="another staff account"):
            C.approve(s, rt.settings, c, reviewer, rt.now())


def test_first_account_must_be_admin(db_url, runtime):
    with runtime.sessions() as s:
        with pytest.raises(PermissionDenied, match="must be an admin"):
            add_staff(s, "wang", "editor", runtime.now(), "bootstrap")


def test_concurrent_bootstraps_give_one_admin(runtime, monkeypatch):
    """Both bootstraps see an empty staff table before either writes: exactly one wins."""
    import push.staff as staff_mod

    real_count = staff_mod.staff_count
    barrier = threading.Barrier(2, timeout=20)

    def counted(session):
        n = real_count(session)
        barrier.wait()  # both have read "no accounts yet"
        return n

    monkeypatch.setattr(staff_mod, "staff_count", counted)
    outcomes: dict[str, object] = {}

    def bootstrap(name: str) -> None:
        try:
            with runtime.sessions() as s:
                staff_mod.add_staff(s, name, "admin", runtime.now(), "bootstrap")
                s.commit()
            outcomes[name] = "ok"
        except Exception as exc:  # noqa: BLE001 - the loser's error is asserted below
            outcomes[name] = exc

    threads = [threading.Thread(target=bootstrap, args=(n,)) for n in ("first", "second")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(str(v) == "ok" for v in outcomes.values()) == [False, True], outcomes
    loser = next(v for v in outcomes.values() if v != "ok")
    assert isinstance(loser, PermissionDenied), loser
    with runtime.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Staff)) == 1


def test_disable_and_rotate_key(rt):
    from push.staff import disable_staff, rotate_key

    with rt.sessions() as s:
        root, alice = who(s, "root"), who(s, "alice")
        with pytest.raises(PermissionDenied):
            rotate_key(s, "bob", alice, rt.now())  # an editor cannot rotate another's key
        _, new_key = rotate_key(s, "alice", alice, rt.now())  # but may rotate their own
        s.commit()
        with pytest.raises(PermissionDenied, match="wrong or missing key"):
            authenticate(s, "alice", rt.keys["alice"])
        assert authenticate(s, "alice", new_key).name == "alice"
        with pytest.raises(PermissionDenied):
            disable_staff(s, "bob", alice, rt.now())
        with pytest.raises(PermissionDenied, match="last active admin"):
            disable_staff(s, "root", root, rt.now())
        disable_staff(s, "bob", root, rt.now())
        s.commit()
        with pytest.raises(PermissionDenied, match="disabled"):
            authenticate(s, "bob", rt.keys["bob"])
        with pytest.raises(NotFound):
            disable_staff(s, "nobody-here", root, rt.now())
        actions = [(a.actor, a.action, a.detail.get("name")) for a in s.scalars(
            select(AuditEntry).where(AuditEntry.action.like("staff_%")).order_by(AuditEntry.id))]
    assert ("alice", "staff_rotate_key", "alice") in actions
    assert ("root", "staff_disable", "bob") in actions


# --- item 4: the reviewer approves what will be sent -------------------------------------

def test_approval_hashes_what_will_be_sent(rt):
    from push.review import recheck, review_hash

    with rt.sessions() as s:
        c = approved(rt, s)
        assert c.approved_hash == review_hash(s, c) and len(c.approved_hash) == 64
        assert c.approved_at == to_utc_naive(rt.now())
        assert recheck(s, rt.settings, c, rt.now()) and c.status == "approved"


@pytest.mark.parametrize("change", ["field", "audience", "title", "urgent", "payload_text"])
def test_change_after_approval_goes_back_to_review(rt, change):
    """Whatever is slipped in after approval (even straight into the database) is caught."""
    from push.review import recheck

    with rt.sessions() as s:
        c = approved(rt, s)
        s.commit()
        payload = dict(c.payload)
        if change == "field":
            template = dict(payload["template"])
            template["data"] = {**template["data"], "thing1": {"value": "免费乘船"}}
            payload["template"] = template
        elif change == "payload_text":
            payload["text"] = "请点击链接领取补贴"
        elif change == "audience":
            c.district = None  # every district instead of 南安市
        elif change == "title":
            c.title = "另一个标题"
        else:
            c.urgent = True  # would bypass quiet hours
        c.payload = payload
        s.commit()
        assert recheck(s, rt.settings, c, rt.now()) is False
        s.commit()
        assert c.status == "submitted" and c.approver is None and c.approved_hash is None
        entry = s.scalars(select(AuditEntry).where(AuditEntry.campaign_id == c.id)
                          .order_by(AuditEntry.id.desc())).first()
    expected = {"field": "payload.template", "payload_text": "payload.text",
                "audience": "audience", "title": "title", "urgent": "urgent"}[change]
    assert (entry.actor, entry.action) == ("system", "back_to_review")
    assert expected in entry.detail["changed"]


def test_record_text_changed_after_approval_is_re_reviewed(rt, tmp_path):
    """A content import that rewrites the record after approval: back to review, with the
    new text rendered for the reviewer; a second approval lets it go."""
    from push.review import recheck

    with rt.sessions() as s:
        c = approved(rt, s)
        s.commit()
        cid = c.id
    changed = tmp_path / "changed.toml"
    changed.write_text(Path(SMALL_PACK).read_text(encoding="utf-8").replace(
        FERRY_BODY, "石井码头至金门航线今日恢复运营。"), encoding="utf-8")
    load_pack(rt, str(changed))
    with rt.sessions() as s:
        c = C.get_campaign(s, cid)
        assert recheck(s, rt.settings, c, rt.now()) is False
        s.commit()
        assert c.status == "submitted"
        assert "今日恢复运营" in c.payload["text"] and "暂停运营" not in c.payload["text"]
        back = s.scalars(select(AuditEntry).where(AuditEntry.action == "back_to_review")).one()
        assert back.detail["changed"] == ["record notice:n-ferry"] and back.detail["rerendered"]
        with pytest.raises(PermissionDenied):  # bob approved the old text; carol reviews
            C.approve(s, rt.settings, c, who(s, "alice"), rt.now())
        C.approve(s, rt.settings, c, who(s, "carol"), rt.now())
        assert recheck(s, rt.settings, c, rt.now())


def test_campaign_approved_before_hashes_goes_back_to_review(rt):
    from push.review import recheck

    with rt.sessions() as s:
        c = approved(rt, s)
        c.approved_hash = None  # as if approved before migration 0003
        assert recheck(s, rt.settings, c, rt.now()) is False and c.status == "submitted"


def test_edit_after_approval_sends_back_and_editor_cannot_approve(rt):
    with rt.sessions() as s:
        c = approved(rt, s)
        changed = C.edit(s, rt.settings, c, who(s, "root"), rt.now(),
                         overrides={"thing1": "航线停航"})
        assert changed == ["payload.template"]
        assert c.status == "submitted" and c.approved_hash is None
        assert c.payload["template"]["data"]["thing1"] == {"value": "航线停航"}
        with pytest.raises(PermissionDenied, match="another staff account"):
            C.approve(s, rt.settings, c, who(s, "root"), rt.now())  # root edited it
        C.approve(s, rt.settings, c, who(s, "carol"), rt.now())
        assert c.status == "approved"


def test_rejected_campaign_can_be_edited_and_resubmitted(rt):
    with rt.sessions() as s:
        c = make(rt, s)
        C.submit(s, c, who(s, "alice"), rt.now())
        C.reject(s, c, who(s, "bob"), "标题太长", rt.now())
        C.edit(s, rt.settings, c, who(s, "alice"), rt.now(), title="航线停航")
        assert c.status == "draft" and c.title == "航线停航"
        C.submit(s, c, who(s, "alice"), rt.now())
        assert c.status == "submitted" and c.reject_reason is None
        C.approve(s, rt.settings, c, who(s, "bob"), rt.now())
        assert c.status == "approved"
        with pytest.raises(CampaignInvalid, match="at most 20"):
            C.edit(s, rt.settings, c, who(s, "alice"), rt.now(), overrides={"thing1": "长" * 21})


def test_approve_with_expected_hash_refuses_a_changed_campaign(rt):
    from push.review import review_hash

    with rt.sessions() as s:
        c = make(rt, s)
        C.submit(s, c, who(s, "alice"), rt.now())
        seen = review_hash(s, c)
        c.district = None  # widened after the reviewer looked
        with pytest.raises(CampaignInvalid, match="changed since you reviewed"):
            C.approve(s, rt.settings, c, who(s, "bob"), rt.now(), expect=seen[:12])
        c.district = "南安市"
        C.approve(s, rt.settings, c, who(s, "bob"), rt.now(), expect=seen[:12])


# --- item 5a: quiet hours cannot be bypassed by a reschedule -----------------------------

def test_reschedule_into_quiet_hours_moves_to_the_morning(rt):
    night = datetime(2026, 11, 27, 23, 30, tzinfo=SHANGHAI)
    morning = datetime(2026, 11, 28, 7, 0)
    with rt.sessions() as s:
        c = approved(rt, s)
        due = C.schedule(s, rt.settings, c, who(s, "bob"), night, rt.now())
        assert to_local_naive(c.send_at) == morning and to_local_naive(due) == morning
        draft = make(rt, s)
        C.schedule(s, rt.settings, draft, who(s, "alice"), night, rt.now())
        assert to_local_naive(draft.send_at) == morning
        urgent = C.create_campaign(s, rt.settings, rt.now(), actor="alice",
                                   refs=["notice:n-ferry"], urgent=True,
                                   audience=Audience(topic="出行资讯", district="南安市"))
        C.schedule(s, rt.settings, urgent, who(s, "alice"), night, rt.now())
        assert to_local_naive(urgent.send_at) == night.replace(tzinfo=None)


def test_rescheduled_campaign_does_not_start_in_quiet_hours(rt):
    """The planner honours send_at: at 23:45 the rescheduled campaign must not start."""
    from push.fanout import start_campaign

    night = datetime(2026, 11, 27, 23, 30, tzinfo=SHANGHAI)
    with rt.sessions() as s:
        c = approved(rt, s)
        C.schedule(s, rt.settings, c, who(s, "bob"), night, rt.now())
        s.commit()
        assert start_campaign(s, c.id, night + timedelta(minutes=15)) is None
        assert start_campaign(s, c.id, datetime(2026, 11, 28, 7, 1, tzinfo=SHANGHAI))


def test_record_update_before_approval_is_rendered_again_at_submit(rt):
    with rt.sessions() as s:
        c = make(rt, s)
        s.commit()
        record = s.scalar(select(Record).where(Record.rid == "n-ferry"))
        record.data = {**record.data, "body": "新的通知正文。"}
        record.digest = "0" * 64
        s.commit()
        C.submit(s, c, who(s, "alice"), rt.now(), rt.settings)
        assert "新的通知正文" in c.payload["text"]


# --- the command line, as staff would use it ---------------------------------------------

def test_cli_review_flow(tmp_path):
    """Reading needs a login; status/approve show what is approved; a reschedule into quiet
    hours says it moved; an edit after approval goes back to review; keys rotate, accounts
    are disabled."""
    from tests.test_cli import qzbot

    db = f"sqlite:///{tmp_path}/cli.sqlite3"

    def run(*args, key=None):
        return qzbot(*args, db_url=db, env={"QZBOT_STAFF_KEY": key} if key else None)

    assert run("db", "upgrade").returncode == 0
    run("content", "import", SMALL_PACK)
    assert "must be an admin" in run("staff", "add", "wang", "--role", "editor").stderr
    root = run("staff", "add", "Root", "--role", "admin").stdout.strip().splitlines()[-1]
    keys = {name: run("staff", "add", name, "--role", role, "--as", "ＲＯＯＴ", key=root)
            .stdout.strip().splitlines()[-1] for name, role in (("wang", "editor"),
                                                                 ("li", "reviewer"))}
    assert "reserved" in run("staff", "add", "System", "--role", "reviewer", "--as", "root",
                             key=root).stderr
    ids = tmp_path / "ids.txt"
    ids.write_text("oCitizen00000000000000000001\n")
    run("ask", "--openid", "oCitizen00000000000000000001", "--event", "subscribe", "")
    cid = run("push", "create", "--as", "wang", "--openids", str(ids), "--record",
              "notice:n-ferry", "--field", "thing1=石井金门航线停航", key=keys["wang"]
              ).stdout.strip().splitlines()[-1]
    assert run("push", "submit", "--as", "wang", cid, key=keys["wang"]).returncode == 0
    for anonymous in (run("push", "status", cid), run("push", "list"), run("staff", "list"),
                      run("push", "status", "--as", "li", cid, key=keys["wang"])):
        assert anonymous.returncode != 0 and "石井" not in anonymous.stdout
        assert "wang" not in anonymous.stdout
    assert "wang\teditor\tactive" in run("staff", "list", "--as", "li", key=keys["li"]).stdout
    status = run("push", "status", "--as", "li", cid, key=keys["li"])
    assert status.returncode == 0, status.stderr
    for part in ("thing1=石井金门航线停航", "TPL_TRAVEL_NOTICE_DEMO", "urgent: no",
                 "explicit list of 1 openids; 1 now", "[customer-service text]",
                 FERRY_BODY, "+08:00 wang: submit", "submitter wang"):
        assert part in status.stdout, (part, status.stdout)
    seen = next(ln.split(": ")[1] for ln in status.stdout.splitlines() if "review hash" in ln)
    ok = run("push", "approve", "--as", "li", "--expect", seen[:12], cid, key=keys["li"])
    assert ok.returncode == 0 and "thing1=石井金门航线停航" in ok.stdout, ok.stderr
    moved = run("push", "schedule", "--as", "li", "--at", "2026-11-27T23:30", cid,
                key=keys["li"])
    assert "quiet hours" in moved.stdout and "2026-11-28 07:00" in moved.stdout, moved.stderr
    edited = run("push", "edit", "--as", "wang", "--field", "thing1=航线恢复", cid,
                 key=keys["wang"])
    assert edited.returncode == 0 and f"campaign {cid}: submitted" in edited.stdout
    listed = run("push", "list", "--as", "wang", key=keys["wang"])
    assert f"{cid}\tsubmitted" in listed.stdout
    rotated = run("staff", "rotate-key", "wang", "--as", "wang", key=keys["wang"])
    new_key = rotated.stdout.strip().splitlines()[-1]
    assert run("push", "list", "--as", "wang", key=keys["wang"]).returncode != 0
    assert run("push", "list", "--as", "wang", key=new_key).returncode == 0
    assert run("staff", "disable", "wang", "--as", "root", key=root).returncode == 0
    assert "disabled" in run("push", "list", "--as", "wang", key=new_key).stderr
