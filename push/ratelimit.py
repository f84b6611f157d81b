"""Global send rate per WeChat API, shared by every worker: a Redis token bucket (GCRA, Lua).

One Lua call per group of sends reserves the next slots of the API's schedule and says
when each may go, using Redis's own clock, so any number of threads and processes together stay
under `settings.push.rate_limits[api]` calls per second. The same call reports a quota
pause: after 45009/45011 (platform doc: quota exceeded -> back off, resume later) the
first worker to see it pauses the API for everyone, doubling the pause on repeated hits.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any, TypeVar

import redis as redis_lib

from bot.redisconn import is_embedded
from bot.runtime import Runtime

T = TypeVar("T")

PREFIX = "qzbot:push"
BURST_SECONDS = 0.05  # a bucket holds this many seconds' worth of calls (at least 1)
QUOTA_BACKOFF_BASE = 30.0  # seconds of the first pause after a quota error
QUOTA_BACKOFF_MAX = 1800.0
STRIKE_MEMORY = 600  # seconds without a quota error that reset the doubling

# KEYS: bucket, pause. ARGV: interval_us, burst, n. Reserves n consecutive slots; returns
# {wait_us until the first, pause_ms} (nothing reserved while the API is paused).
_ACQUIRE = """
local pause = redis.call('PTTL', KEYS[2])
if pause > 0 then return {0, pause} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local wait = tat + interval - tonumber(ARGV[2]) * interval - now
if wait < 0 then wait = 0 end
local new_tat = tat + interval * tonumber(ARGV[3])
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX',
           math.floor((new_tat - now) / 1000) + 1000)
return {math.floor(wait), 0}
"""
# KEYS: pause, strikes. ARGV: base_ms, max_ms, strike_memory_s. Returns the pause in ms.
_PAUSE = """
local left = redis.call('PTTL', KEYS[1])
if left > 0 then return left end
local strikes = redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[3]))
local ms = tonumber(ARGV[1]) * 2 ^ (strikes - 1)
if ms > tonumber(ARGV[2]) then ms = tonumber(ARGV[2]) end
ms = math.floor(ms)
redis.call('SET', KEYS[1], '1', 'PX', ms)
return ms
"""


def wait_until(moment: float) -> float:
    """Sleep until time.monotonic() reaches `moment`; returns the seconds slept."""
    delay = moment - time.monotonic()
    if delay > 0:
        time.sleep(delay)
        return delay
    return 0.0


class Paused(Exception):
    """The API is paused after a quota error; `seconds` until it may be called again."""

    def __init__(self, api: str, seconds: float):
        self.api = api
        self.seconds = seconds
        super().__init__(f"{api} paused for {seconds:.1f}s (quota)")


class RateLimiter:
    """Calls per second per API across all workers (rates: {api: "calls per second"})."""

    def __init__(self, redis: Any, rates: Mapping[str, str | int], prefix: str = PREFIX):
        self._redis = redis
        self._rates = {api: int(rate) for api, rate in rates.items()}
        self._prefix = prefix
        self._acquire = redis.register_script(_ACQUIRE)
        self._pause = redis.register_script(_PAUSE)

    def _keys(self, api: str) -> tuple[str, str, str]:
        base = f"{self._prefix}:{api}"
        return f"{base}:bucket", f"{base}:pause", f"{base}:strikes"

    def reserve(self, api: str, n: int = 1) -> list[float]:
        """Reserve the API's next n slots: the time.monotonic() at which each may be used.

        One Redis call for a group of sends; raises Paused while the API is paused.
        """
        bucket, pause_key, _ = self._keys(api)
        now = time.monotonic()
        rate = self._rates.get(api)
        if rate is None:  # an API without a configured rate: only the pause applies
            left = self._redis.pttl(pause_key)
            if left and left > 0:
                raise Paused(api, left / 1000.0)
            return [now] * n
        interval = 1_000_000.0 / rate
        wait_us, pause_ms = self._acquire(keys=[bucket, pause_key], args=[
            f"{interval:.3f}", f"{max(1.0, rate * BURST_SECONDS):.3f}", n])
        if int(pause_ms) > 0:
            raise Paused(api, int(pause_ms) / 1000.0)
        first = now + int(wait_us) / 1_000_000.0
        return [first + i * interval / 1_000_000.0 for i in range(n)]

    def acquire(self, api: str) -> float:
        """Wait for the API's next slot; returns seconds waited; raises Paused."""
        return wait_until(self.reserve(api)[0])

    def pause(self, api: str, base: float | None = None) -> float:
        """Pause the API for everyone after a quota error; returns the pause in seconds."""
        _, pause_key, strikes = self._keys(api)
        base_ms = int((QUOTA_BACKOFF_BASE if base is None else base) * 1000)
        ms = self._pause(keys=[pause_key, strikes],
                         args=[max(1, base_ms), int(QUOTA_BACKOFF_MAX * 1000), STRIKE_MEMORY])
        return int(ms) / 1000.0

    def paused_for(self, apis: list[str] | tuple[str, ...]) -> float:
        """Seconds until every one of `apis` may be called again (0 when none is paused)."""
        pipe = self._redis.pipeline(transaction=False)
        for api in apis:
            pipe.pttl(self._keys(api)[1])
        return max([0.0] + [ms / 1000.0 for ms in pipe.execute() if ms and ms > 0])


class LocalRateLimiter:
    """The same contract within one process (the embedded Redis has no Lua)."""

    def __init__(self, rates: Mapping[str, str | int]):
        self._rates = {api: int(rate) for api, rate in rates.items()}
        self._tat: dict[str, float] = {}
        self._paused: dict[str, float] = {}
        self._strikes: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    def reserve(self, api: str, n: int = 1) -> list[float]:
        """Reserve the API's next n slots (time.monotonic() of each); raises Paused."""
        with self._lock:
            now = time.monotonic()
            left = self._paused.get(api, 0.0) - now
            if left > 0:
                raise Paused(api, left)
            rate = self._rates.get(api)
            if rate is None:
                return [now] * n
            interval = 1.0 / rate
            tat = max(self._tat.get(api, now), now)
            self._tat[api] = tat + n * interval
            first = max(now, tat + interval - max(1.0, rate * BURST_SECONDS) * interval)
        return [first + i * interval for i in range(n)]

    def acquire(self, api: str) -> float:
        """Wait for the API's next slot; returns seconds waited; raises Paused."""
        return wait_until(self.reserve(api)[0])

    def pause(self, api: str, base: float | None = None) -> float:
        """Pause the API after a quota error; returns the pause in seconds."""
        with self._lock:
            now = time.monotonic()
            left = self._paused.get(api, 0.0) - now
            if left > 0:
                return left
            count, last = self._strikes.get(api, (0, 0.0))
            count = count + 1 if now - last < STRIKE_MEMORY else 1
            self._strikes[api] = (count, now)
            seconds = min(QUOTA_BACKOFF_MAX,
                          (QUOTA_BACKOFF_BASE if base is None else base) * 2 ** (count - 1))
            self._paused[api] = now + seconds
            return seconds

    def paused_for(self, apis: list[str] | tuple[str, ...]) -> float:
        """Seconds until every one of `apis` may be called again."""
        now = time.monotonic()
        return max([0.0] + [self._paused.get(api, 0.0) - now for api in apis])


def limiter_for(redis: Any, rates: Mapping[str, str | int]) -> RateLimiter | LocalRateLimiter:
    """The shared limiter on a Redis server, a process-local one on the embedded Redis."""
    if is_embedded(redis):
        return LocalRateLimiter(rates)
    return RateLimiter(redis, rates)


def runtime_limiter(rt: Runtime) -> RateLimiter | LocalRateLimiter:
    """The process's limiter for settings.push.rate_limits (kept in rt.clients)."""
    found: RateLimiter | LocalRateLimiter | None = rt.clients.limiter
    if found is None:
        found = rt.clients.limiter = limiter_for(rt.redis, rt.settings.push.rate_limits)
    return found


def reserve_slots(limiter: RateLimiter | LocalRateLimiter,
                  items: list[tuple[str, T]]) -> list[tuple[T, float | Exception]]:
    """A slot (monotonic time) for each (api, item), one reservation per API; Paused (or the
    Redis error) in place of the slot when the API cannot be called now."""
    by_api: dict[str, list[T]] = {}
    for api, item in items:
        by_api.setdefault(api, []).append(item)
    slotted: list[tuple[T, float | Exception]] = []
    for api, group in by_api.items():
        try:
            slotted.extend(zip(group, limiter.reserve(api, len(group)), strict=True))
        except (Paused, redis_lib.RedisError) as exc:
            slotted.extend((item, exc) for item in group)
    return slotted
