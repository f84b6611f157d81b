"""Shared access token: Redis lock, no stampede, compare-and-refresh; the in-memory source."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from bot.errors import TransportError, WeChatAPIError
from push.token import MemoryTokenSource, RedisTokenSource, cache_ttl


class CountingFetch:
    """A token fetch that counts its calls and hands out T1, T2, ... (slowly if asked)."""

    def __init__(self, delay: float = 0.0, expires_in: int = 7200, fixed: str | None = None):
        self.delay = delay
        self.expires_in = expires_in
        self.fixed = fixed
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self) -> tuple[str, int]:
        with self._lock:
            self.calls += 1
            n = self.calls
        time.sleep(self.delay)
        return (self.fixed or f"T{n}"), self.expires_in


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def run_together(n: int, target) -> list:
    """Start n threads at once (a barrier) and collect what each returned."""
    barrier = threading.Barrier(n)
    results: list = [None] * n
    errors: list[BaseException] = []

    def body(i: int) -> None:
        barrier.wait()
        try:
            results[i] = target(i)
        except BaseException as exc:  # re-raised in the test thread
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    if errors:
        raise errors[0]
    return results


@pytest.fixture
def connect(redis_client):
    """New Redis connections to the test db (one per simulated process), closed after."""
    opened: list[redis.Redis] = []
    where = redis_client.connection_pool.connection_kwargs
    base = {k: where[k] for k in ("host", "port", "db", "password") if k in where}

    def _connect(**kwargs) -> redis.Redis:
        opened.append(redis.Redis(**{**base, **kwargs}))
        return opened[-1]

    yield _connect
    for client in opened:
        client.close()


def source(redis_client, fetch, **kwargs) -> RedisTokenSource:
    kwargs.setdefault("poll_interval", 0.01)
    return RedisTokenSource(redis_client, fetch, "test:token", **kwargs)


# --- RedisTokenSource ------------------------------------------------------------------------


def test_get_fetches_once_and_stores_with_ttl(redis_client):
    fetch = CountingFetch()
    tokens = source(redis_client, fetch)
    assert tokens.get() == "T1"
    assert tokens.get() == "T1"
    assert fetch.calls == 1
    assert redis_client.get("test:token:value") == b"T1"
    assert (7200 - 300) * 1000 - 2000 < redis_client.pttl("test:token:value") <= 6900 * 1000
    assert redis_client.get("test:token:lock") is None  # released


def test_other_processes_read_the_shared_token(redis_client):
    source(redis_client, CountingFetch()).get()
    other_fetch = CountingFetch()
    assert source(redis_client, other_fetch).get() == "T1"
    assert other_fetch.calls == 0


def test_short_lived_tokens_keep_half_their_life(redis_client):
    source(redis_client, CountingFetch(expires_in=100)).get()
    assert 45_000 < redis_client.pttl("test:token:value") <= 50_000
    assert cache_ttl(7200, 300) == 6900 and cache_ttl(1, 300) == 1.0


def test_no_stampede_across_processes(redis_client, connect):
    """20 workers, each its own source (as separate processes have), 1 fetch in all."""
    fetch = CountingFetch(delay=0.2)
    sources = [source(connect(), fetch) for _ in range(20)]
    assert run_together(20, lambda i: sources[i].get()) == ["T1"] * 20
    assert fetch.calls == 1


def test_no_stampede_within_a_process(redis_client):
    fetch = CountingFetch(delay=0.2)
    tokens = source(redis_client, fetch)
    assert run_together(20, lambda i: tokens.get()) == ["T1"] * 20
    assert fetch.calls == 1


def test_compare_and_refresh_two_workers_one_refresh(redis_client, connect):
    fetch = CountingFetch(delay=0.1)
    workers = [source(connect(), fetch) for _ in range(2)]
    assert [w.get() for w in workers] == ["T1", "T1"]

    def reject_and_retry(i: int) -> str:
        workers[i].invalidate("T1")
        return workers[i].get()

    assert run_together(2, reject_and_retry) == ["T2", "T2"]
    assert fetch.calls == 2  # the first fetch and exactly one refresh


def test_invalidating_an_old_token_does_nothing(redis_client):
    fetch = CountingFetch()
    tokens = source(redis_client, fetch)
    tokens.get()
    tokens.invalidate("T1")
    assert tokens.get() == "T2"
    tokens.invalidate("T1")  # a late report about the old token
    assert tokens.get() == "T2" and fetch.calls == 2


def test_force_fetch_only_when_fetch_returns_the_rejected_token(redis_client):
    fetch = CountingFetch(fixed="SAME")
    forced = CountingFetch(fixed="NEW")
    tokens = source(redis_client, fetch, force_fetch=forced)
    assert tokens.get() == "SAME" and forced.calls == 0
    tokens.invalidate("SAME")
    assert tokens.get() == "NEW"
    assert (fetch.calls, forced.calls) == (2, 1)


def test_a_stale_lock_expires_and_a_waiter_takes_over(redis_client):
    redis_client.set("test:token:lock", "crashed-process", px=300)
    fetch = CountingFetch()
    start = time.monotonic()
    assert source(redis_client, fetch, lock_timeout=0.3).get() == "T1"
    assert time.monotonic() - start >= 0.2 and fetch.calls == 1


def test_lock_release_only_deletes_our_own_lock(redis_client):
    tokens = source(redis_client, CountingFetch())
    redis_client.set("test:token:lock", "someone-else")
    assert tokens._release(keys=["test:token:lock"], args=["mine"]) == 0
    assert redis_client.get("test:token:lock") == b"someone-else"


def test_waiting_for_a_held_lock_gives_up(redis_client):
    redis_client.set("test:token:lock", "hung-process", px=60_000)
    with pytest.raises(TransportError):
        source(redis_client, CountingFetch(), lock_timeout=0.1).get()


def test_fetch_failure_releases_the_lock_and_propagates(redis_client):
    def failing() -> tuple[str, int]:
        raise WeChatAPIError(40125, "invalid appsecret", "stable_token")

    with pytest.raises(WeChatAPIError):
        source(redis_client, failing).get()
    assert redis_client.get("test:token:lock") is None
    assert source(redis_client, CountingFetch()).get() == "T1"


def test_local_cache_spares_redis_round_trips(redis_client):
    clock = Clock()
    fetch = CountingFetch()
    tokens = source(redis_client, fetch, local_ttl=5, clock=clock)
    tokens.get()
    redis_client.delete("test:token:value")
    assert tokens.get() == "T1"  # served from the process cache
    clock.now += 5.1
    assert tokens.get() == "T2" and fetch.calls == 2


def test_redis_down_is_a_transport_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dead = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.5,
                       retry=Retry(NoBackoff(), 0))
    fetch = CountingFetch()
    with pytest.raises(TransportError):
        source(dead, fetch).get()
    with pytest.raises(TransportError):
        source(dead, fetch).invalidate("T0")
    assert fetch.calls == 0
    dead.close()


def test_works_with_decoded_responses(redis_client, connect):
    client = connect(decode_responses=True)
    tokens = source(client, CountingFetch())
    assert tokens.get() == "T1"
    assert source(client, CountingFetch()).get() == "T1"


# --- MemoryTokenSource -----------------------------------------------------------------------


def test_memory_source_caches_until_near_expiry():
    clock = Clock()
    fetch = CountingFetch(expires_in=7200)
    tokens = MemoryTokenSource(fetch, clock=clock)
    assert tokens.get() == tokens.get() == "T1"
    clock.now += 6899
    assert tokens.get() == "T1"
    clock.now += 2
    assert tokens.get() == "T2"


def test_memory_source_compare_and_refresh():
    fetch = CountingFetch(delay=0.05)
    tokens = MemoryTokenSource(fetch)
    tokens.get()
    run_together(5, lambda i: tokens.invalidate("T1"))
    assert tokens.get() == "T2" and fetch.calls == 2


def test_memory_source_no_stampede_and_force_fetch():
    fetch = CountingFetch(delay=0.1, fixed="SAME")
    forced = CountingFetch(fixed="NEW")
    tokens = MemoryTokenSource(fetch, force_fetch=forced)
    assert run_together(20, lambda i: tokens.get()) == ["SAME"] * 20
    assert fetch.calls == 1
    tokens.invalidate("SAME")
    assert tokens.get() == "NEW" and forced.calls == 1
