"""Redis connections: the configured server, or an in-process substitute (fakeredis).

The embedded default lets the quick start run without a Redis server; one FakeServer per
process is shared so the web app, the queue and the in-process worker see the same data.
"""

from __future__ import annotations

import threading

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

_fake_server = None
_fake_lock = threading.Lock()


def connect(url: str) -> redis.Redis:
    """A bytes-mode client (RQ needs no decode_responses) with short timeouts."""
    if not url:
        import fakeredis

        global _fake_server
        with _fake_lock:
            if _fake_server is None:
                _fake_server = fakeredis.FakeServer()
        return fakeredis.FakeRedis(server=_fake_server)
    # one quick retry at most: an unreachable Redis must degrade dedupe, not stall answers
    return redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=1.0,
                                health_check_interval=30,
                                retry=Retry(ExponentialBackoff(cap=0.05, base=0.01), 1))


def is_embedded(client: redis.Redis) -> bool:
    """True for the in-process substitute."""
    return type(client).__module__.startswith("fakeredis")
