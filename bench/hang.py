"""Answer latency with Redis hung and with PostgreSQL hung, next to a healthy baseline.

    .venv/bin/python bench/hang.py [--messages 200] [--interval 0.02]

Loopback only, bounded in time (about 3 x messages x interval plus a few timeouts). One
app (create_app, the real router) on a private PostgreSQL database (created and dropped
via --pg-admin) and real Redis (--redis, db 13 by default, flushed). Citizen text messages
in safe mode go through the Flask test client, paced by --interval, in three phases:

  healthy   everything answers;
  redis     Redis replaced by a loopback listener that accepts and never answers;
  postgres  the database engine pointed at such a listener (the index stays warm).

Prints p50 / p99 / max per phase, the ratio to the healthy p99, and what the citizen got
(answers, apologies). Aim (issue 6): p99 < 2 s in both hung phases.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402

from bot.clock import make_clock  # noqa: E402
from bot.redisconn import connect  # noqa: E402
from bot.runtime import build_runtime  # noqa: E402
from bot.settings import load_settings  # noqa: E402
from bot.store.db import make_engine, make_sessionmaker, upgrade  # noqa: E402
from bot.webhook import APOLOGY  # noqa: E402
from tests.wx import WeChat  # noqa: E402

PACK = ROOT / "tests" / "data" / "packs" / "small.toml"
QUESTIONS = ["公交卡丢了去哪补", "12328", "出租车投诉电话", "刮台风渡轮还开不开"]


def hung_listener() -> tuple[socket.socket, int]:
    """A loopback server that accepts and never reads or answers (connections held)."""
    sock = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def run() -> None:
        while True:
            try:
                held.append(sock.accept()[0])
            except OSError:
                return

    threading.Thread(target=run, daemon=True).start()
    return sock, sock.getsockname()[1]


def phase(wx: WeChat, n: int, interval: float) -> tuple[list[float], dict[str, int]]:
    """Send n messages; (latencies in s, outcome counts)."""
    lat, outcomes = [], {"answer": 0, "apology": 0, "success": 0}
    for i in range(n):
        started = time.perf_counter()
        reply = wx.text(QUESTIONS[i % len(QUESTIONS)])
        lat.append(time.perf_counter() - started)
        outcomes["success" if not reply else "apology" if reply == APOLOGY else "answer"] += 1
        time.sleep(interval)
    return lat, outcomes


def report(name: str, lat: list[float], outcomes: dict[str, int], base_p99: float) -> float:
    """Print one phase's figures; return its p99."""
    ordered = sorted(lat)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    print(f"{name:9} n={len(lat):4}  p50={statistics.median(lat) * 1000:8.1f} ms  "
          f"p99={p99 * 1000:8.1f} ms  max={max(lat) * 1000:8.1f} ms  "
          f"p99/healthy={p99 / base_p99 if base_p99 else 1:7.1f}x  {outcomes}")
    return p99


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=200)
    ap.add_argument("--interval", type=float, default=0.02)
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/13")
    ap.add_argument("--pg-admin", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = ap.parse_args()
    name = f"qzbot_bench_hang_{os.getpid()}"
    admin = create_engine(args.pg_admin, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = args.pg_admin.rsplit("/", 1)[0] + "/" + name
    try:
        run(url, args)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def run(url: str, args: argparse.Namespace) -> None:
    """The three phases on one app."""
    from bot.app import create_app
    from tests.conftest import load_pack

    env = {"QZBOT_WECHAT__APP_ID": "wx2c2769f8efd9abc2", "QZBOT_WECHAT__TOKEN": "benchtoken",
           "QZBOT_WECHAT__ENCODING_AES_KEY": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
           "QZBOT_DATABASE__URL": url, "QZBOT_REDIS__URL": args.redis,
           "QZBOT_SECURITY__SECRET_KEY": "bench-secret-key-" + "x" * 32,
           "QZBOT_LOG__LEVEL": "ERROR"}
    settings = load_settings(None, env=env)
    upgrade(make_engine(url))
    rt = build_runtime(settings, clock=make_clock())
    rt.redis.flushdb()
    load_pack(rt, str(PACK))
    app = create_app(runtime=rt)
    hook = app.extensions["qzbot.webhook"]
    wx = WeChat(app)
    base, out = phase(wx, args.messages, args.interval)
    base_p99 = report("healthy", base, out, 0)
    sock, port = hung_listener()
    real_pool = hook.redis.connection_pool
    hung = connect(f"redis://127.0.0.1:{port}/0", settings.redis.connect_timeout_seconds,
                   settings.redis.socket_timeout_seconds)
    hook.redis.connection_pool = hung.connection_pool
    report("redis", *phase(wx, args.messages, args.interval), base_p99)
    hook.redis.connection_pool = real_pool
    healthy_db = (rt.engine, rt.sessions)
    engine = make_engine(f"postgresql+psycopg://postgres@127.0.0.1:{port}/x",
                         timeouts=settings.database)
    rt.engine, rt.sessions = engine, make_sessionmaker(engine)
    report("postgres", *phase(wx, args.messages, args.interval), base_p99)
    rt.engine, rt.sessions = healthy_db
    hook.close()
    engine.dispose()
    rt.redis.flushdb()
    rt.close()
    sock.close()


if __name__ == "__main__":
    import logging

    logging.basicConfig(level=logging.ERROR)
    main()
