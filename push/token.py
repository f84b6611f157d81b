"""The shared access token: one per account in Redis for all processes, or in memory.

Platform rule: several processes refreshing on their own is the most reported bug of the
WeChat SDKs (each /cgi-bin/token fetch revokes the previous token in 5 min: 40001
storms). Here one fetch happens at a time across processes (a Redis lock), a rejected
token is refreshed only if it is still the cached one (compare-and-refresh), and the
fetch is stable_token, which does not revoke anyone's token.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

from redis.exceptions import RedisError

from bot.errors import TransportError
from bot.wechat.client import WeChatClient

log = logging.getLogger("qzbot.push.token")

Fetch = Callable[[], tuple[str, int]]

# Delete the lock only if it is still ours: a slow fetch may have outlived its lock.
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


def cache_ttl(expires_in: int, safety_margin: float) -> float:
    """Seconds to keep a token: expires_in minus a margin (at most half its life)."""
    return max(1.0, expires_in - min(safety_margin, expires_in / 2))


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


class RedisTokenSource:
    """One token in Redis shared by every process; refreshed by one of them at a time.

    fetch returns (token, expires_in), e.g. `client.fetch_stable_token`; force_fetch
    (optional, e.g. stable_token with force_refresh, 20 a day) is used only when WeChat
    rejected a token and `fetch` still hands back that same token. lock_timeout (s)
    should exceed the fetch's connect + read timeout.
    """

    def __init__(self, redis: Any, fetch: Fetch, key_prefix: str = "qzbot:token",
                 lock_timeout: float = 10, *, force_fetch: Fetch | None = None,
                 safety_margin: float = 300, local_ttl: float = 5.0,
                 poll_interval: float = 0.05, clock: Callable[[], float] = time.monotonic):
        self._redis = redis
        self._fetch = fetch
        self._force_fetch = force_fetch
        self.key = f"{key_prefix}:value"
        self.lock_key = f"{key_prefix}:lock"
        self._lock_timeout = lock_timeout
        self._margin = safety_margin
        self._local_ttl = local_ttl
        self._poll = poll_interval
        self._clock = clock
        self._release = redis.register_script(_RELEASE)  # no I/O until first use
        self._local: tuple[str, float] | None = None
        self._mutex = threading.Lock()  # one Redis-lock contender per process

    def get(self) -> str:
        """The shared token: in-process cache, then Redis, then one fetch for everyone."""
        local = self._local
        if local is not None and local[1] > self._clock():
            return local[0]
        try:
            token = self._read()
            if token is not None:
                return token
            return self._refresh(stale=None)
        except RedisError as exc:  # nothing was sent: the caller may retry later
            raise TransportError(f"token cache unavailable: {exc}") from exc

    def invalidate(self, failed: str) -> None:
        """WeChat rejected `failed`: refresh, unless the shared token is already another."""
        local = self._local
        if local is not None and local[0] == failed:
            self._local = None
        try:
            current = self._read(avoid=failed)
            if current is not None and current != failed:
                return  # someone refreshed already
            self._refresh(stale=failed)
        except RedisError as exc:
            raise TransportError(f"token cache unavailable: {exc}") from exc

    def _read(self, avoid: str | None = None) -> str | None:
        """Redis value and remaining life in one round trip; caches it locally unless `avoid`."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.get(self.key)
        pipe.pttl(self.key)
        raw, pttl = pipe.execute()
        token = _text(raw)
        if token is not None and token != avoid and pttl and pttl > 0:
            self._local = (token, self._clock() + min(self._local_ttl, pttl / 1000.0))
        return token

    def _refresh(self, stale: str | None) -> str:
        """Under the lock, fetch unless the shared token is already fresh (not `stale`)."""
        with self._mutex:
            deadline = self._clock() + 2 * self._lock_timeout + 1
            while True:
                current = self._read(avoid=stale)
                if current is not None and current != stale:
                    return current
                owner = secrets.token_hex(16)
                if self._redis.set(self.lock_key, owner, nx=True,
                                   px=int(self._lock_timeout * 1000)):
                    try:
                        # Re-check: the previous holder may have stored a fresh token.
                        current = self._read(avoid=stale)
                        if current is not None and current != stale:
                            return current
                        return self._fetch_and_store(stale)
                    finally:
                        self._release(keys=[self.lock_key], args=[owner])
                if self._clock() > deadline:
                    raise TransportError("timed out waiting for the access-token lock")
                time.sleep(self._poll)

    def _fetch_and_store(self, stale: str | None) -> str:
        token, expires_in = self._fetch()
        if stale is not None and token == stale and self._force_fetch is not None:
            log.warning("access token still rejected after a fetch: forcing a refresh")
            token, expires_in = self._force_fetch()
        ttl = cache_ttl(expires_in, self._margin)
        self._redis.set(self.key, token, px=int(ttl * 1000))
        self._local = (token, self._clock() + min(self._local_ttl, ttl))
        log.info("access token refreshed (expires_in=%s)", expires_in)
        return token


class MemoryTokenSource:
    """The token in this process only: for a single process, tests and tools."""

    def __init__(self, fetch: Fetch, *, force_fetch: Fetch | None = None,
                 safety_margin: float = 300, clock: Callable[[], float] = time.monotonic):
        self._fetch = fetch
        self._force_fetch = force_fetch
        self._margin = safety_margin
        self._clock = clock
        self._token: tuple[str, float] | None = None
        self._lock = threading.Lock()

    def get(self) -> str:
        """The cached token, fetched once when missing or near expiry."""
        cached = self._token
        if cached is not None and cached[1] > self._clock():
            return cached[0]
        with self._lock:
            cached = self._token
            if cached is not None and cached[1] > self._clock():
                return cached[0]
            return self._store(*self._fetch())

    def invalidate(self, failed: str) -> None:
        """Refresh only if the cached token is still the one that failed."""
        with self._lock:
            cached = self._token
            if cached is not None and cached[0] != failed and cached[1] > self._clock():
                return
            token, expires_in = self._fetch()
            if token == failed and self._force_fetch is not None:
                token, expires_in = self._force_fetch()
            self._store(token, expires_in)

    def _store(self, token: str, expires_in: int) -> str:
        self._token = (token, self._clock() + cache_ttl(expires_in, self._margin))
        return token


def create_shared_client(redis: Any, base_url: str, app_id: str, app_secret: str,
                         **client_kwargs: Any) -> WeChatClient:
    """A WeChatClient whose token lives in Redis (per app id), fetched with stable_token.

    The lock outlives the client's connect + read timeout, so a slow fetch keeps it.
    """
    client: WeChatClient | None = None

    def fetch() -> tuple[str, int]:
        assert client is not None
        return client.fetch_stable_token()

    def force_fetch() -> tuple[str, int]:
        assert client is not None
        return client.fetch_stable_token(force_refresh=True)

    connect, read = client_kwargs.get("timeout", (3.05, 10))
    tokens = RedisTokenSource(redis, fetch, key_prefix=f"qzbot:token:{app_id}",
                              lock_timeout=max(10.0, connect + read + 2),
                              force_fetch=force_fetch)
    client = WeChatClient(base_url, app_id, app_secret, tokens, **client_kwargs)
    return client
