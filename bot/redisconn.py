"""Redis connections: the configured server, or an in-process substitute (fakeredis).

The embedded default lets the quick start run without a Redis server; one FakeServer per
process is shared so the web app, the queue and the in-process worker see the same data.
Every client has connect and read timeouts ([redis] settings): a Redis that accepts and
never answers costs one timeout, and `guarded` makes the answer path skip it after that.
"""

from __future__ import annotations

import threading

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from bot.health import Breaker

_fake_server = None
_fake_lock = threading.Lock()


def connect(url: str, connect_timeout: float = 0.3, socket_timeout: float = 0.5) -> redis.Redis:
    """A bytes-mode client (RQ needs no decode_responses) with short timeouts."""
    if not url:
        import fakeredis  # noqa: PLC0415 - only the embedded demo needs it

        global _fake_server
        with _fake_lock:
            if _fake_server is None:
                _fake_server = fakeredis.FakeServer()
        return fakeredis.FakeRedis(server=_fake_server)
    # one quick retry at most: an unreachable Redis must degrade dedupe, not stall answers.
    # No health_check_interval: its PING is one more read timeout on a hung server, and the
    # retry already reconnects a connection that went stale. Worst case 2 x socket_timeout.
    return redis.Redis.from_url(url, socket_connect_timeout=connect_timeout,
                                socket_timeout=socket_timeout,
                                retry=Retry(ExponentialBackoff(cap=0.05, base=0.01), 1))


class GuardedRedis(redis.Redis):
    """A client that fails fast while its breaker says Redis is down (answer path only)."""

    breaker: Breaker

    def execute_command(self, *args, **options):
        """Run a command, or raise ConnectionError at once while Redis is marked down."""
        if not self.breaker.up:
            raise redis.ConnectionError("redis marked down: skipped")
        try:
            return super().execute_command(*args, **options)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            self.breaker.failed(exc)
            raise


def guarded(client: redis.Redis, breaker: Breaker) -> redis.Redis:
    """The same server and pool as `client`, failing fast while `breaker` is down."""
    if is_embedded(client):  # in-process: it cannot hang
        return client
    wrapped = GuardedRedis(connection_pool=client.connection_pool)
    wrapped.breaker = breaker
    return wrapped


def is_embedded(client: redis.Redis) -> bool:
    """True for the in-process substitute."""
    return type(client).__module__.startswith("fakeredis")
