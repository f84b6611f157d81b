"""Redis connections: the configured server, or an in-process substitute (fakeredis).

The embedded default lets the quick start run without a Redis server; one FakeServer per
process is shared so the web app, the queue and the in-process worker see the same data.
Every client has connect and read timeouts ([redis] settings): a Redis that accepts and
never answers costs one timeout, and `guarded` makes the answer path skip it after that.

`LeanScript` runs the answer path's one script per message (bot/dedupe) on a connection
of the calling thread's own: redis-py's general command path (pool checkout with a poll
for unread data, retry closure, observability hooks) cost as much CPU as the round trip
itself. Timeouts, the one retry and the breaker behave as on the general path.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence

import redis
from redis.backoff import ExponentialBackoff
from redis.exceptions import NoScriptError
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


class LeanScript:
    """A Lua script run with EVALSHA on this thread's own connection to the client's server.

    For a real server reached through a plain ConnectionPool; the embedded substitute (and
    any other pool) takes redis-py's Script path. Like `GuardedRedis`, it fails fast while
    the client's breaker is down and reports connection failures and timeouts to it; like
    `connect`'s clients, a failed call is retried once on a fresh connection (at worst two
    socket timeouts). A server that lost the script (restart, SCRIPT FLUSH) is sent it
    again. A thread's connection follows the client's pool (a new pool, a new connection)
and the process (a forked child opens its own).
    """

    def __init__(self, client: redis.Redis, source: str):
        self.client = client
        self.script = client.register_script(source)  # the SHA, and the general path
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[redis.Connection] = []

    def __call__(self, keys: Sequence[str], args: Sequence[object]) -> object:
        """The script's reply (raises what the general path raises)."""
        pool = self.client.connection_pool
        if (is_embedded(self.client) or type(pool) is not redis.ConnectionPool
                or pool.cache is not None):  # client-side caching wraps connections
            return self.script(keys=keys, args=args, client=self.client)
        breaker: Breaker | None = getattr(self.client, "breaker", None)
        if breaker is not None and not breaker.up:
            raise redis.ConnectionError("redis marked down: skipped")
        try:
            return self._run(pool, ("EVALSHA", self.script.sha, len(keys), *keys, *args))
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            if breaker is not None:
                breaker.failed(exc)
            raise

    def _run(self, pool: redis.ConnectionPool, command: tuple) -> object:
        conn = self._connection(pool)
        try:
            return self._exchange(conn, command)
        except (redis.ConnectionError, redis.TimeoutError):
            conn.disconnect()  # the one retry, on a fresh connection
            return self._exchange(conn, command)
        except BaseException:
            conn.disconnect()  # whatever the state of the reply, never reuse it half-read
            raise

    def _exchange(self, conn: redis.Connection, command: tuple) -> object:
        conn.send_command(*command)
        try:
            return conn.read_response()
        except NoScriptError:
            conn.send_command("SCRIPT", "LOAD", self.script.script)
            conn.read_response()
            conn.send_command(*command)
            return conn.read_response()

    def _connection(self, pool: redis.ConnectionPool) -> redis.Connection:
        local = self._local
        if getattr(local, "pool", None) is not pool or local.pid != os.getpid():  # fork: own
            local.pool, local.pid = pool, os.getpid()
            local.conn = pool.connection_class(**pool.connection_kwargs)
            with self._lock:
                self._connections.append(local.conn)
        return local.conn

    def close(self) -> None:
        """Close every thread's connection (shutdown, tests)."""
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.disconnect()
