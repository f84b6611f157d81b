"""What the in-process `qzbot ask` keeps between runs: the built search index and the
citizen's pending numbered list, so a second run answers fast and "qzbot ask 2" opens
item 2 of the list the previous run showed, as the server does.

Both live in a private cache folder (0700; files 0600): `QZBOT_CACHE_DIR`, else `cache/`
beside a SQLite database file, else `~/.cache/qzbot/<digest of the database URL>`. The
index is stored by handlers.search.service.IndexStore (HMAC-signed with a key derived from
[security] secret_key; never unpickled unless the signature checks out). The pending list
is the embedded Redis's choice-context keys of this citizen (`qzbot:ctx:<openid hash>`,
handlers/choices.py), saved as JSON with their expiry, so the 10-minute TTL still holds.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis
from sqlalchemy.engine import Engine

from bot.redisconn import is_embedded
from bot.runtime import Runtime, openid_hash
from handlers.search.service import IndexStore, SearchService

CONTEXT_PREFIX = "qzbot:ctx:"  # handlers/choices.py's key: the citizen's pending list


def cache_dir(engine: Engine) -> Path:
    """The cache folder for this database (see the module docstring)."""
    if os.environ.get("QZBOT_CACHE_DIR"):
        return Path(os.environ["QZBOT_CACHE_DIR"])
    url = engine.url
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return Path(url.database).resolve().parent / "cache"
    digest = hashlib.sha256(url.render_as_string(hide_password=True).encode()).hexdigest()
    return Path.home() / ".cache" / "qzbot" / digest[:16]


@contextmanager
def in_process_state(runtime: Runtime, openid: str) -> Iterator[None]:
    """Around one in-process ask: use the stored index; restore and save the citizen's
    pending list (embedded Redis only: a real Redis keeps it by itself)."""
    folder = cache_dir(runtime.engine)
    previous = SearchService.store
    if runtime.settings.security.secret_key:  # no key, no signature: build every time
        SearchService.store = IndexStore(folder, runtime.settings.security.secret_key)
    embedded = is_embedded(runtime.redis)
    state = folder / f"context-{openid_hash(openid)}.json"
    if embedded:
        _restore(runtime.redis, state)
    try:
        yield
    finally:
        SearchService.store = previous
        if embedded:
            _save(runtime.redis, state, CONTEXT_PREFIX + openid_hash(openid))


def _restore(client: redis.Redis, state: Path) -> None:
    """Put the saved keys back with the time they had left."""
    try:
        saved = json.loads(state.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    now = time.time()
    for key, (value, expires_at) in saved.items():
        left_ms = int((float(expires_at) - now) * 1000)
        if key.startswith(CONTEXT_PREFIX) and left_ms > 0:
            client.set(key, str(value).encode("utf-8"), px=left_ms)


def _save(client: redis.Redis, state: Path, key: str) -> None:
    """Write this citizen's context keys and their expiry (delete the file when none)."""
    saved = {}
    for name in client.scan_iter(match=key + "*"):
        value, left_ms = client.get(name), client.pttl(name)
        if value is not None and left_ms > 0:
            saved[name.decode()] = [value.decode("utf-8"), time.time() + left_ms / 1000]
    if not saved:
        state.unlink(missing_ok=True)
        return
    state.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(state, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(saved, out, ensure_ascii=False)
