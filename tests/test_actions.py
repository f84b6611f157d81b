"""The staff service layer (push/actions.py) called directly, as the console will call it."""

from __future__ import annotations

from datetime import datetime

import pytest

from bot.clock import SHANGHAI, to_utc_naive
from bot.errors import CampaignInvalid, InvalidTransition, NotFound, PermissionDenied
from bot.store.db import transaction
from bot.store.models import Follower, Subscription
from push import actions
from tests.conftest import load_pack

KEYS: dict[str, str] = {}


@pytest.fixture
def rt(runtime):
    load_pack(runtime)
    with transaction(runtime.sessions) as s:
        openid = "oCitizen00000000000000000001"
        s.add(Follower(openid=openid, active=True))
        s.add(Subscription(openid=openid, topic="出行资讯", district="南安市", notice_kind="",
                           source="message", created_at=to_utc_naive(runtime.now())))
        root = actions.add_staff(s, None, "root", "admin", runtime.now())
        KEYS["root"] = root.key
        admin = actions.login(s, "root", root.key)
        for name, role in (("alice", "editor"), ("bob", "reviewer")):
            KEYS[name] = actions.add_staff(s, admin, name, role, runtime.now()).key
    return runtime


def act(rt, name: str, use_case, *args, **kwargs):
    """Log in as `name` and run a use-case in its own committed transaction."""
    with transaction(rt.sessions) as s:
        actor = actions.login(s, name, KEYS[name])
        return use_case(s, rt.settings, actor, *args, **kwargs)


def act_staff(rt, name: str, use_case, *args):
    """Log in as `name` and run a staff-account use-case (no settings) in its own transaction."""
    with transaction(rt.sessions) as s:
        return use_case(s, actions.login(s, name, KEYS[name]), *args)


def draft(rt) -> int:
    with transaction(rt.sessions) as s:
        view = actions.create(s, rt.settings, actions.login(s, "alice", KEYS["alice"]),
                              rt.now(), refs=["notice:n-ferry"],
                              audience=actions.Audience(topic="出行资讯", district="南安市"))
    assert view.status == "draft" and view.author == "alice" and view.audience_preview == 1
    return view.id


def test_submit_approve_returns_a_fan_out_for_after_the_commit(rt):
    cid = draft(rt)
    submitted = act(rt, "alice", actions.submit, cid, rt.now())
    assert submitted.campaign.status == "submitted" and submitted.fan_out is None
    approved = act(rt, "bob", actions.approve, cid, rt.now())
    assert approved.campaign.status == "approved" and approved.campaign.approver == "bob"
    assert approved.fan_out == actions.FanOut(cid, None)  # now
    assert any(line.startswith("review hash: ") for line in approved.review)
    with rt.sessions() as s:
        view = actions.status(s, actions.login(s, "bob", KEYS["bob"]), cid)
        listed = actions.list_campaigns(s, actions.login(s, "alice", KEYS["alice"]))
    assert [(e.actor, e.action) for e in view.trail] == [
        ("alice", "create"), ("alice", "submit"), ("bob", "approve")]
    assert view.campaign.approved_hash and view.counts["total"] == 0
    assert view.campaign.approved_at.tzinfo is not None
    assert [c.id for c in listed] == [cid]


def test_refusals_raise_the_project_errors(rt):
    cid = draft(rt)
    with pytest.raises(PermissionDenied, match="wrong or missing key"):
        act(rt, "alice", lambda s, settings, actor: actions.login(s, "bob", "nope"))
    with pytest.raises(NotFound):
        act(rt, "alice", actions.submit, cid + 99, rt.now())
    with pytest.raises(InvalidTransition, match="cannot approve"):
        act(rt, "bob", actions.approve, cid, rt.now())  # still a draft
    act(rt, "alice", actions.submit, cid, rt.now())
    with pytest.raises(PermissionDenied, match="needs reviewer"):
        act(rt, "alice", actions.approve, cid, rt.now())
    with pytest.raises(CampaignInvalid, match="changed since you reviewed it"):
        act(rt, "bob", actions.approve, cid, rt.now(), expect="0" * 16)
    with pytest.raises(CampaignInvalid, match="needs a reason"):
        act(rt, "bob", actions.reject, cid, rt.now(), reason=" ")
    with pytest.raises(PermissionDenied, match="log in"):
        with transaction(rt.sessions) as s:
            actions.add_staff(s, None, "mallory", "admin", rt.now())
    with pytest.raises(PermissionDenied, match="needs admin"):
        act(rt, "alice", lambda s, settings, actor: actions.add_staff(
            s, actor, "eve", "editor", rt.now()))
    # nothing refused above changed the campaign
    assert act(rt, "alice", lambda s, settings, actor: actions.status(
        s, actor, cid)).campaign.status == "submitted"


def test_schedule_into_quiet_hours_moves_and_enqueues_when_due(rt):
    cid = draft(rt)
    act(rt, "alice", actions.submit, cid, rt.now())
    act(rt, "bob", actions.approve, cid, rt.now())
    night = datetime(2026, 11, 27, 23, 30, tzinfo=SHANGHAI)
    result = act(rt, "bob", actions.schedule, cid, rt.now(), at=night)
    morning = datetime(2026, 11, 28, 7, 0, tzinfo=SHANGHAI)
    assert result.campaign.status == "scheduled" and result.moved_to == morning
    assert result.fan_out == actions.FanOut(cid, morning)
    cancelled = act(rt, "alice", actions.cancel, cid, rt.now())
    assert cancelled.campaign.status == "cancelled" and cancelled.fan_out is None


def test_staff_accounts_disable_rotate_list(rt):
    rotated = act_staff(rt, "alice", actions.rotate_key, "alice", rt.now())  # its own key
    KEYS["alice"] = rotated.key
    with pytest.raises(PermissionDenied, match="needs admin"):
        act_staff(rt, "alice", actions.rotate_key, "bob", rt.now())
    assert act_staff(rt, "root", actions.disable_staff, "bob", rt.now()).active is False
    with pytest.raises(PermissionDenied, match="disabled"):
        act_staff(rt, "bob", actions.list_staff)
    with transaction(rt.sessions) as s:
        accounts = actions.list_staff(s, actions.login(s, "alice", KEYS["alice"]))
    assert [(a.name, a.role, a.active) for a in accounts] == [
        ("alice", "editor", True), ("bob", "reviewer", False), ("root", "admin", True)]
