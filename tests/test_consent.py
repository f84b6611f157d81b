"""Subscribe-notification consent: the three events, the ledger, the one-time redirect.

Both databases, real Redis. The template ids are the ones in the recorded samples under
tests/data, so those samples are posted as WeChat sends them.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from datetime import timedelta
from html import unescape
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select

from bot.store.db import transaction
from bot.store.models import Consent, Interaction, Subscription
from bot.subscribemsg import (
    REDIRECT_PATH,
    ReservedInvalid,
    check_reserved,
    confirm_url,
    issue_reserved,
)
from push.consent import (
    available_consent,
    consume,
    grant,
    ledger_counts,
    redirect_scene,
    revoke_all,
    template_topic,
)
from tests.wx import ACCOUNT, CITIZEN

DATA = Path(__file__).parent / "data"
TRAVEL = "VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc"  # long-term
PROJECT = "9nLIlbOQZC5Y89AZteFEux3WCXRRRG5Wfzkpssu4bLI"  # long-term
GOV = "TPL_GOV_ONE_TIME_0000000000000000000000000"  # one-time
POLICY = "TPL_POLICY_TEMPLATE_MESSAGE"  # template message: no consent
BASE_URL = "https://qzbot.example.gov.cn"
OTHER = "oOTHERcitizen000000000000000"
TEMPLATES = {
    "出行资讯": {"template_id": TRAVEL, "channel": "subscribe", "long_term": True,
             "fields": {"thing1": "title"}},
    "项目进展": {"template_id": PROJECT, "channel": "subscribe", "long_term": True,
             "fields": {"thing1": "title"}},
    "政务公开": {"template_id": GOV, "channel": "subscribe", "long_term": False,
             "fields": {"thing1": "title"}},
    "政策解读": {"template_id": POLICY, "channel": "template", "fields": {"first": "title"}},
}


# the conftest runtime, with the consent templates and a public base URL configured
SETTINGS_OVERRIDES = {"push": {"templates": TEMPLATES, "public_base_url": BASE_URL}}


_times = iter(range(1_700_000_000, 1_800_000_000))


def consent_xml(event: str, wrapper: str, items: list, *, openid: str = CITIZEN,
                create_time: int | None = None) -> str:
    """A consent event; items are dicts of List fields, or raw XML strings (malformed cases)."""
    lists = "".join(
        item if isinstance(item, str) else
        "<List>" + "".join(f"<{k}><![CDATA[{v}]]></{k}>" for k, v in item.items()) + "</List>"
        for item in items)
    create_time = next(_times) if create_time is None else create_time
    return (f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
            f"<FromUserName><![CDATA[{openid}]]></FromUserName>"
            f"<CreateTime>{create_time}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
            f"<Event><![CDATA[{event}]]></Event><{wrapper}>{lists}</{wrapper}></xml>")


def popup(*pairs: tuple[str, str], **kw) -> str:
    """A popup event with (template_id, accept|reject) entries."""
    return consent_xml("subscribe_msg_popup_event", "SubscribeMsgPopupEvent",
                       [{"TemplateId": t, "SubscribeStatusString": s, "PopupScene": "2"}
                        for t, s in pairs], **kw)


def post(wechat, xml: str) -> None:
    """Post an event; WeChat must get 200 and `success`, whatever the content."""
    status, body = wechat.post_xml(xml)
    assert (status, body) == (200, "success")


def consents(runtime, openid: str = CITIZEN, template_id: str | None = None) -> list[Consent]:
    with runtime.sessions() as s:
        stmt = select(Consent).where(Consent.openid == openid).order_by(Consent.id)
        if template_id:
            stmt = stmt.where(Consent.template_id == template_id)
        return list(s.scalars(stmt))


def available(runtime, template_id: str, openid: str = CITIZEN) -> list[Consent]:
    return [c for c in consents(runtime, openid, template_id) if c.status == "available"]


def topics_of(runtime, openid: str = CITIZEN) -> list[tuple[str, str, str, str]]:
    with runtime.sessions() as s:
        rows = s.scalars(select(Subscription).where(Subscription.openid == openid)
                         .order_by(Subscription.id))
        return [(r.topic, r.district, r.notice_kind, r.source) for r in rows]


def total_consents(runtime) -> int:
    with runtime.sessions() as s:
        return s.scalar(select(func.count()).select_from(Consent))


# --- the three events ----------------------------------------------------------------------


def test_recorded_popup_with_one_list_grants_long_term_and_subscribes(wechat, runtime):
    post(wechat, (DATA / "consent_popup_one.xml").read_text())
    [row] = consents(runtime)
    assert (row.template_id, row.long_term, row.scene, row.status, row.source) == \
        (TRAVEL, True, "long_term", "available", "popup")
    assert topics_of(runtime) == [("出行资讯", "", "", "popup")]


def test_recorded_popup_with_several_lists_accept_and_reject(wechat, runtime):
    with transaction(runtime.sessions) as s:  # an earlier long-term grant of PROJECT
        grant(s, CITIZEN, PROJECT, long_term=True, scene="", source="popup", now=runtime.now())
    post(wechat, (DATA / "consent_popup_many.xml").read_text())
    assert [c.status for c in consents(runtime, template_id=TRAVEL)] == ["available"]
    assert [c.status for c in consents(runtime, template_id=PROJECT)] == ["revoked"]
    # accepting subscribes to the topic; rejecting does not (and does not unsubscribe)
    assert topics_of(runtime) == [("出行资讯", "", "", "popup")]


def test_popup_mixed_one_time_and_long_term(wechat, runtime):
    post(wechat, popup((GOV, "accept"), (PROJECT, "accept"), (TRAVEL, "reject")))
    [gov] = consents(runtime, template_id=GOV)
    assert not gov.long_term and gov.scene.startswith("popup:") and gov.status == "available"
    [project] = consents(runtime, template_id=PROJECT)
    assert project.long_term
    assert consents(runtime, template_id=TRAVEL) == []  # nothing to revoke, nothing granted
    assert {t[0] for t in topics_of(runtime)} == {"政务公开", "项目进展"}


def test_each_one_time_accept_is_one_send(wechat, runtime):
    post(wechat, popup((GOV, "accept")))
    post(wechat, popup((GOV, "accept")))
    assert len(available(runtime, GOV)) == 2
    now = runtime.now()
    with transaction(runtime.sessions) as s:
        first = available_consent(s, CITIZEN, GOV)
        assert consume(s, first, 101, now)
        assert not consume(s, first, 102, now)  # the same grant twice: no
        second = available_consent(s, CITIZEN, GOV)
        assert second.id != first.id and consume(s, second, 103, now)
        assert available_consent(s, CITIZEN, GOV) is None
    assert sorted(c.used_by for c in consents(runtime, template_id=GOV)) == [101, 103]


def test_a_redelivered_popup_does_not_add_up(wechat, runtime, redis_client):
    xml = popup((GOV, "accept"), create_time=1_650_000_000)
    post(wechat, xml)
    redis_client.flushdb()  # past the dedupe window: only the ledger's idempotency is left
    post(wechat, xml)
    assert len(available(runtime, GOV)) == 1


@pytest.mark.parametrize("wrapper", ["SubscribeMsgChangeEvent", "SubscribeMsgPopupEvent"])
def test_change_event_in_either_wrapper_revokes(wechat, runtime, wrapper):
    post(wechat, popup((TRAVEL, "accept"), (GOV, "accept")))
    post(wechat, consent_xml("subscribe_msg_change_event", wrapper,
                             [{"TemplateId": TRAVEL, "SubscribeStatusString": "reject"}]))
    assert [c.status for c in consents(runtime, template_id=TRAVEL)] == ["revoked"]
    assert len(available(runtime, GOV)) == 1  # other templates untouched


@pytest.mark.parametrize("sample", ["consent_change.xml", "consent_change_popup_wrapper.xml"])
def test_recorded_change_samples_revoke(wechat, runtime, sample):
    post(wechat, (DATA / "consent_popup_one.xml").read_text())
    post(wechat, (DATA / sample).read_text())
    assert [c.status for c in consents(runtime, template_id=TRAVEL)] == ["revoked"]


def test_a_long_term_accept_after_a_reject_reactivates(wechat, runtime):
    post(wechat, popup((TRAVEL, "accept")))
    post(wechat, popup((TRAVEL, "reject")))
    assert [c.status for c in consents(runtime)] == ["revoked"]
    post(wechat, popup((TRAVEL, "accept")))
    assert [(c.status, c.scene) for c in consents(runtime)] == [("available", "long_term")]


@pytest.mark.parametrize("code, status, revoked", [
    ("43101", "failed:user refuse", True),
    ("", "failed:user refuse", True),
    ("43101", "", True),
    ("0", "success", False),
    ("20001", "failed:user block", False),
    ("-1", "failed: system failed", False),
])
def test_sent_event_refusal_revokes(wechat, runtime, code, status, revoked):
    post(wechat, popup((GOV, "accept"), (GOV, "accept"), (TRAVEL, "accept")))
    post(wechat, consent_xml("subscribe_msg_sent_event", "SubscribeMsgSentEvent",
                             [{"TemplateId": GOV, "MsgID": "1700827132819554304",
                               "ErrorCode": code, "ErrorStatus": status}]))
    assert len(available(runtime, GOV)) == (0 if revoked else 2)
    assert len(available(runtime, TRAVEL)) == 1
    with runtime.sessions() as s:
        row = s.scalar(select(Interaction).where(Interaction.kind == "subscribe_msg_sent_event"))
    assert row.detail["items"][0]["outcome"] == ("revoked" if revoked else
                                                 "delivered" if code == "0" else "failed")


@pytest.mark.parametrize("sample", ["consent_sent.xml", "consent_sent_many.xml"])
def test_recorded_sent_samples_are_recorded_not_revoking(wechat, runtime, sample):
    post(wechat, (DATA / "consent_popup_one.xml").read_text())
    post(wechat, (DATA / sample).read_text())
    assert len(available(runtime, TRAVEL)) == 1


def test_unknown_template_in_a_popup_is_skipped_and_the_rest_processed(wechat, runtime, caplog):
    caplog.set_level(logging.WARNING, logger="qzbot")
    post(wechat, popup(("TPL_NOBODY_CONFIGURED", "accept"), (GOV, "accept")))
    assert {c.template_id for c in consents(runtime)} == {GOV}
    assert [t[0] for t in topics_of(runtime)] == ["政务公开"]
    assert "unknown template" in caplog.text and CITIZEN not in caplog.text


MALFORMED = {
    "list without TemplateId": ["<List><SubscribeStatusString>accept</SubscribeStatusString>"
                                "</List>"],
    "empty TemplateId": [{"TemplateId": " ", "SubscribeStatusString": "accept"}],
    "garbage status": [{"TemplateId": GOV, "SubscribeStatusString": "maybe"}],
    "no status": [{"TemplateId": GOV}],
    "list is text": ["<List>accept</List>"],
    "nested garbage": ["<List><TemplateId><x>GOV</x></TemplateId>"
                       "<SubscribeStatusString>accept</SubscribeStatusString></List>"],
    "no lists": [],
}


@pytest.mark.parametrize("items", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_popup_is_success_and_grants_nothing(wechat, runtime, items):
    post(wechat, consent_xml("subscribe_msg_popup_event", "SubscribeMsgPopupEvent", items))
    assert total_consents(runtime) == 0 and topics_of(runtime) == []


def test_wrong_wrapper_or_accept_in_change_event_grants_nothing(wechat, runtime):
    item = [{"TemplateId": GOV, "SubscribeStatusString": "accept"}]
    post(wechat, consent_xml("subscribe_msg_change_event", "SubscribeMsgChangeEvent", item))
    post(wechat, consent_xml("subscribe_msg_popup_event", "SubscribeMsgSentEvent", item))
    post(wechat, consent_xml("subscribe_msg_sent_event", "SubscribeMsgSentEvent", item))
    assert total_consents(runtime) == 0 and topics_of(runtime) == []


def test_popup_for_a_citizen_with_a_narrow_subscription_does_not_widen_it(wechat, runtime):
    from push.subscriptions import subscribe

    with transaction(runtime.sessions) as s:
        subscribe(s, CITIZEN, "出行资讯", "丰泽区", now=runtime.now())
    post(wechat, popup((TRAVEL, "accept")))
    assert topics_of(runtime) == [("出行资讯", "丰泽区", "", "message")]
    assert len(available(runtime, TRAVEL)) == 1


# --- the ledger ----------------------------------------------------------------------------


def test_grant_is_idempotent_per_scene(runtime):
    now = runtime.now()
    with transaction(runtime.sessions) as s:
        assert grant(s, CITIZEN, GOV, long_term=False, scene="7", source="redirect", now=now)
        assert not grant(s, CITIZEN, GOV, long_term=False, scene="7", source="redirect", now=now)
        assert grant(s, CITIZEN, GOV, long_term=False, scene="8", source="redirect", now=now)
        assert grant(s, CITIZEN, TRAVEL, long_term=True, scene="", source="popup", now=now)
        assert not grant(s, CITIZEN, TRAVEL, long_term=True, scene="x", source="popup", now=now)
        with pytest.raises(ValueError):
            grant(s, CITIZEN, GOV, long_term=False, scene="", source="popup", now=now)
    assert len(available(runtime, GOV)) == 2 and len(consents(runtime, template_id=TRAVEL)) == 1


def test_a_used_or_revoked_one_time_scene_never_grants_again(runtime):
    now = runtime.now()
    with transaction(runtime.sessions) as s:
        grant(s, CITIZEN, GOV, long_term=False, scene="1", source="redirect", now=now)
        consume(s, available_consent(s, CITIZEN, GOV), 5, now)
        grant(s, CITIZEN, GOV, long_term=False, scene="2", source="redirect", now=now)
        revoke_all(s, CITIZEN, GOV, "test", now)
        assert not grant(s, CITIZEN, GOV, long_term=False, scene="1", source="redirect",
                         now=now)
        assert not grant(s, CITIZEN, GOV, long_term=False, scene="2", source="redirect",
                         now=now)
        assert available_consent(s, CITIZEN, GOV) is None
        assert redirect_scene(s, CITIZEN, GOV) == "3"
        assert redirect_scene(s, OTHER, GOV) == "1"


def test_long_term_is_used_first_and_never_consumed(runtime, clock):
    now = runtime.now()
    with transaction(runtime.sessions) as s:
        grant(s, CITIZEN, GOV, long_term=False, scene="old", source="popup", now=now)
        grant(s, CITIZEN, GOV, long_term=False, scene="new", source="popup",
              now=now + timedelta(minutes=1))
    with transaction(runtime.sessions) as s:
        assert available_consent(s, CITIZEN, GOV).scene == "old"  # oldest one-time first
        grant(s, CITIZEN, GOV, long_term=True, scene="", source="popup", now=now)
    with transaction(runtime.sessions) as s:
        consent = available_consent(s, CITIZEN, GOV)
        assert consent.long_term
        assert consume(s, consent, 1, now) and consume(s, consent, 2, now)
        assert consent.status == "available"
        revoke_all(s, CITIZEN, GOV, "test", now)
        assert not consume(s, consent, 3, now)  # revoked since it was looked up
    assert [c.status for c in consents(runtime)] == ["revoked"] * 3


def test_consume_is_atomic_across_two_sessions(runtime):
    now = runtime.now()
    with transaction(runtime.sessions) as s:
        grant(s, CITIZEN, GOV, long_term=False, scene="1", source="redirect", now=now)
    first, second = runtime.sessions(), runtime.sessions()
    try:
        mine, theirs = available_consent(first, CITIZEN, GOV), available_consent(second,
                                                                                 CITIZEN, GOV)
        assert mine.id == theirs.id
        assert consume(first, mine, 1, now)  # row now locked by the first, uncommitted
        outcome: dict[str, bool] = {}

        def other_worker() -> None:
            outcome["second"] = consume(second, theirs, 2, now)  # waits for the first
            second.commit()

        worker = threading.Thread(target=other_worker)
        worker.start()
        time.sleep(0.3)
        first.commit()
        worker.join(timeout=30)
        assert outcome == {"second": False}
    finally:
        first.close()
        second.close()
    [row] = consents(runtime)
    assert (row.status, row.used_by) == ("used", 1)


def test_revoke_all_and_ledger_counts(runtime):
    now = runtime.now()
    with transaction(runtime.sessions) as s:
        for scene in "123":
            grant(s, CITIZEN, GOV, long_term=False, scene=scene, source="redirect", now=now)
        grant(s, OTHER, GOV, long_term=False, scene="1", source="redirect", now=now)
        grant(s, CITIZEN, TRAVEL, long_term=True, scene="", source="popup", now=now)
        consume(s, available_consent(s, CITIZEN, GOV), 9, now)
        assert revoke_all(s, CITIZEN, GOV, "test", now) == 2
        assert revoke_all(s, CITIZEN, GOV, "test", now) == 0
        assert ledger_counts(s) == {
            GOV: {"long_term": 0, "one_time": 1, "used": 1, "revoked": 2},
            TRAVEL: {"long_term": 1, "one_time": 0, "used": 0, "revoked": 0},
        }


def test_template_topic(runtime):
    assert template_topic(runtime.settings, TRAVEL) == "出行资讯"
    assert template_topic(runtime.settings, POLICY) == "政策解读"
    assert template_topic(runtime.settings, "nope") is None
    assert template_topic(runtime.settings, "") is None


# --- the legacy one-time redirect ---------------------------------------------------------


def redirect(app, **args):
    """GET the redirect as the citizen's browser would after WeChat's confirm page."""
    return app.test_client().get(REDIRECT_PATH, query_string=args)


def good_args(runtime, *, link_scene="5", **tamper):
    """The redirect of CITIZEN confirming GOV through a link for `link_scene`, then `tamper`."""
    args = {"openid": CITIZEN, "template_id": GOV, "action": "confirm", "scene": link_scene,
            "reserved": issue_reserved(runtime.settings, CITIZEN, GOV, link_scene,
                                       runtime.now())}
    args.update(tamper)
    return args


def test_confirm_url_is_wechats_link_with_our_token(runtime):
    url = confirm_url(runtime.settings, CITIZEN, GOV, "5", runtime.now())
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path, parts.fragment) == \
        ("https", "mp.weixin.qq.com", "/mp/subscribemsg", "wechat_redirect")
    q = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert q["action"] == "get_confirm" and q["appid"] == runtime.settings.wechat.app_id
    assert (q["scene"], q["template_id"]) == ("5", GOV)
    assert q["redirect_url"] == BASE_URL + REDIRECT_PATH
    # platform rule: reserved is a-zA-Z0-9, at most 128 bytes
    assert re.fullmatch(r"[A-Za-z0-9]{1,128}", q["reserved"])
    check_reserved(runtime.settings, q["reserved"], CITIZEN, GOV, "5", runtime.now())
    with pytest.raises(ValueError):
        confirm_url(runtime.settings, CITIZEN, GOV, "10001", runtime.now())
    with pytest.raises(ValueError):
        confirm_url(runtime.settings.replace(push={"public_base_url": ""}), CITIZEN, GOV, "5",
                    runtime.now())


def test_valid_confirm_grants_one_credit_and_subscribes(app, runtime):
    args = good_args(runtime)
    resp = redirect(app, **args)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "订阅成功" in html and resp.mimetype == "text/html"
    assert resp.headers["Cache-Control"] == "no-store"
    [row] = consents(runtime)
    assert (row.template_id, row.scene, row.long_term, row.source, row.status) == \
        (GOV, "5", False, "redirect", "available")
    assert topics_of(runtime) == [("政务公开", "", "", "redirect")]
    # the same confirmation again (reload, replay): still one credit
    again = redirect(app, **args)
    assert again.status_code == 200 and "不会增加" in again.get_data(as_text=True)
    assert len(available(runtime, GOV)) == 1
    # a new link (new scene) is a new confirmation: a second credit
    assert redirect(app, **good_args(runtime, link_scene="6")).status_code == 200
    assert len(available(runtime, GOV)) == 2


def test_cancel_grants_nothing_and_revokes(app, runtime):
    assert redirect(app, **good_args(runtime, link_scene="1")).status_code == 200
    resp = redirect(app, **good_args(runtime, link_scene="2", action="cancel"))
    assert resp.status_code == 200 and "已取消" in resp.get_data(as_text=True)
    # the credit of link 1 is revoked; link 2's scene keeps a revoked cancel marker
    assert [c.status for c in consents(runtime)] == ["revoked", "revoked"]


def _forged(runtime):
    now = runtime.now()
    s = runtime.settings
    return {
        "forged token": dict(reserved="v1" + "9" * 10 + "0" * 64),
        "random text token": dict(reserved="abc"),
        "token with symbols": dict(reserved="v1-" + "a" * 70),
        "missing token": dict(reserved=""),
        "token for another openid": dict(openid=OTHER),
        "token for another template": dict(template_id=TRAVEL),
        "tampered scene": dict(scene="6"),
        "scene out of range": dict(scene="10001"),
        "scene not a number": dict(scene="5 OR 1"),
        "expired token": dict(reserved=issue_reserved(s, CITIZEN, GOV, "5",
                                                      now - timedelta(days=2))),
        "token signed with another key": dict(reserved=issue_reserved(
            s.replace(security={"secret_key": "another"}), CITIZEN, GOV, "5", now)),
        "missing openid": dict(openid=""),
        "missing template": dict(template_id=""),
        "bad action": dict(action="grant"),
        "over-long openid": dict(openid="o" * 500),
        "unknown template with a valid token": dict(
            template_id="TPL_UNKNOWN", reserved=issue_reserved(s, CITIZEN, "TPL_UNKNOWN", "5",
                                                               now)),
    }


FORGED_CASES = ["forged token", "random text token", "token with symbols", "missing token",
                "token for another openid", "token for another template", "tampered scene",
                "scene out of range", "scene not a number", "expired token",
                "token signed with another key", "missing openid", "missing template",
                "bad action", "over-long openid", "unknown template with a valid token"]


@pytest.mark.parametrize("case", FORGED_CASES)
def test_forged_redirects_grant_nothing(app, runtime, caplog, case):
    caplog.set_level(logging.WARNING, logger="qzbot")
    args = good_args(runtime, **_forged(runtime)[case])
    resp = redirect(app, **args)
    html = resp.get_data(as_text=True)
    assert resp.status_code in (400, 403)
    assert resp.mimetype == "text/html" and "订阅成功" not in html and "公众号" in html
    assert total_consents(runtime) == 0
    assert topics_of(runtime) == [] and topics_of(runtime, OTHER) == []
    assert "subscribemsg refused" in caplog.text
    assert CITIZEN not in caplog.text and OTHER not in caplog.text


def test_forged_cancel_revokes_nothing(app, runtime):
    assert redirect(app, **good_args(runtime)).status_code == 200
    resp = redirect(app, **good_args(runtime, action="cancel", reserved="v1" + "1" * 74))
    assert resp.status_code == 403
    assert len(available(runtime, GOV)) == 1


def test_token_expires_after_the_configured_ttl(app, runtime, clock):
    args = good_args(runtime)
    clock.now += timedelta(seconds=runtime.settings.push.reserved_ttl_seconds + 1)
    assert redirect(app, **args).status_code == 403
    with pytest.raises(ReservedInvalid):
        check_reserved(runtime.settings, args["reserved"], CITIZEN, GOV, "5", clock.now)


def test_help_link_round_trip_through_wechats_redirect(app, wechat, runtime):
    reply = wechat.text("订阅")
    [href] = re.findall(r'<a href="([^"]+)">', reply)
    q = {k: v[0] for k, v in parse_qs(urlsplit(unescape(href)).query).items()}
    assert q["template_id"] == GOV and q["scene"] == "1"
    # WeChat redirects the citizen's browser to redirect_url with these values
    back = urlsplit(q["redirect_url"]).path
    resp = app.test_client().get(back, query_string={
        "openid": CITIZEN, "template_id": q["template_id"], "action": "confirm",
        "scene": q["scene"], "reserved": q["reserved"]})
    assert resp.status_code == 200
    assert len(available(runtime, GOV)) == 1
    # the next link offers a fresh scene; someone else cannot use this citizen's link
    assert 'scene=2&' in wechat.text("订阅")
    stolen = app.test_client().get(back, query_string={
        "openid": OTHER, "template_id": GOV, "action": "confirm", "scene": q["scene"],
        "reserved": q["reserved"]})
    assert stolen.status_code == 403 and consents(runtime, OTHER) == []
