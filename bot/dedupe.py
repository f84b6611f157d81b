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

One round trip per message (the answer path's cost was mostly Redis round trips): one Lua
script writes the replies stored since the previous call, binds the (timestamp, nonce)
pair and claims the message key, atomically (`Deduper.admit`). `store` only queues the
reply in memory; the next script call in this process carries it, and a background thread
writes what no call picked up within `flush_delay` seconds (a retry in another process
meanwhile sees the claim as busy and waits for it, as it would for a slow answer). The
script runs through the client it is given, so the webhook's guarded client still applies
its breaker and timeouts. The embedded substitute (fakeredis) runs it with `lupa`.

Other writes the answer makes go the same way (`later`: a citizen's numbered-list context,
handlers/choices.py): queued, written by the next script call or the writer thread, dropped
with a log line if Redis is away. Until written, `pending` gives the queued value, so a
reply "2" this process gets before the write reads its own list (another process may
not see it for up to `flush_delay` s). The embedded substitute has no round trip to save
and `qzbot ask` saves its keys right after the answer, so there `later` writes at once.
The webhook hands the Deduper to handlers in `ctx.notes[DEFERRED]`. What is still queued
when the interpreter exits is written then (a one-message `qzbot ask` on a Redis server).
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import threading
import time
import weakref
from dataclasses import dataclass
from enum import StrEnum

import redis

from bot.errors import ReplayedRequest
from bot.redisconn import LeanScript, is_embedded

log = logging.getLogger("qzbot.dedupe")

PENDING = b"\x00pending"
DONE_PREFIX = b"\x01"
MAX_QUEUED = 10_000  # stored replies waiting for a write; more are dropped (Redis is away)
DEFERRED = "deferred"  # Context.notes key of the Deduper whose `later`/`pending` handlers use
_open: weakref.WeakSet[Deduper] = weakref.WeakSet()  # flushed at interpreter exit

# KEYS: replay key ("" to skip the replay check), message key ("" to claim nothing), then
# the keys of queued replies. ARGV: fingerprint, replay ttl, PENDING, message ttl, then
# (reply, ttl) per queued key. Returns {"replayed"}, {"new"}, {"old", value} or {"none"}.
GATE_SCRIPT = """
for i = 3, #KEYS do
  redis.call('SET', KEYS[i], ARGV[2 * i - 1], 'EX', ARGV[2 * i])
end
if KEYS[1] ~= '' and not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  local first = redis.call('GET', KEYS[1])
  if first and first ~= ARGV[1] then return {'replayed'} end
end
if KEYS[2] == '' then return {'none'} end
if redis.call('SET', KEYS[2], ARGV[3], 'NX', 'EX', ARGV[4]) then return {'new'} end
return {'old', redis.call('GET', KEYS[2])}
"""


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
    """Claims message keys in Redis (one script call each) and caches their replies."""

    def __init__(self, client: redis.Redis, ttl_seconds: int = 60, prefix: str = "qzbot:dd:",
                 replays: ReplayGuard | None = None, flush_delay: float = 0.02):
        self.client = client
        self.ttl = ttl_seconds
        self.prefix = prefix
        self.replays = replays or ReplayGuard(client)
        self.flush_delay = flush_delay
        self._script = LeanScript(client, GATE_SCRIPT)  # one round trip, lean (redisconn)
        self._queued: list[tuple[str, bytes, int]] = []
        self._latest: dict[str, bytes] = {}  # `later` values queued or being written
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        _open.add(self)

    def _key(self, message_key: str) -> str:
        # hashed: the raw key contains the openid (personal data)
        return self.prefix + hashlib.sha1(message_key.encode()).hexdigest()

    def admit(self, timestamp: str, nonce: str, message_key: str, ttl: int) -> ClaimResult:
        """Bind (timestamp, nonce) to the message and claim it, in one round trip.

        ReplayedRequest if the pair already carried another message; DEGRADED (and no
        replay check) while Redis is unreachable."""
        key, fingerprint = self.replays.key_and_fingerprint(timestamp, nonce, message_key)
        return self._gate(key, fingerprint, max(1, ttl), self._key(message_key), ttl)

    def claim(self, message_key: str, ttl: int = 0) -> ClaimResult:
        """Claim a key: NEW, DONE (with reply), BUSY, or DEGRADED when Redis is down.

        `ttl` raises the configured TTL (to cover the replay window of this request)."""
        return self._gate("", b"", 1, self._key(message_key), ttl)

    def _gate(self, replay_key: str, fingerprint: bytes, replay_ttl: int, key: str,
              ttl: int) -> ClaimResult:
        with self._lock:
            queued, self._queued = self._queued, []
        keys = [replay_key, key, *(k for k, _, _ in queued)]
        args: list[object] = [fingerprint, replay_ttl, PENDING, max(self.ttl, ttl)]
        for _, value, seconds in queued:
            args += [value, seconds]
        try:
            answer = self._script(keys, args)
        except redis.RedisError as exc:
            what = "dedupe degraded (replay check degraded too)" if replay_key else \
                "dedupe degraded"
            log.warning("%s: redis unavailable (%s)%s", what, type(exc).__name__,
                        f"; {len(queued)} stored repl(ies) or deferred write(s) dropped"
                        if queued else "")
            return ClaimResult(Claim.DEGRADED)
        finally:
            self._written(queued)
        outcome = answer[0].decode() if isinstance(answer[0], bytes) else str(answer[0])
        if outcome == "replayed":
            raise ReplayedRequest("timestamp and nonce already used for another message")
        if outcome == "new":
            return ClaimResult(Claim.NEW)
        if outcome == "none":
            return ClaimResult(Claim.DEGRADED)
        value = answer[1] if len(answer) > 1 and answer[1] else b""
        if value.startswith(DONE_PREFIX):
            return ClaimResult(Claim.DONE, value[1:].decode("utf-8"))
        return ClaimResult(Claim.BUSY)

    def store(self, message_key: str, reply: str, ttl: int = 0) -> None:
        """Cache the reply of a claimed key for the rest of the retry window.

        Queued in memory: the next script call (or the writer thread, within
        `flush_delay` s) writes it, so no round trip is spent on it here."""
        self._queue(self._key(message_key), DONE_PREFIX + reply.encode("utf-8"),
                    max(self.ttl, ttl))

    def later(self, key: str, value: bytes, ttl: int) -> None:
        """SET `key` to `value` for `ttl` s after responding, with the next round trip.

        `pending(key)` returns the value until it is written (read-your-writes)."""
        if is_embedded(self.client):  # in-process: nothing to save (module docstring)
            self.client.set(key, value, ex=ttl)
            return
        self._queue(key, value, ttl, track=True)

    def pending(self, key: str) -> bytes | None:
        """The value `later` queued for `key` and not yet written, or None."""
        return self._latest.get(key)

    def _queue(self, key: str, value: bytes, ttl: int, track: bool = False) -> None:
        with self._lock:
            if len(self._queued) >= MAX_QUEUED:
                log.warning("deferred write dropped: %d writes already waiting", MAX_QUEUED)
                return
            self._queued.append((key, value, ttl))
            if track:
                self._latest[key] = value
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name="dedupe-store")
                self._thread.start()
        self._wake.set()

    def _written(self, queued: list[tuple[str, bytes, int]]) -> None:
        """Forget the `later` values of a script call (written, or dropped on failure)."""
        if not self._latest:
            return
        with self._lock:
            for key, value, _ in queued:
                if self._latest.get(key) is value:  # not replaced by a newer `later`
                    del self._latest[key]

    def flush(self) -> int:
        """Write the queued replies now (one round trip); returns how many were queued."""
        with self._lock:
            count = len(self._queued)
        if count:
            self._gate("", b"", 1, "", 0)
        return count

    def close(self) -> None:
        """Write what is queued and stop the writer thread (shutdown, tests)."""
        with self._lock:
            thread, self._thread = self._thread, None
            self._closed = True
        self._wake.set()
        if thread is not None:
            thread.join(timeout=5)
        self.flush()
        self._script.close()
        _open.discard(self)

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait()
            time.sleep(self.flush_delay)  # requests arriving meanwhile carry the replies
            self._wake.clear()
            self.flush()

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


@atexit.register
def _flush_at_exit() -> None:
    """Write the replies and deferred writes still queued when the interpreter exits."""
    for deduper in list(_open):
        try:
            deduper.flush()
        except Exception as exc:  # noqa: BLE001 - at exit: report, never raise
            log.warning("queued writes not written at exit: %s", type(exc).__name__)


class ReplayGuard:
    """Binds each (timestamp, nonce) pair to one message for the freshness window.

    The webhook checks it inside Deduper.admit's script; `admit` here is the same check
    on its own (two commands)."""

    def __init__(self, client: redis.Redis, prefix: str = "qzbot:rp:"):
        self.client = client
        self.prefix = prefix

    def key_and_fingerprint(self, timestamp: str, nonce: str,
                            message_key: str) -> tuple[str, bytes]:
        """The Redis key of the pair and the fingerprint of the message it carries."""
        # hashed: keys and values stay short and hold no openid
        key = self.prefix + hashlib.sha256(f"{timestamp}:{nonce}".encode()).hexdigest()
        return key, hashlib.sha256(message_key.encode()).hexdigest().encode()

    def admit(self, timestamp: str, nonce: str, message_key: str, ttl: int) -> None:
        """Raise ReplayedRequest if the pair already carried another message."""
        key, fingerprint = self.key_and_fingerprint(timestamp, nonce, message_key)
        try:
            if self.client.set(key, fingerprint, nx=True, ex=max(1, ttl)):
                return
            first = self.client.get(key)
        except redis.RedisError as exc:
            log.warning("replay check degraded: redis unavailable (%s)", type(exc).__name__)
            return
        if first is not None and first != fingerprint:
            raise ReplayedRequest("timestamp and nonce already used for another message")
