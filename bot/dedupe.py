"""Retry deduplication with cached replies (wechat-platform.md, "Deduplicate retries").

WeChat delivers an unanswered message up to three times about 5 s apart. The first
delivery claims the key (SET NX); when it finishes, the rendered reply replaces the claim,
so a retry of an answered message gets the same answer again, and a retry of one still
being answered waits for it instead of running the handler twice. The TTL must outlive the
whole retry window (>= 30 s; WxJava's 10 s let the third delivery through).
If Redis is unreachable, dedupe degrades to "always new" and says so in the log.

ReplayGuard (wechat-platform.md: `signature` covers token, timestamp and nonce, never the
body): a (timestamp, nonce) pair is bound to the first message it carried, for the whole
freshness window. The same pair with another message is a captured URL re-used: refused.
The same pair with the same message is let through, because the docs do not say whether
WeChat's retries carry a new pair: dedupe then answers it from the cache (its TTL is raised
to cover the window), so the handler never runs twice. If Redis is down the guard fails
open and logs it: answering citizens comes first, and in safe mode a body cannot be forged.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from enum import StrEnum

import redis

from bot.errors import ReplayedRequest

log = logging.getLogger("qzbot.dedupe")

PENDING = b"\x00pending"
DONE_PREFIX = b"\x01"


class Claim(StrEnum):
    """Outcome of claiming a message key."""

    NEW = "new"  # we own it: answer and store the reply
    DONE = "done"  # answered before: `reply` holds the cached reply
    BUSY = "busy"  # another delivery is still answering it
    DEGRADED = "degraded"  # Redis unreachable: answer without dedupe


@dataclass(frozen=True)
class ClaimResult:
    """A claim and, for DONE, the cached reply body ("" means `success`)."""

    claim: Claim
    reply: str = ""


class Deduper:
    """Claims message keys in Redis and caches their replies."""

    def __init__(self, client: redis.Redis, ttl_seconds: int = 60, prefix: str = "qzbot:dd:"):
        self.client = client
        self.ttl = ttl_seconds
        self.prefix = prefix

    def _key(self, message_key: str) -> str:
        # hashed: the raw key contains the openid (personal data)
        return self.prefix + hashlib.sha1(message_key.encode()).hexdigest()

    def claim(self, message_key: str, ttl: int = 0) -> ClaimResult:
        """Claim a key: NEW, DONE (with reply), BUSY, or DEGRADED when Redis is down.

        `ttl` raises the configured TTL (to cover the replay window of this request)."""
        key = self._key(message_key)
        try:
            if self.client.set(key, PENDING, nx=True, ex=max(self.ttl, ttl)):
                return ClaimResult(Claim.NEW)
            value = self.client.get(key)
        except redis.RedisError as exc:
            log.warning("dedupe degraded: redis unavailable (%s)", type(exc).__name__)
            return ClaimResult(Claim.DEGRADED)
        if value is None:  # expired between SET and GET: treat as new
            return self.claim(message_key, ttl)
        if value.startswith(DONE_PREFIX):
            return ClaimResult(Claim.DONE, value[1:].decode("utf-8"))
        return ClaimResult(Claim.BUSY)

    def store(self, message_key: str, reply: str, ttl: int = 0) -> None:
        """Cache the reply of a claimed key for the rest of the retry window."""
        try:
            self.client.set(self._key(message_key), DONE_PREFIX + reply.encode("utf-8"),
                            ex=max(self.ttl, ttl))
        except redis.RedisError as exc:
            log.warning("dedupe store failed: %s", type(exc).__name__)

    def release(self, message_key: str) -> None:
        """Drop a claim whose handling failed, so a retry can try again."""
        try:
            self.client.delete(self._key(message_key))
        except redis.RedisError as exc:
            log.warning("dedupe release failed: %s", type(exc).__name__)

    def wait(self, message_key: str, timeout: float, interval: float = 0.05,
             ttl: int = 0) -> ClaimResult:
        """Wait up to `timeout` s for a BUSY key's reply; BUSY again if it did not come."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(interval)
            result = self.claim(message_key, ttl)
            if result.claim is not Claim.BUSY:
                return result
        return ClaimResult(Claim.BUSY)


class ReplayGuard:
    """Binds each (timestamp, nonce) pair to one message for the freshness window."""

    def __init__(self, client: redis.Redis, prefix: str = "qzbot:rp:"):
        self.client = client
        self.prefix = prefix

    def admit(self, timestamp: str, nonce: str, message_key: str, ttl: int) -> None:
        """Raise ReplayedRequest if the pair already carried another message."""
        # hashed: keys and values stay short and hold no openid
        key = self.prefix + hashlib.sha256(f"{timestamp}:{nonce}".encode()).hexdigest()
        fingerprint = hashlib.sha256(message_key.encode()).hexdigest().encode()
        try:
            if self.client.set(key, fingerprint, nx=True, ex=max(1, ttl)):
                return
            first = self.client.get(key)
        except redis.RedisError as exc:
            log.warning("replay check degraded: redis unavailable (%s)", type(exc).__name__)
            return
        if first is not None and first != fingerprint:
            raise ReplayedRequest("timestamp and nonce already used for another message")
