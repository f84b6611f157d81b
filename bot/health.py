"""Backend health for the answer path: skip a backend that just timed out, probe it aside.

WeChat waits 5 s for an answer (wechat-platform.md, "The 5-second rule"). A Redis or
PostgreSQL that accepts connections and never answers costs a full timeout per call; paying
it on every call of every answer would miss the 5 s. So the first timeout marks the backend
down: meanwhile the answer path degrades at once (no dedupe, or an apology). With a `probe`,
a background thread tries the backend every `down_seconds` and marks it up when it answers,
so no citizen pays a timeout to find out (a new PostgreSQL connection alone may take the
2-second libpq minimum) and the webhook recovers by itself. Without a probe the first call
after `down_seconds` is the probe.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger("qzbot.health")


class Breaker:
    """Marks one backend down after a failure until it answers again (thread-safe)."""

    def __init__(self, name: str, down_seconds: float,
                 probe: Callable[[], object] | None = None):
        self.name = name
        self.down_seconds = down_seconds
        self.probe = probe
        self._down_until = 0.0
        self._probing = False
        self._lock = threading.Lock()
        self._closed = threading.Event()

    @property
    def up(self) -> bool:
        """True unless the backend failed and has not answered since."""
        return not self._probing and time.monotonic() >= self._down_until

    def failed(self, exc: BaseException) -> None:
        """Note a timeout or refused connection: skip the backend until it answers again."""
        with self._lock:
            if self.up:
                log.warning("%s unavailable (%s): answering degraded until it answers",
                            self.name, type(exc).__name__)
            self._down_until = time.monotonic() + self.down_seconds
            if self.probe is None or self._probing:
                return
            self._probing = True
        threading.Thread(target=self._probe_until_up, daemon=True,
                         name=f"probe-{self.name}").start()

    def close(self) -> None:
        """Stop probing (app shutdown): a probe must not outlive the resources it uses."""
        self._closed.set()

    def _probe_until_up(self) -> None:
        while not self._closed.wait(max(self.down_seconds, 0.05)):
            try:
                self.probe()
            except Exception as exc:  # noqa: BLE001 - any failure means "still down"
                log.debug("%s probe failed: %s", self.name, type(exc).__name__)
                continue
            with self._lock:
                self._probing = False
                self._down_until = 0.0
            log.warning("%s answers again: leaving degraded mode", self.name)
            return
