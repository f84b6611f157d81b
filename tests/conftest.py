"""Shared fixtures: real Redis (dedicated db, flushed per test), SQLite and PostgreSQL.

Every test that takes `db_url` (directly or through `runtime`/`app`) runs on both databases.
"""

from __future__ import annotations

import os
import shutil
from datetime import datetime

import pytest
import redis
from sqlalchemy import create_engine, text

from bot.clock import parse_pinned
from bot.runtime import build_runtime
from bot.settings import load_settings
from bot.store.db import make_engine, upgrade
from bot.store.models import Base

REDIS_TEST_URL = os.environ.get("QZBOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
PG_ADMIN_URL = os.environ.get("QZBOT_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
NOW = parse_pinned("2026-11-27T10:00:00")
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
OLD_AES_KEY = "ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxwvut"
APP_ID = "wx2c2769f8efd9abc2"
TOKEN = "spamtest"


def pytest_sessionstart(session):
    """Say clearly what is missing instead of failing every test."""
    try:
        redis.Redis.from_url(REDIS_TEST_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.exit(f"Redis is required for the tests and is not reachable at {REDIS_TEST_URL} "
                    f"({exc}). Start it: redis-server --daemonize yes --bind 127.0.0.1 "
                    f"--port 6379 --save '' --appendonly no", returncode=3)
    try:
        probe = create_engine(PG_ADMIN_URL)
        probe.connect().close()
        probe.dispose()
    except Exception as exc:  # noqa: BLE001
        pytest.exit(f"PostgreSQL is required for the tests and is not reachable at "
                    f"{PG_ADMIN_URL} ({type(exc).__name__}). Start it: pg_ctlcluster "
                    f"--skip-systemctl-redirect $(ls /etc/postgresql) main start", returncode=3)


@pytest.fixture
def redis_client():
    """A real Redis client on the test db index, flushed before and after the test."""
    client = redis.Redis.from_url(REDIS_TEST_URL)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    """A migrated SQLite file, copied per test (migrating once is faster)."""
    path = tmp_path_factory.mktemp("tpl") / "template.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def pg_database():
    """A private PostgreSQL database for this test session, migrated to head."""
    name = f"qzbot_test_{os.getpid()}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """A migrated, empty database: SQLite file or the session's PostgreSQL database."""
    if request.param == "sqlite":
        path = tmp_path / "qzbot.sqlite3"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    url = request.getfixturevalue("pg_database")
    engine = create_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    yield url


def make_settings(db_url: str, **overrides: dict):
    """Test settings: the official crypto sample's token/appid, real Redis URL."""
    env = {
        "QZBOT_WECHAT__APP_ID": APP_ID, "QZBOT_WECHAT__APP_SECRET": "test-secret",
        "QZBOT_WECHAT__TOKEN": TOKEN, "QZBOT_WECHAT__ENCODING_AES_KEY": AES_KEY,
        "QZBOT_WECHAT__PREVIOUS_ENCODING_AES_KEY": OLD_AES_KEY,
        "QZBOT_WECHAT__API_BASE_URL": "http://127.0.0.1:9",
        "QZBOT_DATABASE__URL": db_url, "QZBOT_REDIS__URL": REDIS_TEST_URL,
        "QZBOT_SECURITY__SECRET_KEY": "test-secret-key",
        "QZBOT_BOT__CONTENT_CHECK_SECONDS": "0",  # tests import and ask at once
    }
    settings = load_settings(None, env=env)
    return settings.replace(**overrides) if overrides else settings


@pytest.fixture
def clock():
    """A settable clock pinned at 2026-11-27 10:00 Asia/Shanghai."""
    class Clock:
        now: datetime = NOW

        def __call__(self) -> datetime:
            return self.now

    return Clock()


@pytest.fixture
def runtime(request, db_url, redis_client, clock):
    """A runtime on the test database, real Redis and the pinned clock.

    A test module may set SETTINGS_OVERRIDES = {section: {key: value}} for all its tests.
    """
    overrides = getattr(request.module, "SETTINGS_OVERRIDES", {})
    rt = build_runtime(make_settings(db_url, **overrides), redis_client=redis_client,
                       clock=clock)
    yield rt
    rt.close()


SMALL_PACK = os.path.join(os.path.dirname(__file__), "data", "packs", "small.toml")


def load_pack(rt, path: str = SMALL_PACK, prune: bool = False):
    """Import a pack into the runtime's database (committed)."""
    from bot.content.pack import import_pack, read_pack
    from bot.store.db import transaction

    with transaction(rt.sessions) as session:
        return import_pack(session, read_pack(path), source=path, now=rt.now(),
                           districts=rt.settings.bot.districts, prune=prune)


@pytest.fixture
def make_app():
    """create_app for a test; every app made is closed (threads stopped) at teardown."""
    from bot.app import create_app

    made = []

    def factory(**kwargs):
        made.append(create_app(**kwargs))
        return made[-1]

    yield factory
    for application in made:
        application.extensions["qzbot.webhook"].close()


@pytest.fixture
def app(runtime, make_app):
    """The Flask app on the test runtime with the small test pack loaded."""
    load_pack(runtime)
    return make_app(runtime=runtime)


@pytest.fixture
def sim():
    """The WeChat API simulator on a loopback port, served from a thread (a module may
    define its own, e.g. with latency)."""
    from tests.pushkit import Sim
    from wechatsim import SimConfig, create_simulator, start_in_thread

    running = start_in_thread(create_simulator(SimConfig(app_id=APP_ID,
                                                         app_secret="test-secret")))
    yield Sim(running)
    running.stop()


@pytest.fixture
def wechat(app):
    """A WeChat stand-in posting signed, encrypted messages to the app."""
    from tests.wx import WeChat

    return WeChat(app)
