"""Per-process runtime: settings, engine, sessions, redis, clock and the process's clients.

Built by factories (create_app, the CLI, the worker); nothing connects at import time.
The fork rule of both queues lives here alone (`Runtime.after_fork`): a forked RQ work
horse inherits its parent's pooled database connections and HTTP clients, whose sockets
the parent keeps using, so a job drops them and builds its own before it does anything.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from bot.clock import make_clock
from bot.redisconn import connect
from bot.settings import Settings
from bot.store.db import make_engine, make_sessionmaker

if TYPE_CHECKING:  # typing only: the client pulls in requests, which the CLI need not load
    from bot.wechat.client import WeChatClient


def openid_hash(openid: str) -> str:
    """Short stable pseudonym of an openid for logs and Redis keys (openids are personal data)."""
    return hashlib.sha256(("qzbot:" + openid).encode()).hexdigest()[:12]


@dataclass
class ProcessClients:
    """The process's long-lived API clients, built on first use; never shared across a fork."""

    wechat: WeChatClient | None = None  # customer-service texts (replies queue)
    push: WeChatClient | None = None  # push delivery (keep-alive transport, shared token)
    # push.ratelimit's limiter (RateLimiter or LocalRateLimiter): the foundation cannot
    # name a feature package's type, so push.ratelimit.runtime_limiter types what it returns
    limiter: Any = None

    def close(self) -> None:
        """Close the clients built in this process (tests, shutdown)."""
        for client in (self.wechat, self.push):
            if client is not None:
                client.close()


@dataclass
class Runtime:
    """Everything a request, job or command needs, passed explicitly."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    redis: redis.Redis
    clock: Callable[[], datetime]
    clients: ProcessClients = field(default_factory=ProcessClients)
    owner_pid: int | None = None  # the process whose pool and clients these are

    def now(self) -> datetime:
        """The current time (aware UTC) from the one clock."""
        return self.clock()

    def claim_process(self) -> None:
        """Jobs run in this very process (a worker at start-up): keep its pool and clients."""
        self.owner_pid = os.getpid()

    def after_fork(self) -> None:
        """The fork rule, for jobs of every queue: in a process other than the owner (a forked
        work horse), drop the inherited pooled connections and clients, then own this one."""
        if self.owner_pid == os.getpid():
            return
        self.engine.dispose(close=False)  # the parent's connections stay the parent's
        self.clients = ProcessClients()  # rebuilt on first use, on this process's sockets
        self.owner_pid = os.getpid()

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
