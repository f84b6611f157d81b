"""Per-process runtime: settings, engine, sessions, redis, clock, search, crypto, router.

Built by factories (create_app, the CLI, the worker); nothing connects at import time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from bot.clock import make_clock
from bot.redisconn import connect
from bot.settings import Settings
from bot.store.db import make_engine, make_sessionmaker


def openid_hash(openid: str) -> str:
    """Short stable pseudonym of an openid for logs and Redis keys (openids are personal data)."""
    return hashlib.sha256(("qzbot:" + openid).encode()).hexdigest()[:12]


@dataclass
class Runtime:
    """Everything a request, job or command needs, passed explicitly."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    redis: redis.Redis
    clock: Callable[[], datetime]
    extras: dict = field(default_factory=dict)

    def now(self) -> datetime:
        """The current time (aware UTC) from the one clock."""
        return self.clock()

    def close(self) -> None:
        """Release pooled connections (after fork, at exit, in tests)."""
        self.engine.dispose()


def build_runtime(settings: Settings, *, redis_client: redis.Redis | None = None,
                  clock: Callable[[], datetime] | None = None) -> Runtime:
    """Create the runtime from settings (no schema check; callers decide)."""
    engine = make_engine(settings.database.url, echo=settings.database.echo,
                         timeouts=settings.database)
    return Runtime(settings=settings, engine=engine, sessions=make_sessionmaker(engine),
                   redis=redis_client if redis_client is not None else connect(
                       settings.redis.url, settings.redis.connect_timeout_seconds,
                       settings.redis.socket_timeout_seconds),
                   clock=clock or make_clock())
