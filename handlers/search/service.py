"""The per-process search service: an index over visible records, rebuilt on change.

The index is built from the data layer's visible records and rebuilt when the content
revision changes or the first indexed notice expires; every hit is re-checked against the
data layer at query time, so a hidden record can never be answered, even by exact title.
`Found` (what `find` returns) is defined with the interface in bot.search_api.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from bot.clock import to_utc_naive
from bot.search_api import Found
from bot.store.models import Record
from bot.store.queries import (
    content_revision,
    synonym_groups,
    visible_by_keys,
    visible_records,
)
from handlers.search.index import SearchIndex, doc_from_record

log = logging.getLogger("qzbot.search")


class SearchService:
    """Holds the current index; thread-safe; rebuilds lazily when content changes.

    Implements bot.search_api.Search, the interface the webhook and handlers use.
    """

    def __init__(self, check_seconds: float = 1.0) -> None:
        self.check_seconds = check_seconds
        self._lock = threading.Lock()
        self._index: SearchIndex | None = None
        self._revision = -1
        self._valid_until: datetime | None = None
        self._seen_revision = -1
        self._checked = 0.0
        self.build_seconds = 0.0

    def index(self, session: Session, now: datetime) -> SearchIndex:
        """The index for the current content revision (built or rebuilt if needed)."""
        revision = self._current_revision(session)
        stamp = to_utc_naive(now)
        if self._fresh(revision, stamp):
            return self._index  # type: ignore[return-value]
        with self._lock:
            if not self._fresh(revision, stamp):
                self._build(session, now, revision)
            return self._index  # type: ignore[return-value]

    def _current_revision(self, session: Session) -> int:
        """The content revision, re-read at most every `check_seconds`."""
        tick = time.monotonic()
        if self._index is None or tick - self._checked >= self.check_seconds:
            self._seen_revision = content_revision(session)
            self._checked = tick
        return self._seen_revision

    def ready(self, sessions: sessionmaker[Session], now: datetime) -> bool:
        """Whether answering now needs no index build (the one slow step an answer can meet).

        Reads the content revision when its check is due (a cheap query, at most every
        `check_seconds`); the webhook answers under its time budget when this is False.
        """
        if self._index is None:
            return False
        if time.monotonic() - self._checked >= self.check_seconds:
            with sessions() as session:
                self._current_revision(session)
        return self._fresh(self._seen_revision, to_utc_naive(now))

    def _fresh(self, revision: int, stamp: datetime) -> bool:
        return (self._index is not None and revision == self._revision
                and (self._valid_until is None or stamp < self._valid_until))

    def _build(self, session: Session, now: datetime, revision: int) -> None:
        started = time.perf_counter()
        records = visible_records(session, now)
        docs = [doc_from_record(r.kind, r.data) for r in records]
        self._index = SearchIndex(docs, synonym_groups(session))
        ends = [r.ends_at for r in records if r.ends_at is not None]
        self._valid_until = min(ends) if ends else None
        self._revision = revision
        self.build_seconds = time.perf_counter() - started
        log.info("search index built: %d records, revision %d, %.3f s", len(docs), revision,
                 self.build_seconds)

    def find(self, session: Session, query: str, now: datetime, limit: int = 5) -> Found:
        """Search, then keep only records the data layer says are visible now."""
        result = self.index(session, now).search(query, limit=limit)
        keys = [hit.key for hit in result.hits]
        if result.confident:  # the answer is the top record alone, if it is still visible
            top = self.visible(session, keys[:1], now)
            if top:
                return Found(list(top.values()), True, result.transport)
        visible = self.visible(session, keys, now)
        return Found([visible[k] for k in keys if k in visible], False, result.transport)

    def visible(self, session: Session, keys: list[str], now: datetime) -> dict[str, Record]:
        """The records of `keys` citizens may see now (the data layer's visibility rule)."""
        return visible_by_keys(session, keys, now)
