"""The per-process search service: an index and a snapshot of the visible records.

Answering needs no database round trip: the index is built from the data layer's visible
records (bot/store/queries.visible_records, the one visibility rule) and kept with a
snapshot of those records, so `find` and `visible` read memory. The snapshot is valid for
its content revision (re-read at most every `check_seconds`) and until the first `ends_at`
among its records; then the records are re-read with the same query (a notice leaving
needs no index rebuild: hits missing from the snapshot are dropped). A record is never
answered at or after its own `ends_at` even inside a snapshot's life, and a content change
(import, withdrawal: both bump the revision) takes effect within `check_seconds`.
`Found` (what `find` returns) is defined with the interface in bot.search_api.
"""

from __future__ import annotations

import copyreg
import functools
import hashlib
import hmac
import io
import logging
import os
import pickle
import threading
import time
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from datetime import datetime
from importlib import metadata
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from bot.clock import to_utc_naive
from bot.search_api import Found
from bot.store.models import Record
from bot.store.queries import content_revision, synonym_groups, visible_records
from handlers.search.index import SearchIndex, doc_from_record
from handlers.search.text import load_jieba

log = logging.getLogger("qzbot.search")


@dataclass(frozen=True)
class Snapshot:
    """The visible records of one content revision, as the data layer listed them, and
    the index built from that revision's records."""

    revision: int
    records: dict[str, Record]  # key -> record, detached from any session (read-only)
    valid_until: datetime | None  # the first ends_at among them (naive UTC)
    index: SearchIndex | None = None

    @classmethod
    def load(cls, session: Session, now: datetime, revision: int,
             index: SearchIndex | None = None) -> Snapshot:
        """Run the visibility query and keep its records, detached, by key."""
        rows = visible_records(session, now)
        for row in rows:  # detached: no later commit, rollback or close touches them
            session.expunge(row)
        ends = [r.ends_at for r in rows if r.ends_at is not None]
        return cls(revision, {r.key: r for r in rows}, min(ends) if ends else None, index)

    def fresh(self, revision: int, stamp: datetime) -> bool:
        """Whether this snapshot still lists exactly what the data layer shows."""
        return revision == self.revision and (self.valid_until is None
                                              or stamp < self.valid_until)

    def visible(self, keys: list[str], stamp: datetime) -> dict[str, Record]:
        """The records of `keys` in the snapshot that have not ended by `stamp`."""
        out = {}
        for key in keys:
            record = self.records.get(key)
            if record is not None and (record.ends_at is None or record.ends_at > stamp):
                out[key] = record
        return out


class SearchService:
    """Holds the current index and snapshot; thread-safe; rebuilds lazily on change.

    Implements bot.search_api.Search, the interface the webhook and handlers use.
    """

    # where short-lived processes keep built indexes (`qzbot ask` sets it while it runs)
    store: IndexStore | None = None

    def __init__(self, check_seconds: float = 1.0) -> None:
        self.check_seconds = check_seconds
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None  # swapped whole: readers take no lock
        self._seen_revision = -1
        self._checked = 0.0
        self.build_seconds = 0.0

    def index(self, session: Session, now: datetime) -> SearchIndex:
        """The index for the current content revision (built or rebuilt if needed)."""
        return self.snapshot(session, now).index  # type: ignore[return-value]

    def snapshot(self, session: Session, now: datetime) -> Snapshot:
        """The visible records now (index rebuilt on a revision change, records re-read
        when one of them ends)."""
        revision = self._current_revision(session)
        stamp = to_utc_naive(now)
        snap = self._snapshot
        if snap is not None and snap.fresh(revision, stamp):
            return snap
        with self._lock:
            snap = self._snapshot
            if snap is None or snap.revision != revision:
                self._build(session, now, revision)
            elif not snap.fresh(revision, stamp):  # a record ended: re-read, same index
                self._snapshot = Snapshot.load(session, now, revision, snap.index)
            return self._snapshot  # type: ignore[return-value]

    def _current_revision(self, session: Session) -> int:
        """The content revision, re-read at most every `check_seconds`."""
        tick = time.monotonic()
        if self._snapshot is None or tick - self._checked >= self.check_seconds:
            self._seen_revision = content_revision(session)
            self._checked = tick
        return self._seen_revision

    def ready(self, sessions: sessionmaker[Session], now: datetime) -> bool:
        """Whether answering now needs no index build (the one slow step an answer can meet).

        Reads the content revision when its check is due (a cheap query, at most every
        `check_seconds`); the webhook answers under its time budget when this is False.
        Re-reading the snapshot when a notice ends is one query, not a build.
        """
        snap = self._snapshot
        if snap is None:
            return False
        if time.monotonic() - self._checked >= self.check_seconds:
            with sessions() as session:
                self._current_revision(session)
        return self._seen_revision == snap.revision

    def _build(self, session: Session, now: datetime, revision: int) -> None:
        started = time.perf_counter()
        snap = Snapshot.load(session, now, revision)
        synonyms = synonym_groups(session)
        store, name = self.store, ""
        index = None
        if store is not None:
            name = store.name(snap, synonyms)
            index = store.load(name)
        if index is None:
            docs = [doc_from_record(r.kind, r.data) for r in snap.records.values()]
            index = SearchIndex(docs, synonyms)
            if store is not None:
                try:
                    store.save(name, index)
                except OSError as exc:  # a read-only or full disk costs the next run time
                    log.warning("index not stored (%s)", type(exc).__name__)
        self._snapshot = Snapshot(revision, snap.records, snap.valid_until, index)
        self.build_seconds = time.perf_counter() - started
        log.info("search index ready: %d records, revision %d, %.3f s", len(snap.records),
                 revision, self.build_seconds)

    def find(self, session: Session, query: str, now: datetime, limit: int = 5) -> Found:
        """Search, then keep only records the data layer shows now (from the snapshot)."""
        snap = self.snapshot(session, now)
        result = snap.index.search(query, limit=limit)  # type: ignore[union-attr]
        keys = [hit.key for hit in result.hits]
        visible = snap.visible(keys, to_utc_naive(now))
        if result.confident and keys and keys[0] in visible:  # the top record alone
            return Found([visible[keys[0]]], True, result.transport)
        return Found([visible[k] for k in keys if k in visible], False, result.transport)

    def visible(self, session: Session, keys: list[str], now: datetime) -> dict[str, Record]:
        """The records of `keys` citizens may see now (the data layer's visibility rule)."""
        return self.snapshot(session, now).visible(list(keys), to_utc_naive(now))


# --- built indexes on disk, for short-lived processes (`qzbot ask`) ------------------------
_ENGINE_FILES = ("*.py", "*.toml")


def engine_version() -> str:
    """A digest of the search engine's code and word lists (any change retires old files)."""
    global _engine_version
    if _engine_version is None:
        digest = hashlib.sha256(jieba_version().encode())
        here = Path(__file__).resolve().parent
        for pattern in _ENGINE_FILES:
            for path in sorted(here.glob(pattern)):
                digest.update(path.name.encode() + b"\0" + path.read_bytes())
        _engine_version = digest.hexdigest()
    return _engine_version


_engine_version: str | None = None


def jieba_version() -> str:
    """The installed jieba's version (its dictionary is part of every index)."""
    try:
        return metadata.version("jieba")
    except metadata.PackageNotFoundError:
        return "?"


class _IndexPickler(pickle.Pickler):
    """Pickles a SearchIndex: locks are recreated empty, the answer cache starts empty,
    and the index's jieba dictionary is stored packed (see PackedFreq)."""

    dispatch_table = {**copyreg.dispatch_table,
                      type(threading.RLock()): lambda _: (threading.RLock, ()),
                      type(threading.Lock()): lambda _: (threading.Lock, ())}

    def reducer_override(self, obj: object) -> object:
        if isinstance(obj, functools._lru_cache_wrapper):  # noqa: SLF001 - the LRU's type
            maxsize = obj.cache_parameters()["maxsize"]
            return _fresh_lru, (obj.__wrapped__, maxsize)
        if type(obj).__name__ == "Tokenizer" and type(obj).__module__ == "jieba":
            state = {k: v for k, v in vars(obj).items() if k not in ("FREQ", "lock")}
            freq = obj.FREQ  # type: ignore[attr-defined]
            packed = (freq._buckets, freq._extra) if isinstance(freq, PackedFreq) \
                else PackedFreq.pack(freq)
            return _thaw_tokenizer, (state, *packed)
        return NotImplemented


def _fresh_lru(function: Callable, maxsize: int | None) -> Callable:
    return functools.lru_cache(maxsize=maxsize)(function)


def _thaw_tokenizer(state: dict, buckets: dict[str, bytes], extra: dict[str, int]) -> object:
    """A jieba Tokenizer from its pickled state, its dictionary a PackedFreq."""
    tk = load_jieba().Tokenizer()
    vars(tk).update(state)
    tk.FREQ = PackedFreq(buckets, extra)
    return tk


class PackedFreq(MutableMapping):
    """jieba's word -> frequency table as an index file stores it: the entries packed into
    one bytes string per first character ("\nword\tfreq" each), so loading it creates
    some thousand objects instead of the 500 000 strings and ints of the dict, which took
    a third of a `qzbot ask` to unpickle. A lookup searches the string of the word's first
    character (a few hundred bytes on average); entries added later, and any word the
    format cannot hold, live in an ordinary dict consulted first."""

    __slots__ = ("_buckets", "_extra")

    def __init__(self, buckets: dict[str, bytes], extra: dict[str, int] | None = None) -> None:
        self._buckets = buckets
        self._extra: dict[str, int] = {} if extra is None else extra

    @classmethod
    def pack(cls, freq: Mapping[str, int]) -> tuple[dict[str, bytes], dict[str, int]]:
        """(buckets, extra) holding exactly the entries of `freq`."""
        parts: dict[str, list[bytes]] = {}
        extra: dict[str, int] = {}
        for word, count in freq.items():
            if not word or "\n" in word or "\t" in word or type(count) is not int:
                extra[word] = count
            else:
                parts.setdefault(word[0], []).append(f"\n{word}\t{count}".encode())
        return {first: b"".join(p) for first, p in parts.items()}, extra

    def _find(self, word: str) -> int | None:
        blob = self._buckets.get(word[:1])
        if blob is None:
            return None
        needle = b"\n" + word.encode() + b"\t"
        at = blob.find(needle)
        if at < 0:
            return None
        start = at + len(needle)
        end = blob.find(b"\n", start)
        return int(blob[start:end] if end >= 0 else blob[start:])

    def get(self, word: str, default: object = None) -> object:  # type: ignore[override]
        """The frequency of `word`, or `default` (jieba's hot path: no exception)."""
        if word in self._extra:
            return self._extra[word]
        found = self._find(word) if isinstance(word, str) else None
        return default if found is None else found

    def __contains__(self, word: object) -> bool:
        return word in self._extra or (isinstance(word, str) and self._find(word) is not None)

    def __getitem__(self, word: str) -> int:
        found = self.get(word)
        if found is None:
            raise KeyError(word)
        return found  # type: ignore[return-value]

    def __setitem__(self, word: str, count: int) -> None:
        self._extra[word] = count

    def __delitem__(self, word: str) -> None:
        if word not in self._extra:
            raise TypeError("packed entries cannot be deleted (jieba sets a frequency of 0)")
        del self._extra[word]

    def __iter__(self) -> Iterator[str]:
        yield from self._extra
        for blob in self._buckets.values():
            for entry in blob.decode().split("\n")[1:]:
                word = entry.rpartition("\t")[0]
                if word not in self._extra:
                    yield word

    def __len__(self) -> int:
        return sum(1 for _ in self)


class IndexStore:
    """Built indexes in a private folder, HMAC-signed: a file is unpickled only when its
    signature, made with a key derived from [security] secret_key, checks out (a file
    this code did not write is never unpickled). Files are 0600, the folder 0700; the name
    is a digest of the engine version and of exactly the records and synonyms indexed."""

    KEEP = 3  # newest files kept (older revisions are pruned)

    def __init__(self, directory: Path, secret_key: str) -> None:
        self.directory = directory
        self._key = hmac.new(secret_key.encode(), b"qzbot search index store",
                             hashlib.sha256).digest()

    def name(self, snap: Snapshot, synonyms: list[list[str]]) -> str:
        """The file name for an index over these records and synonym groups."""
        digest = hashlib.sha256(engine_version().encode())
        for key in sorted(snap.records):
            digest.update(f"\0{key}\0{snap.records[key].digest}".encode())
        digest.update(repr(sorted(map(sorted, synonyms))).encode())
        return f"index-{digest.hexdigest()[:40]}.pickle"

    def load(self, name: str) -> SearchIndex | None:
        """The stored index, or None (absent, unsigned, damaged or of another type)."""
        try:
            data = (self.directory / name).read_bytes()
        except OSError:
            return None
        tag, payload = data[:32], data[32:]
        if not hmac.compare_digest(tag, hmac.new(self._key, payload, hashlib.sha256).digest()):
            log.warning("index file %s: bad signature, ignored", name)
            return None
        try:
            index = pickle.loads(payload)  # noqa: S301 - signed by us (checked above)
        except Exception as exc:  # noqa: BLE001 - a stale file is rebuilt, never fatal
            log.warning("index file %s unreadable (%s), rebuilt", name, type(exc).__name__)
            return None
        return index if isinstance(index, SearchIndex) else None

    def save(self, name: str, index: SearchIndex) -> None:
        """Write the index (atomically, mode 0600) and prune older files."""
        buffer = io.BytesIO()
        _IndexPickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(index)
        payload = buffer.getvalue()
        tag = hmac.new(self._key, payload, hashlib.sha256).digest()
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = self.directory / f".{name}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(tag + payload)
        os.replace(tmp, self.directory / name)
        old = sorted(self.directory.glob("index-*.pickle"), key=lambda p: p.stat().st_mtime)
        for path in old[:-self.KEEP]:
            path.unlink(missing_ok=True)
