"""Database writes made after the answer: citizen presence and unanswered questions.

Citizen presence: who wrote when (WeChat's 48-hour customer-service window).

Every citizen message opens the window, but writing a row per message would put a database
write on the answer's hot path. Instead each process buffers "seen at" per openid in memory
and a background thread writes them in one statement per second (INSERT .. ON CONFLICT).
A crash loses at most the last second of presence, never an answer.

Each entry carries the time the citizen wrote (event time), and the write orders by it: a
buffered write never re-activates a citizen whose unfollow came later, nor moves a time
backwards (bot/store/queries.upsert_followers_seen). A hung database blocks only this
thread (each flush runs under a deadline); the buffer is capped meanwhile.

Unanswered questions (`qzbot report unanswered`, issue 8 item 7 "store after responding"):
the fallback notes the question, the webhook adds it here after the handler returned, and
the same kind of thread writes the counts per text once a second (and at shutdown, and at
interpreter exit: the in-process `qzbot ask` lives for one message). While the database is
down they stay buffered (capped) and are written when it is back.

Question outcomes (issue 9, the console's questions page): the same buffer counts every
citizen text question's outcome (answer, list, fallback, ...) per Asia/Shanghai day, a dict
increment per message, and adds the counts to question_counts in the same once-a-second
transaction (UPDATE count = count + n, INSERT when missing): no extra round trip per
message, merged back on a database error like the questions.
"""

from __future__ import annotations

import atexit
import logging
import threading
import weakref
from datetime import UTC, datetime

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from bot.clock import SHANGHAI, to_utc_naive
from bot.runtime import Runtime
from bot.store.db import answer_deadline
from bot.store.queries import add_question_counts, record_unanswered, upsert_followers_seen

log = logging.getLogger("qzbot.presence")
MAX_PENDING = 100_000  # citizens buffered while the database is away; more are dropped
MAX_UNANSWERED = 10_000  # distinct questions buffered while the database is away
FLUSH_DEADLINE_SECONDS = 5.0
_open: weakref.WeakSet[_Buffer] = weakref.WeakSet()  # written at interpreter exit


class _Buffer:
    """A writer thread, started on first use, flushing every `interval` s and at close."""

    name = "buffer"
    unwritten = "%d entries not written (%s); retrying"  # the log line of a failed flush

    def __init__(self, runtime: Runtime, interval: float = 1.0):
        self.rt = runtime
        self.interval = interval
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._stopped = False
        _open.add(self)

    def _start(self) -> None:
        """Start the writer thread (call with the lock held)."""
        if self._thread is None and not self._stopped:
            self._thread = threading.Thread(target=self._run, daemon=True, name=self.name)
            self._thread.start()

    def flush(self) -> int:
        """Write what is buffered now (one transaction); returns how many entries.

        On a database error the batch goes back into the buffer (`_restore`) for the next
        flush, so nothing is lost while the database is away.
        """
        with self._lock:
            batch, self._pending = self._pending, {}
        if not batch:
            return 0
        try:
            with answer_deadline(FLUSH_DEADLINE_SECONDS), self.rt.sessions() as session:
                self._write(session, batch)
                session.commit()
        except SQLAlchemyError as exc:
            log.warning(self.unwritten, len(batch), type(exc).__name__)
            with self._lock:
                self._restore(batch)
            return 0
        return len(batch)

    def _write(self, session: Session, batch: dict) -> None:
        """Write one batch in the session (no commit)."""
        raise NotImplementedError

    def _restore(self, batch: dict) -> None:
        """Put a batch that was not written back (called with the lock held)."""
        raise NotImplementedError

    def close(self) -> None:
        """Stop the writer thread after a last flush (app shutdown, tests)."""
        with self._lock:
            thread, self._thread = self._thread, None
            self._stopped = True
        if thread is not None:
            self._wake.set()
            thread.join(timeout=5)
        self.flush()
        _open.discard(self)

    def _run(self) -> None:
        while not self._stopped:
            self._wake.wait(self.interval)
            self._wake.clear()
            self.flush()


class Presence(_Buffer):
    """Buffers citizen activity and flushes it to the followers table."""

    name = "presence"
    unwritten = "presence of %d citizen(s) not written (%s); retrying"

    def __init__(self, runtime: Runtime, interval: float = 1.0):
        super().__init__(runtime, interval)
        self._pending: dict[str, datetime] = {}

    def seen(self, openid: str, now: datetime) -> None:
        """Note a citizen message (cheap: a dict write)."""
        with self._lock:
            if len(self._pending) < MAX_PENDING or openid in self._pending:
                self._pending[openid] = to_utc_naive(now)
            self._start()

    def _write(self, session: Session, batch: dict[str, datetime]) -> None:
        upsert_followers_seen(session, batch)

    def _restore(self, batch: dict[str, datetime]) -> None:
        for openid, at in batch.items():
            if max(self._pending.get(openid, at), at) == at:  # keep the later time
                self._pending[openid] = at


# an unanswered question's text, or an outcome counter's (Asia/Shanghai day, outcome)
_Key = str | tuple[str, str]
_Entry = tuple[int, datetime, datetime]  # count, first and last time


class Unanswered(_Buffer):
    """Buffers unanswered questions (text -> count, first and last time) for the report,
    and question outcomes per day ((day, outcome) -> count) for the console."""

    name = "unanswered"
    unwritten = "%d unanswered question(s) not written (%s); retrying"

    def __init__(self, runtime: Runtime, interval: float = 1.0):
        super().__init__(runtime, interval)
        self._pending: dict[_Key, _Entry] = {}

    def add(self, text: str, now: datetime, count: int = 1) -> None:
        """Note an unanswered question (cheap: a dict write)."""
        at = to_utc_naive(now)
        with self._lock:
            self._merge(text, (count, at, at))
            self._start()

    def count(self, outcome: str, now: datetime, n: int = 1) -> None:
        """Count a question's outcome on its Asia/Shanghai day (cheap: a dict write)."""
        at = to_utc_naive(now)
        day = now.astimezone(SHANGHAI).date().isoformat() if now.tzinfo else \
            now.date().isoformat()  # naive = Asia/Shanghai local time (bot.clock)
        with self._lock:
            self._merge((day, str(outcome)), (n, at, at))
            self._start()

    def _merge(self, key: _Key, entry: _Entry) -> None:
        had = self._pending.get(key)
        if had is None:
            # outcome counters are a few per day: never dropped
            if len(self._pending) >= MAX_UNANSWERED and isinstance(key, str):
                return  # the database has been away for long: the report misses some
            self._pending[key] = entry
            return
        self._pending[key] = (had[0] + entry[0], min(had[1], entry[1]), max(had[2], entry[2]))

    def _write(self, session: Session, batch: dict[_Key, _Entry]) -> None:
        counts: dict[tuple[str, str], int] = {}
        for key, (count, first, last) in batch.items():
            if isinstance(key, tuple):
                counts[key] = count
            else:
                # the buffer holds naive UTC; record_unanswered reads naive as Shanghai time
                record_unanswered(session, key, last.replace(tzinfo=UTC), count=count,
                                  first=first.replace(tzinfo=UTC))
        if counts:
            add_question_counts(session, counts)

    def _restore(self, batch: dict[_Key, _Entry]) -> None:
        for key, entry in batch.items():
            self._merge(key, entry)


@atexit.register
def _flush_at_exit() -> None:
    """Write what open buffers hold when the interpreter exits (`qzbot ask`, scripts)."""
    for buffer in list(_open):
        try:
            buffer.close()
        except Exception as exc:  # noqa: BLE001 - at exit: report, never raise
            log.warning("%s not written at exit: %s", buffer.name, type(exc).__name__)
