"""Issue 6 item 7: a Redis or PostgreSQL that accepts connections and never answers.

Each citizen still gets a reply (degraded: no dedupe, or an apology), the backend is then
skipped instead of costing a timeout per call, and the webhook recovers by itself when the
backend returns. Latency figures are in bench/hang.py (no timed assertions here).
"""

from __future__ import annotations

import socket
import threading
import time

import pytest
import redis

from bot.redisconn import connect
from bot.runtime import build_runtime
from bot.store.db import make_engine, make_sessionmaker
from tests.conftest import REDIS_TEST_URL, load_pack, make_settings
from tests.wx import WeChat

SETTINGS_OVERRIDES = {"database": {"down_seconds": 0.2}, "redis": {"down_seconds": 0.2}}


class HungListener:
    """A loopback TCP server that accepts every connection and never reads or answers."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)  # held open, never read

    def close(self) -> None:
        """Stop accepting and drop every held connection."""
        self.sock.close()
        for conn in self.accepted:
            conn.close()


def wait_until(condition, limit: float = 10.0) -> None:
    """Poll a state change made by a background thread (bounded; not a timing assertion)."""
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


@pytest.fixture
def hung():
    listener = HungListener()
    yield listener
    listener.close()


def test_hung_redis_still_answers_and_recovers(db_url, clock, make_app, hung, caplog):
    settings = make_settings(db_url, **SETTINGS_OVERRIDES)
    client = connect(f"redis://127.0.0.1:{hung.port}/0", settings.redis.connect_timeout_seconds,
                     settings.redis.socket_timeout_seconds)
    rt = build_runtime(settings, redis_client=client, clock=clock)
    load_pack(rt)
    app = make_app(runtime=rt)
    hook = app.extensions["qzbot.webhook"]
    wx = WeChat(app)
    for _ in range(3):  # replay guard and dedupe degrade; the answer is the real one
        assert wx.text("公交卡丢了去哪补").startswith("公交IC卡挂失补办")
    assert wx.text("1").strip()  # choices context (Redis) degrades too
    assert "replay check degraded" in caplog.text and "redis unavailable" in caplog.text
    assert not hook.redis_health.up  # skipped now, not a timeout per call
    healthy = redis.Redis.from_url(REDIS_TEST_URL)
    healthy.flushdb()
    hook.redis.connection_pool = healthy.connection_pool  # the backend returns
    wait_until(lambda: hook.redis_health.up)  # the background probe finds it back
    assert wx.send("12328", msg_id=4242)["Content"] == wx.send("12328", msg_id=4242)["Content"]
    assert hook.redis_health.up and healthy.keys("qzbot:dd:*") and healthy.keys("qzbot:rp:*")
    healthy.flushdb()
    hook.close()  # the presence flush first, then the pool
    rt.close()


def test_hung_postgresql_gets_an_apology_then_recovers(app, runtime, hung, caplog):
    hook = app.extensions["qzbot.webhook"]
    wx = WeChat(app)
    assert wx.text("12328").startswith("交通运输服务监督电话")
    healthy = (runtime.engine, runtime.sessions)
    engine = make_engine(f"postgresql+psycopg://postgres@127.0.0.1:{hung.port}/qzbot",
                         timeouts=runtime.settings.database)
    runtime.engine, runtime.sessions = engine, make_sessionmaker(engine)
    hook.search.check_seconds = 0  # the revision check hits the hung database at once
    for _ in range(3):
        assert "12328" in wx.text("公交卡丢了去哪补")  # the apology names the hotline
    assert wx.event("LOCATION", Latitude="24.9", Longitude="118.6") is None
    assert "database unavailable" in caplog.text and "handler failed" not in caplog.text
    time.sleep(0.5)  # past down_seconds, still hung: the probe keeps it down, citizens skip it
    assert not hook.db_health.up
    runtime.engine, runtime.sessions = healthy  # the backend returns
    wait_until(lambda: hook.db_health.up)  # the background probe finds it back
    assert wx.text("公交卡丢了去哪补").startswith("公交IC卡挂失补办")
    assert hook.db_health.up
    engine.dispose()


def test_answer_deadline_bounds_a_session_on_a_hung_server(pg_database):
    """A connection that opened and then stops answering: the deadline ends the wait."""
    from sqlalchemy import text

    from bot.store.db import answer_deadline

    proxy = _FreezingProxy(pg_database)
    engine = make_engine(proxy.url, timeouts=make_settings(pg_database).database)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT 1")).scalar() == 1
        proxy.freeze()
        with pytest.raises(Exception, match="answer deadline"), answer_deadline(0.5):
            conn.execute(text("SELECT 2"))
    engine.dispose()
    proxy.close()


class _FreezingProxy:
    """Forwards to the real PostgreSQL until frozen; then it holds every byte."""

    def __init__(self, url: str) -> None:
        from sqlalchemy.engine import make_url

        target = make_url(url)
        self.target = (target.host or "127.0.0.1", target.port or 5432)
        self.frozen = threading.Event()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = target.set(host="127.0.0.1", port=self.sock.getsockname()[1]) \
            .render_as_string(hide_password=False)
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def freeze(self) -> None:
        """Stop forwarding (the server 'hangs')."""
        self.frozen.set()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            self.conns += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                if self.frozen.is_set():
                    return
                dst.sendall(data)
        except OSError:
            return

    def close(self) -> None:
        """Close everything."""
        self.sock.close()
        for conn in self.conns:
            conn.close()
