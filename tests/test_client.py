"""WeChatClient against the simulator on a real loopback port: outcomes, token retry, faults."""

from __future__ import annotations

import ast
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from bot.errors import AmbiguousSend, TransportError, WeChatAPIError
from bot.wechat.client import WeChatClient
from push.token import MemoryTokenSource, RedisTokenSource
from wechatsim import SimConfig, create_simulator, start_in_thread

APP_ID = "wxtestapp0000001"
SECRET = "test-secret"
OPENID = "oAbCdEfGhIjKlMnOpQrStUvWx01"
OTHER = "oAbCdEfGhIjKlMnOpQrStUvWx02"
LOOPBACK = "127.0.0.1"  # never anything else in these tests


class Sim:
    """A simulator served on loopback plus helpers for its control API."""

    def __init__(self, **overrides):
        config = SimConfig(app_id=APP_ID, app_secret=SECRET, seed=3, **overrides)
        self.running = start_in_thread(create_simulator(config), LOOPBACK, 0)
        self.url = self.running.url
        self.http = requests.Session()

    def control(self, path: str, body: dict | None = None) -> dict:
        resp = self.http.post(f"{self.url}/_sim/{path}", json=body or {}, timeout=5)
        assert resp.ok, resp.text
        return resp.json()

    def faults(self, *rules: dict) -> None:
        self.control("faults", {"rules": list(rules)})

    def stats(self) -> dict:
        return self.http.get(f"{self.url}/_sim/stats", timeout=5).json()

    def close(self) -> None:
        self.http.close()
        self.running.stop()


def make_client(url: str, tokens=None, timeout=(1.0, 1.0)) -> WeChatClient:
    """A client whose token source fetches through the client itself (stable_token)."""
    holder: list[WeChatClient] = []
    if tokens is None:
        tokens = MemoryTokenSource(lambda: holder[0].fetch_stable_token())
    client = WeChatClient(url, APP_ID, SECRET, tokens, timeout=timeout, pool_size=8)
    holder.append(client)
    return client


@pytest.fixture
def serve():
    """serve(**SimConfig overrides) -> Sim on 127.0.0.1:<free port>, stopped after the test."""
    started: list[Sim] = []

    def _serve(**overrides) -> Sim:
        started.append(Sim(**overrides))
        return started[-1]

    yield _serve
    for sim in started:
        sim.close()


@pytest.fixture
def sim(serve):
    return serve()


@pytest.fixture
def client(sim):
    c = make_client(sim.url)
    yield c
    c.close()


# --- happy paths ---------------------------------------------------------------------------


def test_sends_return_the_answer(client, sim):
    assert client.send_custom_text(OPENID, "您好") == {"errcode": 0, "errmsg": "ok"}
    news = [{"title": "停运", "description": "d", "url": "https://example.org", "picurl": ""}]
    assert client.send_custom_news(OPENID, news)["errcode"] == 0
    assert client.send_template(OPENID, "TPL", {"thing1": "泉州"}, url="https://e.org")["msgid"]
    assert client.send_subscribe(OPENID, "TPL", {"thing1": {"value": "x"}}, page="p")["msgid"]
    assert client.send_subscribe_once(OPENID, "TPL", 7, "通知", "内容")["errcode"] == 0
    sent = sim.http.get(f"{sim.url}/_sim/messages", timeout=5).json()["messages"]
    assert [m["api"].rsplit("/", 2)[-2:] for m in sent] == [
        ["custom", "send"], ["custom", "send"], ["template", "send"],
        ["subscribe", "bizsend"], ["template", "subscribe"]]
    assert sent[0]["payload"]["text"]["content"] == "您好"  # UTF-8, not \\u escapes
    assert sent[2]["payload"] == {"touser": OPENID, "template_id": "TPL", "url": "https://e.org",
                                  "data": {"thing1": {"value": "泉州"}}}
    assert sent[4]["payload"]["scene"] == "7"


def test_menu_round_trip(client):
    menu = {"button": [{"type": "click", "name": "查询", "key": "Q"}]}
    assert client.create_menu(menu)["errcode"] == 0
    assert client.get_menu() == {"menu": menu}
    client.delete_menu()
    with pytest.raises(WeChatAPIError) as info:
        client.get_menu()
    assert info.value.errcode == 46003 and info.value.api == "menu/get"


def test_token_fetches(client, sim):
    token, expires_in = client.fetch_token()
    assert token and expires_in == 7200
    stable, _ = client.fetch_stable_token()
    assert stable == token
    forced, _ = client.fetch_stable_token(force_refresh=True)
    assert forced != token
    with pytest.raises(WeChatAPIError) as info:
        client.fetch_stable_token(force_refresh=True)  # 30 s apart
    assert info.value.errcode == 45011
    bad = WeChatClient(sim.url, APP_ID, "wrong", tokens=None)  # type: ignore[arg-type]
    with pytest.raises(WeChatAPIError) as info:
        bad.fetch_stable_token()
    assert info.value.errcode == 40125
    bad.close()


def test_pool_and_timeouts(sim):
    c = WeChatClient(sim.url, APP_ID, SECRET, tokens=None, pool_size=48)  # type: ignore[arg-type]
    assert c.timeout == (3.05, 10)
    assert c.session.get_adapter(sim.url).poolmanager.connection_pool_kw["maxsize"] == 48
    c.close()


# --- token invalidation --------------------------------------------------------------------


@pytest.mark.parametrize("expired, errcode", [(False, "40001"), (True, "42001")])
def test_rejected_token_is_refreshed_and_the_call_retried_once(client, sim, expired, errcode):
    client.send_custom_text(OPENID, "one")
    sim.control("invalidate_token", {"expired": expired})
    assert client.send_custom_text(OPENID, "two")["errcode"] == 0
    stats = sim.stats()
    assert stats["calls"]["message/custom/send"] == {"0": 2, errcode: 1}
    assert stats["tokens"]["stable_token"] == 2 and stats["accepted_total"] == 2


def test_a_token_rejected_twice_is_not_retried_again(client, sim):
    sim.faults({"kind": "errcode", "api": "message/custom/send", "errcode": 40014, "count": 5})
    with pytest.raises(WeChatAPIError) as info:
        client.send_custom_text(OPENID, "x")
    assert info.value.errcode == 40014
    assert sim.stats()["calls"]["message/custom/send"] == {"40014": 2}


def test_workers_sharing_a_redis_token_refresh_once(serve, redis_client):
    sim = serve()
    clients: list[WeChatClient] = []
    for _ in range(2):  # two workers, each with its own source, as two processes would have
        holder: list[WeChatClient] = []
        tokens = RedisTokenSource(redis_client, lambda h=holder: h[0].fetch_stable_token(),
                                  "test:wx", poll_interval=0.01)
        holder.append(make_client(sim.url, tokens))
        clients.append(holder[0])
    assert [c.send_custom_text(OPENID, "a")["errcode"] for c in clients] == [0, 0]
    sim.control("invalidate_token")
    barrier = threading.Barrier(2)
    results: list = []

    def send(c: WeChatClient) -> None:
        barrier.wait()
        results.append(c.send_custom_text(OPENID, "b")["errcode"])

    threads = [threading.Thread(target=send, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == [0, 0]
    assert sim.stats()["tokens"]["stable_token"] == 2  # the first fetch and one refresh
    for c in clients:
        c.close()


def test_no_stampede_seen_from_the_platform(serve, redis_client):
    sim = serve(latency_ms=100)
    holder: list[WeChatClient] = []
    sources = [RedisTokenSource(redis_client, lambda: holder[0].fetch_stable_token(),
                                "test:wx", poll_interval=0.01) for _ in range(20)]
    holder.append(make_client(sim.url, sources[0]))
    barrier = threading.Barrier(20)
    got: list[str] = []

    def get(i: int) -> None:
        barrier.wait()
        got.append(sources[i].get())

    threads = [threading.Thread(target=get, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(got) == 20 and len(set(got)) == 1
    assert sim.stats()["tokens"] == {"stable_token": 1, "issued": 1}
    holder[0].close()


# --- refusals from the platform ------------------------------------------------------------


@pytest.mark.parametrize("overrides, send, errcode", [
    ({}, lambda c: c.send_subscribe(OPENID, "T", {"thing1": "超" * 21}), 47003),
    ({}, lambda c: c.send_subscribe_once(OPENID, "T", 1, "标题" * 8, "x"), 47003),
    ({"refused": [OPENID]}, lambda c: c.send_subscribe(OPENID, "T", {"thing1": "x"}), 43101),
    ({"followers": [OTHER]}, lambda c: c.send_template(OPENID, "T", {"thing1": "x"}), 43004),
    ({"cs_window": True}, lambda c: c.send_custom_text(OPENID, "x"), 45015),
    ({"daily_quotas": {"message/custom/send": 0}}, lambda c: c.send_custom_text(OPENID, "x"),
     45009),
    ({"minute_quotas": {"message/template/send": 0}},
     lambda c: c.send_template(OPENID, "T", {"thing1": "x"}), 45011),
])
def test_platform_errors_surface_with_their_errcode(serve, overrides, send, errcode):
    sim = serve(**overrides)
    client = make_client(sim.url)
    with pytest.raises(WeChatAPIError) as info:
        send(client)
    assert info.value.errcode == errcode and info.value.api.startswith("message/")
    client.close()


def test_customer_service_count_limit(serve):
    sim = serve(cs_window=True)
    client = make_client(sim.url)
    sim.control("interactions", {"openid": OPENID, "kind": "event"})
    for _ in range(3):
        client.send_custom_text(OPENID, "x")
    with pytest.raises(WeChatAPIError) as info:
        client.send_custom_text(OPENID, "x")
    assert info.value.errcode == 45047
    client.close()


# --- transport outcomes ----------------------------------------------------------------------


@pytest.mark.parametrize("after_accept", [False, True])
def test_hang_is_an_ambiguous_send(sim, after_accept):
    client = make_client(sim.url, timeout=(1.0, 0.3))
    token = client.tokens.get()
    sim.faults({"kind": "hang", "hang_s": 1.0, "api": "message/custom/send",
                "after_accept": after_accept})
    start = time.monotonic()
    with pytest.raises(AmbiguousSend) as info:
        client.send_custom_text(OPENID, "x")
    assert time.monotonic() - start < 0.9
    assert info.value.api == "message/custom/send" and "timeout" in info.value.detail
    assert token not in str(info.value) and SECRET not in str(info.value)
    time.sleep(0.8)  # the simulator finishes the hung call
    # Whether it went out is exactly what the caller cannot tell: hence no blind retry.
    assert sim.stats()["accepted_total"] == int(after_accept)
    client.close()


@pytest.mark.parametrize("kind", ["garbage", "http500", "drop"])
def test_broken_answers_to_sends_are_ambiguous(client, sim, kind):
    sim.faults({"kind": kind, "api": "message/*"})
    with pytest.raises(AmbiguousSend):
        client.send_template(OPENID, "T", {"thing1": "x"})
    with pytest.raises(AmbiguousSend):
        client.send_custom_text(OPENID, "x")


@pytest.mark.parametrize("kind", ["garbage", "http500", "drop"])
def test_broken_answers_to_other_calls_are_transport_errors(client, sim, kind):
    sim.faults({"kind": kind, "api": "menu/get"})
    with pytest.raises(TransportError):
        client.get_menu()


def test_broken_token_answer_is_a_transport_error(client, sim):
    sim.faults({"kind": "garbage", "api": "stable_token"})
    with pytest.raises(TransportError):
        client.send_custom_text(OPENID, "x")
    assert sim.stats()["calls"].get("message/custom/send") is None  # never sent


def test_refused_connection_is_a_transport_error():
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        port = sock.getsockname()[1]
    # Nothing listens on the port now.
    client = make_client(f"http://{LOOPBACK}:{port}", tokens=FixedTokens("SECRET-TOKEN"))
    with pytest.raises(TransportError) as info:
        client.send_custom_text(OPENID, "x")
    assert not isinstance(info.value, AmbiguousSend)
    assert "SECRET-TOKEN" not in str(info.value) and "access_token=***" in str(info.value)
    client.close()


class FixedTokens:
    """A token source that never changes (and counts invalidations)."""

    def __init__(self, token: str):
        self.token = token
        self.invalidated: list[str] = []

    def get(self) -> str:
        return self.token

    def invalidate(self, failed: str) -> None:
        self.invalidated.append(failed)


def test_keep_alive_connections_are_reused(client, sim):
    for _ in range(5):
        client.send_custom_text(OPENID, "x")
    pools = client.session.get_adapter(sim.url).poolmanager.pools
    assert sum(pools[key].num_connections for key in pools.keys()) == 1


FORBIDDEN = ("flask", "sqlalchemy", "redis", "rq")


def test_the_wechat_client_imports_no_web_db_or_redis():
    import bot.wechat.client as module

    tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {(node.module or "").split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom)}
    assert not imported & set(FORBIDDEN)
    # Nor does anything it imports drag them in (beyond what the bot package itself loads).
    code = ("import sys, bot.wechat; before = set(sys.modules); import bot.wechat.client; "
            f"print(sorted(m for m in {FORBIDDEN!r} if m in set(sys.modules) - before))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
