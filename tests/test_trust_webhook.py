"""Issue 6, items 2, 8a, 8e: forged and replayed callbacks, odd timestamps, overlong fields,
presence ordered by event time, impossible coordinates. Each test is an attack that got
through before the fix."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.settings import load_settings
from bot.store.models import Follower, Interaction
from bot.wechat.inbound import message_xml, open_reply, signed_request
from bot.wechat.signature import make_signature
from tests.conftest import TOKEN
from tests.wx import ACCOUNT, CITIZEN, WeChat

VICTIM = "oVICTIMcitizen00000000000001"


def _post(wx: WeChat, xml: str, *, aes: bool, **sign):
    sign.setdefault("timestamp", wx.now())
    args, body = signed_request(xml, TOKEN, wx.crypto if aes else None, **sign)
    resp = wx.client.post("/wechat", query_string=args, data=body.encode())
    return resp.status_code, resp.get_data(as_text=True)


def _follower(rt, openid: str) -> Follower | None:
    with rt.sessions() as s:
        return s.get(Follower, openid)


def test_plaintext_forgery_refused_when_an_aes_key_is_configured(wechat, caplog):
    """A captured URL's `signature` signs no body: a plaintext unfollow in a victim's name."""
    forged = message_xml(ACCOUNT, VICTIM, "event", create_time=wechat.now(),
                         Event="unsubscribe")
    status, body = _post(wechat, forged, aes=False)
    assert status == 403 and body == "plaintext_refused"
    assert _follower(wechat.rt, VICTIM) is None and "refused plaintext_refused" in caplog.text


def test_captured_url_cannot_carry_another_message(wechat):
    """Even with plaintext opted in, one (timestamp, nonce) pair carries one message."""
    wechat.rt.settings = wechat.rt.settings.replace(wechat={"allow_plaintext": True})
    now = wechat.now()
    first = message_xml(ACCOUNT, VICTIM, "text", create_time=now, msg_id=11, Content="12328")
    assert _post(wechat, first, aes=False, timestamp=now, nonce="777")[0] == 200
    forged = message_xml(ACCOUNT, VICTIM, "event", create_time=now, Event="unsubscribe")
    status, body = _post(wechat, forged, aes=False, timestamp=now, nonce="777")
    assert (status, body) == (403, "replayed")
    wechat.app.extensions["qzbot.webhook"].presence.flush()
    assert _follower(wechat.rt, VICTIM).active  # the presence write only; never unfollowed


def test_identical_redelivery_gets_the_cached_answer_once(wechat, app):
    """A retry that re-uses the pair (the docs do not say it cannot) is answered from cache."""
    calls = []
    hook = app.extensions["qzbot.webhook"]
    original = hook.router.dispatch
    hook.router.dispatch = lambda m, c: calls.append(1) or original(m, c)
    xml = message_xml(ACCOUNT, CITIZEN, "text", create_time=wechat.now(), msg_id=5,
                      Content="12328")
    args, body = signed_request(xml, TOKEN, wechat.crypto, timestamp=wechat.now(), nonce="5")
    replies = [wechat.client.post("/wechat", query_string=args, data=body.encode())
               for _ in range(3)]
    assert [r.status_code for r in replies] == [200, 200, 200] and len(calls) == 1
    texts = {open_reply(r.get_data(as_text=True), wechat.crypto)["Content"] for r in replies}
    assert len(texts) == 1


def test_dedupe_key_outlives_the_freshness_window(wechat, runtime):
    """A captured unfollow replayed 4 minutes later (still fresh) must meet the cache, not
    run again after the citizen re-followed: the dedupe key lives as long as the window."""
    now = wechat.now()
    wechat.event("unsubscribe")
    key = "qzbot:dd:" + hashlib.sha1(f"evt:{CITIZEN}:{now}:unsubscribe:".encode()).hexdigest()
    window = runtime.settings.wechat.timestamp_window_seconds
    assert runtime.redis.ttl(key) >= window


ODD_TIMESTAMPS = ["9" * 400, "1e9", "-5", "١٧٠٠٠٠٠٠٠٠", "12.5", " 1", "", "0x10", "1_000"]


@pytest.mark.parametrize("ts", ODD_TIMESTAMPS)
@pytest.mark.parametrize("mode", ["aes", "plain", "get"])
def test_odd_timestamps_are_a_4xx_never_a_500(wechat, ts, mode):
    xml = message_xml(ACCOUNT, CITIZEN, "text", create_time=wechat.now(), Content="12328")
    args, body = signed_request(xml, TOKEN, wechat.crypto if mode == "aes" else None,
                                nonce="1")
    args["timestamp"] = ts
    args["signature"] = make_signature(TOKEN, ts, "1")  # as if the token had leaked
    if mode == "get":
        resp = wechat.client.get("/wechat", query_string=dict(args, echostr="e"))
    else:
        resp = wechat.client.post("/wechat", query_string=args, data=body.encode())
    assert 400 <= resp.status_code < 500, resp.get_data(as_text=True)


@pytest.mark.parametrize("nonce", ["", "x" * 65, "1\n2", "<nonce>"])
def test_malformed_nonce_is_a_4xx(wechat, nonce):
    xml = message_xml(ACCOUNT, CITIZEN, "text", create_time=wechat.now(), Content="12328")
    args, body = signed_request(xml, TOKEN, wechat.crypto, nonce="1")
    args["nonce"] = nonce
    resp = wechat.client.post("/wechat", query_string=args, data=body.encode())
    assert 400 <= resp.status_code < 500


@pytest.mark.parametrize("openid,fields", [
    ("o" * 65, {"Event": "subscribe"}),
    ("o" * 65, {"Event": "LOCATION", "Latitude": "24.9", "Longitude": "118.6"}),
    ("o" * 65, {"Event": "unsubscribe"}),
    (CITIZEN, {"Event": "SCAN", "EventKey": "k" * 2000}),
    (CITIZEN, {"Event": "subscribe_msg_popup_event", "SubscribeMsgPopupEvent":
               "<List><TemplateId>" + "T" * 129 + "</TemplateId></List>"}),
])
def test_overlong_fields_refused_at_parse_time(wechat, openid, fields):
    """Nothing downstream can fail on a value longer than its column (or write half of it)."""
    xml = message_xml(ACCOUNT, openid, "event", create_time=wechat.now(), **fields)
    xml = xml.replace("&lt;", "<").replace("&gt;", ">")
    if "SubscribeMsgPopupEvent" in fields:  # nested XML, not CDATA text
        inner = fields["SubscribeMsgPopupEvent"]
        xml = xml.replace(f"<![CDATA[{inner}]]>", inner)
    status, body = _post(wechat, xml, aes=True)
    assert (status, body) == (400, "malformed_xml")
    with wechat.rt.sessions() as s:
        assert s.scalar(select(Follower.openid).limit(1)) is None


def test_buffered_presence_never_reactivates_a_later_unfollow(app, runtime, clock):
    """Message at 10:00 (buffered), unfollow at 10:00:05 (committed), then the flush."""
    from bot.presence import Presence

    wx = WeChat(app)
    wx.event("subscribe")
    presence = Presence(runtime, interval=3600)  # flushed by hand below
    presence.seen(CITIZEN, clock.now)
    clock.now = clock.now + timedelta(seconds=5)
    wx.event("unsubscribe")
    assert presence.flush() == 1
    follower = _follower(runtime, CITIZEN)
    assert follower.active is False and follower.last_message_at is not None
    clock.now = clock.now + timedelta(seconds=5)  # a later message (re-followed) counts
    presence.seen(CITIZEN, clock.now)
    presence.seen("oNEWcitizen", clock.now)
    assert presence.flush() == 2
    assert _follower(runtime, CITIZEN).active and _follower(runtime, "oNEWcitizen").active
    presence.close()


def test_presence_never_moves_times_backwards(runtime, clock):
    """Two processes' buffers flushed out of order: the later message time wins."""
    from bot.presence import Presence

    late, early = Presence(runtime, interval=3600), Presence(runtime, interval=3600)
    early.seen(CITIZEN, clock.now)
    late.seen(CITIZEN, clock.now + timedelta(minutes=1))
    late.flush()
    early.flush()
    expected = (clock.now + timedelta(minutes=1)).astimezone(tz=None)
    stored = _follower(runtime, CITIZEN).last_message_at
    assert stored.replace(second=0) == expected.astimezone(
        __import__("datetime").timezone.utc).replace(tzinfo=None, second=0, microsecond=0)
    late.close()
    early.close()


BAD_POINTS = [("nan", "118.6"), ("24.9", "inf"), ("-inf", "nan"), ("1e999", "0"),
              ("91", "118.6"), ("24.9", "-180.5"), ("NaN", "NaN")]


@pytest.mark.parametrize("lat,lon", BAD_POINTS)
def test_impossible_coordinates_get_the_normal_reply_and_store_nothing(wechat, lat, lon):
    assert wechat.event("LOCATION", Latitude=lat, Longitude=lon, Precision="30") is None
    reply = wechat.send(msg_type="location", Location_X=lat, Location_Y=lon, Scale="15",
                        Label="泉州")
    assert reply["Content"].startswith("已收到您的位置")
    with wechat.rt.sessions() as s:
        assert s.scalar(select(Interaction.id).where(Interaction.kind == "location")) is None
        follower = s.get(Follower, CITIZEN)
        assert follower is None or follower.latitude is None


def test_valid_coordinates_still_stored(wechat):
    assert wechat.event("LOCATION", Latitude="24.874", Longitude="118.676") is None
    assert _follower(wechat.rt, CITIZEN).latitude == pytest.approx(24.874)


def test_retired_require_encryption_setting_says_what_replaced_it(tmp_path):
    from bot.errors import ConfigError

    path = tmp_path / "c.toml"
    path.write_text("[wechat]\nrequire_encryption = true\n")
    with pytest.raises(ConfigError, match="allow_plaintext"):
        load_settings(path, env={})


@pytest.mark.parametrize("window", [0, 10, 100000])
def test_unbounded_timestamp_window_refused(window):
    from bot.errors import ConfigError

    with pytest.raises(ConfigError, match="timestamp_window_seconds"):
        load_settings(None, env={"QZBOT_WECHAT__APP_ID": "wx1", "QZBOT_WECHAT__TOKEN": "t",
                                 "QZBOT_SECURITY__SECRET_KEY": "k" * 32,
                                 "QZBOT_WECHAT__TIMESTAMP_WINDOW_SECONDS": str(window)})
