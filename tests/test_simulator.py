"""The WeChat API simulator: tokens, validation, recipient rules, quotas, faults, control API."""

from __future__ import annotations

import ast
import threading
import time
from pathlib import Path

import pytest
import requests

import wechatsim
from wechatsim import SimConfig, create_simulator, sim_state, start_in_thread

APP_ID = "wxtestapp0000001"
SECRET = "test-secret"
OPENID = "oAbCdEfGhIjKlMnOpQrStUvWx01"
OTHER = "oAbCdEfGhIjKlMnOpQrStUvWx02"
CUSTOM = "/cgi-bin/message/custom/send"
TEMPLATE = "/cgi-bin/message/template/send"
BIZSEND = "/cgi-bin/message/subscribe/bizsend"
ONCE = "/cgi-bin/message/template/subscribe"


class Clock:
    """A settable clock for token lifetimes, windows and quotas."""

    def __init__(self, start: float = 1_700_000_000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def make(clock):
    """Build a simulator test client: make(**SimConfig overrides) -> (client, app)."""

    def _make(**overrides):
        config = SimConfig(app_id=APP_ID, app_secret=SECRET, seed=7, clock=clock, **overrides)
        app = create_simulator(config)
        return app.test_client(), app

    return _make


@pytest.fixture
def sim(make):
    return make()[0]


def token_of(client, force: bool = False) -> str:
    body = {"grant_type": "client_credential", "appid": APP_ID, "secret": SECRET,
            "force_refresh": force}
    return client.post("/cgi-bin/stable_token", json=body).get_json()["access_token"]


def post(client, path: str, body, token: str | None = None, **kwargs):
    if token is None:
        token = token_of(client)
    return client.post(path, query_string={"access_token": token}, json=body,
                       **kwargs).get_json()


def text(openid: str = OPENID, content: str = "hello") -> dict:
    return {"touser": openid, "msgtype": "text", "text": {"content": content}}


def biz(data: dict, openid: str = OPENID, template_id: str = "TPL1") -> dict:
    return {"touser": openid, "template_id": template_id,
            "data": {k: {"value": v} for k, v in data.items()}}


def once(title: str = "停运通知", content: str = "明日停运", scene: object = "1") -> dict:
    return {"touser": OPENID, "template_id": "TPL", "scene": scene, "title": title,
            "data": {"content": {"value": content}}}


def faults(client, *rules, replace: bool = False, **extra):
    resp = client.post("/_sim/faults", json={"rules": list(rules), "replace": replace, **extra})
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


# --- access tokens -----------------------------------------------------------------------


def test_token_endpoint_issues_a_token(sim):
    got = sim.get("/cgi-bin/token", query_string={
        "grant_type": "client_credential", "appid": APP_ID, "secret": SECRET}).get_json()
    assert got["expires_in"] == 7200 and got["access_token"]
    assert post(sim, CUSTOM, text(), got["access_token"]) == {"errcode": 0, "errmsg": "ok"}


@pytest.mark.parametrize("args, errcode", [
    ({"grant_type": "password", "appid": APP_ID, "secret": SECRET}, 40002),
    ({"grant_type": "client_credential", "appid": "wxother", "secret": SECRET}, 40013),
    ({"grant_type": "client_credential", "appid": APP_ID, "secret": "wrong"}, 40125),
])
def test_token_credentials_are_checked(sim, args, errcode):
    assert sim.get("/cgi-bin/token", query_string=args).get_json()["errcode"] == errcode
    assert sim.post("/cgi-bin/stable_token", json=args).get_json()["errcode"] == errcode


def test_new_token_fetch_revokes_the_old_one_after_the_grace_period(sim, clock):
    args = {"grant_type": "client_credential", "appid": APP_ID, "secret": SECRET}
    first = sim.get("/cgi-bin/token", query_string=args).get_json()["access_token"]
    second = sim.get("/cgi-bin/token", query_string=args).get_json()["access_token"]
    assert first != second
    assert post(sim, CUSTOM, text(), first)["errcode"] == 0
    clock.advance(301)
    assert post(sim, CUSTOM, text(), first)["errcode"] == 40001
    assert post(sim, CUSTOM, text(), second)["errcode"] == 0


def test_token_expires_and_stable_token_then_issues_a_new_one(make, clock):
    sim, _ = make(token_ttl=100)
    token = token_of(sim)
    clock.advance(60)
    assert token_of(sim) == token  # stable_token answers the current one
    clock.advance(41)
    assert post(sim, CUSTOM, text(), token)["errcode"] == 42001
    assert token_of(sim) != token


@pytest.mark.parametrize("query, errcode", [({}, 41001), ({"access_token": "forged"}, 40001)])
def test_missing_or_unknown_token(sim, query, errcode):
    assert sim.post(CUSTOM, query_string=query, json=text()).get_json()["errcode"] == errcode


def test_stable_token_force_refresh_is_limited(make, clock):
    sim, _ = make(force_refresh_daily=2)
    first = token_of(sim)
    forced = token_of(sim, force=True)
    assert forced != first
    body = {"grant_type": "client_credential", "appid": APP_ID, "secret": SECRET,
            "force_refresh": True}
    assert sim.post("/cgi-bin/stable_token", json=body).get_json()["errcode"] == 45011
    clock.advance(31)
    assert token_of(sim, force=True) not in (first, forced)
    clock.advance(31)
    assert sim.post("/cgi-bin/stable_token", json=body).get_json()["errcode"] == 45009
    stats = sim.get("/_sim/stats").get_json()
    assert stats["tokens"]["issued"] == 3 and stats["tokens"]["force_refresh"] == 4


def test_invalidate_token_control(sim):
    token = token_of(sim)
    assert sim.post("/_sim/invalidate_token").get_json()["invalidated"] == token
    assert post(sim, CUSTOM, text(), token)["errcode"] == 40001
    new = token_of(sim)
    assert new != token
    sim.post("/_sim/invalidate_token", json={"expired": True})
    assert post(sim, CUSTOM, text(), new)["errcode"] == 42001


# --- payload validation ------------------------------------------------------------------


@pytest.mark.parametrize("body, errcode", [
    (b"", 44002),
    (b"{not json", 47001),
    (b"[1, 2]", 47001),
])
def test_bad_bodies(sim, body, errcode):
    resp = sim.post(CUSTOM, query_string={"access_token": token_of(sim)}, data=body,
                    content_type="application/json")
    assert resp.get_json()["errcode"] == errcode


@pytest.mark.parametrize("touser", [None, "", "not-an-openid", "o123", "o" + "x" * 80, 42])
@pytest.mark.parametrize("path", [CUSTOM, TEMPLATE, BIZSEND, ONCE])
def test_touser_must_look_like_an_openid(sim, path, touser):
    body = {**text(), **biz({"thing1": "x"}), **once(), "touser": touser}
    assert post(sim, path, body)["errcode"] == 40003


@pytest.mark.parametrize("body, errcode", [
    ({"touser": OPENID, "msgtype": "fax"}, 40008),
    (text(content=""), 44004),
    (text(content="长" * 683), 45002),
    ({"touser": OPENID, "msgtype": "news", "news": {"articles": []}}, 44003),
    ({"touser": OPENID, "msgtype": "news", "news": {"articles": [{"title": "a"}] * 2}}, 45008),
    ({"touser": OPENID, "msgtype": "news", "news": {"articles": [{"title": "a"}]}}, 0),
    (text(content="长" * 682), 0),
])
def test_custom_message_checks(sim, body, errcode):
    assert post(sim, CUSTOM, body)["errcode"] == errcode


@pytest.mark.parametrize("data, errcode", [
    ({"thing1": "泉" * 20}, 0),
    ({"thing1": "泉" * 21}, 47003),
    ({"thing1": ""}, 47003),
    ({"number2": "1" * 32}, 0),
    ({"number2": "1" * 33}, 47003),
    ({"number2": "12a"}, 47003),
    ({"character_string3": "A-" * 16}, 0),
    ({"character_string3": "A" * 33}, 47003),
    ({"character_string3": "闽C12345"}, 47003),
    ({"phrase4": "已完成"}, 0),
    ({"phrase4": "六个汉字啊啊"}, 47003),
    ({"phrase4": "done"}, 47003),
    ({"car_number5": "闽C12345"}, 0),
    ({"car_number5": "闽C1234567"}, 47003),
    ({"phone_number6": "0595-12345678"}, 0),
    ({"amount7": "¥12.50"}, 0),
    ({"amount7": "twelve"}, 47003),
    ({"time8": "2024年5月1日 08:00"}, 0),
    ({"keyword1": "untyped"}, 47003),
])
def test_bizsend_value_limits(sim, data, errcode):
    got = post(sim, BIZSEND, biz(data))
    assert got["errcode"] == errcode
    if errcode == 0:
        assert isinstance(got["msgid"], int)


def test_bizsend_needs_template_and_data(sim):
    assert post(sim, BIZSEND, {"touser": OPENID, "data": {}})["errcode"] == 40037
    assert post(sim, BIZSEND, {"touser": OPENID, "template_id": "T"})["errcode"] == 47003


def test_template_send_returns_msgid_and_checks_typed_keys(sim):
    ok = post(sim, TEMPLATE, biz({"first": "旧模板字段", "thing2": "说明"}))
    assert ok["errcode"] == 0 and ok["msgid"]
    assert post(sim, TEMPLATE, biz({"thing2": "x" * 21}))["errcode"] == 47003


@pytest.mark.parametrize("body, errcode", [
    (once(), 0),
    (once(title="一" * 15, content="二" * 200), 0),
    (once(title="一" * 16), 47003),
    (once(content="二" * 201), 47003),
    (once(title=""), 47003),
    (once(scene="abc"), 47003),
    (once(scene=10001), 47003),
])
def test_subscribe_once_limits(sim, body, errcode):
    got = post(sim, ONCE, body)
    assert got["errcode"] == errcode
    assert "msgid" not in got


# --- recipients, windows, quotas ------------------------------------------------------------


def test_followers_list_gives_43004_on_custom_and_template(make):
    sim, _ = make(followers=[OPENID])
    assert post(sim, CUSTOM, text())["errcode"] == 0
    assert post(sim, CUSTOM, text(OTHER))["errcode"] == 43004
    assert post(sim, TEMPLATE, biz({"thing1": "x"}, OTHER))["errcode"] == 43004
    assert post(sim, BIZSEND, biz({"thing1": "x"}, OTHER))["errcode"] == 0
    sim.post("/_sim/followers", json={"followers": [OTHER], "add": True})
    assert post(sim, CUSTOM, text(OTHER))["errcode"] == 0
    sim.post("/_sim/followers", json={"followers": None})
    assert post(sim, CUSTOM, text("oSomebodyElse000000000000000"))["errcode"] == 0


def test_consent_refusals_give_43101(sim):
    resp = sim.post("/_sim/followers", json={"refused": [OPENID, f"{OTHER}:TPL2"]})
    assert resp.get_json() == {"followers": None, "refused": 2}
    assert post(sim, BIZSEND, biz({"thing1": "x"}))["errcode"] == 43101
    assert post(sim, ONCE, once())["errcode"] == 43101
    assert post(sim, BIZSEND, biz({"thing1": "x"}, OTHER, "TPL1"))["errcode"] == 0
    assert post(sim, BIZSEND, biz({"thing1": "x"}, OTHER, "TPL2"))["errcode"] == 43101
    assert post(sim, CUSTOM, text())["errcode"] == 0  # consent is not about custom messages


def test_customer_service_window_after_a_message(make, clock):
    sim, _ = make(cs_window=True)
    token = token_of(sim)
    assert post(sim, CUSTOM, text(), token)["errcode"] == 45015
    sim.post("/_sim/interactions", json={"openid": OPENID, "kind": "message"})
    assert [post(sim, CUSTOM, text(), token)["errcode"] for _ in range(6)] == [0] * 5 + [45047]
    sim.post("/_sim/interactions", json={"openid": OPENID, "kind": "message"})
    clock.advance(48 * 3600 + 1)
    assert post(sim, CUSTOM, text(), token_of(sim))["errcode"] == 45015


def test_customer_service_window_after_an_event(make, clock):
    sim, _ = make(cs_window=True)
    token = token_of(sim)
    sim.post("/_sim/interactions", json={"openid": OPENID, "kind": "event"})
    assert [post(sim, CUSTOM, text(), token)["errcode"] for _ in range(4)] == [0] * 3 + [45047]
    sim.post("/_sim/interactions", json={"openid": OPENID, "kind": "event"})
    clock.advance(61)
    assert post(sim, CUSTOM, text(), token)["errcode"] == 45015
    assert sim.post("/_sim/interactions", json={"openid": OPENID, "kind": "x"}).status_code == 400


def test_minute_and_daily_quotas(make, clock):
    sim, _ = make(minute_quotas={"message/custom/send": 2},
                  daily_quotas={"message/template/send": 1})
    token = token_of(sim)
    assert [post(sim, CUSTOM, text(), token)["errcode"] for _ in range(3)] == [0, 0, 45011]
    clock.advance(60)
    assert post(sim, CUSTOM, text(), token)["errcode"] == 0
    assert post(sim, TEMPLATE, biz({"thing1": "x"}), token)["errcode"] == 0
    assert post(sim, TEMPLATE, biz({"thing1": "x"}), token)["errcode"] == 45009


# --- faults --------------------------------------------------------------------------------


def test_errcode_fault_for_a_set_of_openids(sim):
    faults(sim, {"kind": "errcode", "api": "message/*", "errcode": 43101, "openids": [OTHER]})
    token = token_of(sim)
    assert post(sim, CUSTOM, text(), token)["errcode"] == 0
    assert post(sim, CUSTOM, text(OTHER), token) == {"errcode": 43101, "errmsg": "system error"}
    stats = sim.get("/_sim/stats").get_json()
    assert stats["calls"]["message/custom/send"] == {"0": 1, "43101": 1}
    assert stats["faults_fired"] == {"errcode": 1}


def test_errcode_fault_for_a_fraction(sim):
    faults(sim, {"kind": "errcode", "api": "message/custom/send", "errcode": -1,
                 "fraction": 0.3})
    token = token_of(sim)
    codes = [post(sim, CUSTOM, text(), token)["errcode"] for _ in range(300)]
    assert 50 < codes.count(-1) < 130
    assert sim.get("/_sim/stats").get_json()["accepted_total"] == codes.count(0)


def test_rate_limit_burst_by_count_and_by_duration(sim, clock):
    faults(sim, {"kind": "errcode", "api": "message/custom/send", "errcode": 45009, "count": 2})
    token = token_of(sim)
    assert [post(sim, CUSTOM, text(), token)["errcode"] for _ in range(3)] == [45009, 45009, 0]
    faults(sim, {"kind": "errcode", "api": "*", "errcode": 45011, "duration_s": 10})
    assert sim.get("/_sim/faults").get_json()["rules"][0]["active_for_s"] == 10
    assert post(sim, CUSTOM, text(), token)["errcode"] == 45011
    clock.advance(10)
    assert post(sim, CUSTOM, text(), token)["errcode"] == 0
    assert sim.get("/_sim/faults").get_json()["rules"] == []


def test_invalidate_token_fault(sim):
    token = token_of(sim)
    faults(sim, {"kind": "invalidate_token", "api": "message/custom/send", "count": 1})
    assert post(sim, CUSTOM, text(), token)["errcode"] == 40001
    assert post(sim, CUSTOM, text())["errcode"] == 0


@pytest.mark.parametrize("kind, status", [("garbage", 200), ("http500", 500)])
def test_garbage_and_http500(sim, kind, status):
    faults(sim, {"kind": kind, "api": "message/custom/send", "count": 1})
    resp = sim.post(CUSTOM, query_string={"access_token": token_of(sim)}, json=text())
    assert resp.status_code == status
    assert resp.get_json(silent=True) is None
    stats = sim.get("/_sim/stats").get_json()
    assert stats["calls"]["message/custom/send"] == {kind: 1} and stats["accepted_total"] == 0


def test_fault_after_accept_records_the_message(sim):
    faults(sim, {"kind": "garbage", "api": "message/custom/send", "after_accept": True})
    resp = sim.post(CUSTOM, query_string={"access_token": token_of(sim)}, json=text())
    assert resp.get_json(silent=True) is None
    assert sim.get("/_sim/stats").get_json()["accepted_total"] == 1


def test_latency_fault_and_base_latency(sim):
    token = token_of(sim)
    faults(sim, {"kind": "latency", "api": "message/custom/send", "latency_ms": 60})
    start = time.monotonic()
    assert post(sim, CUSTOM, text(), token)["errcode"] == 0
    assert time.monotonic() - start >= 0.06
    faults(sim, replace=True, latency_ms=40)
    assert sim.get("/_sim/faults").get_json() == {"rules": [], "latency_ms": 40.0}
    start = time.monotonic()
    post(sim, CUSTOM, text(), token)
    assert 0.04 <= time.monotonic() - start < 0.5


@pytest.mark.parametrize("body", [
    {"rules": [{"kind": "explode"}]},
    {"rules": [{"kind": "errcode", "fraction": 2}]},
    {"rules": [{"kind": "errcode", "colour": "red"}]},
    {"rules": {"kind": "errcode"}},
    {"latency_ms": "slow"},
])
def test_bad_fault_rules_are_refused(sim, body):
    resp = sim.post("/_sim/faults", json=body)
    assert resp.status_code == 400 and resp.get_json()["error"]


def test_faults_from_the_start_up_config(make):
    sim, _ = make(faults=[{"kind": "errcode", "api": "message/template/send", "errcode": 48001}])
    assert post(sim, TEMPLATE, biz({"thing1": "x"}))["errcode"] == 48001
    sim.post("/_sim/faults", json={"rules": [], "replace": True})
    assert post(sim, TEMPLATE, biz({"thing1": "x"}))["errcode"] == 0
    sim.post("/_sim/reset")
    assert post(sim, TEMPLATE, biz({"thing1": "x"}))["errcode"] == 48001


# --- records, stats, reset -------------------------------------------------------------------


def test_messages_are_recorded_and_filtered(sim, clock):
    token = token_of(sim)
    post(sim, CUSTOM, text(), token)
    clock.advance(5)
    post(sim, BIZSEND, biz({"thing1": "x"}, OTHER), token)
    post(sim, CUSTOM, text(content=""), token)  # refused: not recorded
    every = sim.get("/_sim/messages").get_json()
    assert every["count"] == 2
    first = every["messages"][0]
    assert first["api"] == "message/custom/send" and first["touser"] == OPENID
    assert first["payload"] == text() and first["time"] == clock.now - 5 and first["msgid"]
    assert sim.get(f"/_sim/messages?touser={OTHER}").get_json()["count"] == 1
    assert sim.get("/_sim/messages?api=message/custom/send").get_json()["count"] == 1
    assert sim.get(f"/_sim/messages?since={clock.now}").get_json()["count"] == 1
    assert sim.get("/_sim/messages?since=soon").status_code == 400


def test_duplicates_by_campaign_tag_and_by_payload(sim):
    token = token_of(sim)
    tagged = biz({"thing1": "通知"}) | {"page": "pages/notice?cid=c42"}
    post(sim, BIZSEND, tagged, token)
    post(sim, BIZSEND, tagged | {"data": {"thing1": {"value": "再次"}}}, token)
    post(sim, BIZSEND, tagged | {"touser": OTHER}, token)
    post(sim, CUSTOM, text(), token)
    post(sim, CUSTOM, text(), token)
    post(sim, CUSTOM, text(content="other"), token)
    dupes = sim.get("/_sim/stats").get_json()["duplicates"]
    assert dupes["pairs"] == 2 and dupes["extra_messages"] == 2
    keys = {d["key"] for d in dupes["sample"]}
    assert "c42" in keys and any(k.startswith("sha1:") for k in keys)


def test_reset_clears_everything(sim):
    token = token_of(sim)
    post(sim, CUSTOM, text(), token)
    faults(sim, {"kind": "http500"})
    assert sim.post("/_sim/reset").get_json() == {"ok": True}
    assert sim.get("/_sim/messages").get_json()["count"] == 0
    assert sim.get("/_sim/stats").get_json()["calls"] == {}
    assert post(sim, CUSTOM, text(), token)["errcode"] == 40001


# --- menu, tags, routing ---------------------------------------------------------------------


def test_menu_create_get_delete(sim):
    token = token_of(sim)
    q = {"access_token": token}
    menu = {"button": [{"type": "click", "name": "查询", "key": "Q"},
                       {"name": "服务", "sub_button": [{"type": "view", "name": "官网",
                                                         "url": "https://example.org"}]}]}
    assert sim.get("/cgi-bin/menu/get", query_string=q).get_json()["errcode"] == 46003
    assert post(sim, "/cgi-bin/menu/create", menu, token)["errcode"] == 0
    assert sim.get("/cgi-bin/menu/get", query_string=q).get_json() == {"menu": menu}
    assert sim.get("/cgi-bin/menu/delete", query_string=q).get_json()["errcode"] == 0
    assert sim.get("/cgi-bin/menu/get", query_string=q).get_json()["errcode"] == 46003


@pytest.mark.parametrize("menu, errcode", [
    ({"button": []}, 40016),
    ({"button": [{"type": "click", "name": "a", "key": "k"}] * 4}, 40016),
    ({"button": [{"type": "click", "name": "十七个字节的名字啊", "key": "k"}]}, 40018),
    ({"button": [{"type": "teleport", "name": "a"}]}, 40017),
    ({"button": [{"name": "a", "sub_button": [{"type": "click", "name": "s"}] * 6}]}, 40023),
])
def test_menu_validation(sim, menu, errcode):
    assert post(sim, "/cgi-bin/menu/create", menu)["errcode"] == errcode


def test_tags(sim):
    token = token_of(sim)
    created = post(sim, "/cgi-bin/tags/create", {"tag": {"name": "晋江"}}, token)
    tag_id = created["tag"]["id"]
    assert post(sim, "/cgi-bin/tags/create", {"tag": {"name": "晋江"}}, token)["errcode"] == 45157
    batch = {"openid_list": [OPENID, OTHER], "tagid": tag_id}
    assert post(sim, "/cgi-bin/tags/members/batchtagging", batch, token)["errcode"] == 0
    assert post(sim, "/cgi-bin/tags/members/batchtagging", batch | {"tagid": 999},
                token)["errcode"] == 45159
    tags = sim.get("/cgi-bin/tags/get", query_string={"access_token": token}).get_json()
    assert tags == {"tags": [{"id": tag_id, "name": "晋江", "count": 2}]}


@pytest.mark.parametrize("method, path", [
    ("GET", CUSTOM), ("POST", "/cgi-bin/menu/get"), ("POST", "/cgi-bin/user/info"),
])
def test_unknown_paths_and_methods_are_404(sim, method, path):
    assert sim.open(path, method=method).status_code == 404


def test_concurrent_sends_are_all_recorded_once(make):
    _, app = make()
    token = token_of(app.test_client())

    def send(worker: int) -> None:
        client = app.test_client()
        for i in range(50):
            assert post(client, CUSTOM, text(f"o{worker:02d}{i:025d}"), token)["errcode"] == 0

    threads = [threading.Thread(target=send, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    messages = sim_state(app).messages()
    assert len(messages) == 400 and len({m["msgid"] for m in messages}) == 400
    assert sim_state(app).stats()["calls"]["message/custom/send"] == {"0": 400}


# --- over a real loopback socket ------------------------------------------------------------


@pytest.mark.parametrize("server", ["asyncio", "werkzeug"])
def test_served_over_http(server):
    app = create_simulator(SimConfig(app_id=APP_ID, app_secret=SECRET, latency_ms=30))
    running = start_in_thread(app, "127.0.0.1", 0, server=server)
    try:
        with requests.Session() as http:
            base = running.url
            body = {"grant_type": "client_credential", "appid": APP_ID, "secret": SECRET}
            token = http.post(f"{base}/cgi-bin/stable_token", json=body, timeout=5).json()
            q = {"access_token": token["access_token"]}
            start = time.monotonic()
            got = http.post(f"{base}{BIZSEND}", params=q, timeout=5,
                            json=biz({"thing1": "泉州"}))
            assert time.monotonic() - start >= 0.03
            assert got.json()["errcode"] == 0 and "泉州" not in got.text  # nothing echoed
            rules = [{"kind": "hang", "hang_s": 1.0, "count": 1, "api": "message/custom/send"},
                     {"kind": "drop", "count": 1, "api": "message/template/send"}]
            assert http.post(f"{base}/_sim/faults", json={"rules": rules}, timeout=5).ok
            with pytest.raises(requests.exceptions.ReadTimeout):
                http.post(f"{base}{CUSTOM}", params=q, json=text(), timeout=(1, 0.3))
            with pytest.raises(requests.exceptions.ConnectionError):
                http.post(f"{base}{TEMPLATE}", params=q, json=biz({"thing1": "x"}), timeout=5)
            assert http.post(f"{base}{CUSTOM}", params=q, json=text(), timeout=5).json() == {
                "errcode": 0, "errmsg": "ok"}
            listed = http.get(f"{base}/_sim/messages", params={"touser": OPENID}, timeout=5)
            assert listed.headers["Content-Type"].startswith("application/json")
            assert listed.json()["count"] == 2
            assert http.get(f"{base}/nowhere", timeout=5).status_code == 404
    finally:
        running.stop()


def test_wechatsim_imports_nothing_of_the_project():
    """wechatsim is an independent peer: no module of it imports bot, handlers or push."""
    forbidden = {"bot", "handlers", "push", "tests", "bench"}
    found = []
    for path in sorted(Path(wechatsim.__file__).parent.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            found += [f"{path.name}:{node.lineno} {n}" for n in names
                      if n.split(".")[0] in forbidden]
    assert found == []
