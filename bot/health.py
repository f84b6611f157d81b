"""Backend health for the answer path: skip a backend that just timed out, retry it later.

WeChat waits 5 s for an answer (wechat-platform.md, "The 5-second rule"). A Redis or
PostgreSQL that accepts connections and never answers costs a full timeout per call; paying
it on every call of every answer would miss the 5 s. So the first timeout marks the backend
down for `down_seconds`: meanwhile the answer path degrades at once (no dedupe, or an
apology), and the first call after that probes the backend again, so the webhook recovers
by itself when the backend returns.
"""

from __future__ import annotations

import logging
import time

log = logging.getLogger("qzbot.health")


class Breaker:
    """Marks one backend down for a while after a failure (thread-safe: one float)."""

    def __init__(self, name: str, down_seconds: float):
        self.name = name
        self.down_seconds = down_seconds
        self._down_until = 0.0

    @property
    def up(self) -> bool:
        """True unless a failure happened less than `down_seconds` ago."""
        return time.monotonic() >= self._down_until

    def failed(self, exc: BaseException) -> None:
        """Note a timeout or refused connection: skip the backend for `down_seconds`."""
        if self.up:
            log.warning("%s unavailable (%s): answering degraded for %.1f s", self.name,
                        type(exc).__name__, self.down_seconds)
        self._down_until = time.monotonic() + self.down_seconds
