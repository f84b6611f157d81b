"""Citizen presence: who wrote when (WeChat's 48-hour customer-service window).

Every citizen message opens the window, but writing a row per message would put a database
write on the answer's hot path. Instead each process buffers "seen at" per openid in memory
and a background thread writes them in one statement per second (INSERT .. ON CONFLICT).
A crash loses at most the last second of presence, never an answer.

Each entry carries the time the citizen wrote (event time), and the write orders by it: a
buffered write never re-activates a citizen whose unfollow came later, nor moves a time
backwards (bot/store/queries.upsert_followers_seen). A hung database blocks only this
thread (each flush runs under a deadline); the buffer is capped meanwhile.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime

from sqlalchemy.exc import SQLAlchemyError

from bot.clock import to_utc_naive
from bot.runtime import Runtime
from bot.store.db import answer_deadline
from bot.store.queries import upsert_followers_seen

log = logging.getLogger("qzbot.presence")
MAX_PENDING = 100_000  # citizens buffered while the database is away; more are dropped
FLUSH_DEADLINE_SECONDS = 5.0


class Presence:
    """Buffers citizen activity and flushes it to the followers table."""

    def __init__(self, runtime: Runtime, interval: float = 1.0):
        self.rt = runtime
        self.interval = interval
        self._pending: dict[str, datetime] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._stopped = False

    def seen(self, openid: str, now: datetime) -> None:
        """Note a citizen message (cheap: a dict write)."""
        with self._lock:
            if len(self._pending) < MAX_PENDING or openid in self._pending:
                self._pending[openid] = to_utc_naive(now)
            if self._thread is None and not self._stopped:
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name="presence")
                self._thread.start()

    def flush(self) -> int:
        """Write what is buffered now; returns how many citizens were written."""
        with self._lock:
            batch, self._pending = self._pending, {}
        if not batch:
            return 0
        try:
            with answer_deadline(FLUSH_DEADLINE_SECONDS), self.rt.sessions() as session:
                upsert_followers_seen(session, batch)
                session.commit()
        except SQLAlchemyError as exc:
            log.warning("presence of %d citizen(s) not written (%s); retrying", len(batch),
                        type(exc).__name__)
            with self._lock:
                for openid, at in batch.items():
                    if max(self._pending.get(openid, at), at) == at:  # keep the later time
                        self._pending[openid] = at
            return 0
        return len(batch)

    def close(self) -> None:
        """Stop the writer thread after a last flush (app shutdown, tests)."""
        with self._lock:
            thread, self._thread = self._thread, None
            self._stopped = True
        if thread is not None:
            self._wake.set()
            thread.join(timeout=5)
        self.flush()

    def _run(self) -> None:
        while not self._stopped:
            self._wake.wait(self.interval)
            self._wake.clear()
            self.flush()
