"""Explicit router: handlers registered in order, first match wins, explicit fallback.

Every handler has one signature: handler(msg, ctx) -> Reply | None (None = not mine).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import redis
    from sqlalchemy.orm import Session, sessionmaker

    from bot.search_api import Search
    from bot.settings import Settings
    from bot.wechat.messages import Message

log = logging.getLogger("qzbot.router")


@dataclass(frozen=True)
class Reply:
    """What the citizen gets: a text, a news article list, or nothing (`success`).

    `followups` are further texts sent later by customer-service message (long answers).
    """

    text: str = ""
    articles: tuple = ()
    followups: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        """True when the passive reply is `success`."""
        return not self.text and not self.articles


SUCCESS = Reply()


class LazySession:
    """A database session opened on first use, so a message that needs no SQL opens none.

    Most answers come from the search snapshot; opening and closing a SQLAlchemy session
    for each of them cost ~30 µs. Any attribute (`execute`, `scalars`, `begin_nested`, ...)
    opens the real session and is delegated to it; the webhook commits, rolls back and
    closes it only when `opened`.
    """

    def __init__(self, sessions: sessionmaker[Session]):
        self._sessions = sessions
        self._session: Session | None = None

    @property
    def opened(self) -> bool:
        """Whether a handler has used the session (so the edge must end it)."""
        return self._session is not None

    def real(self) -> Session:
        """The session, opened now if not yet."""
        if self._session is None:
            self._session = self._sessions()
        return self._session

    def __getattr__(self, name: str):
        return getattr(self.real(), name)

    def close(self) -> None:
        """Close the session if it was opened; otherwise nothing to do."""
        if self._session is not None:
            self._session.close()


@dataclass
class Context:
    """What a handler may use; built per request by the webhook."""

    session: Session  # a LazySession from the webhook: opened on first use
    redis: redis.Redis
    settings: Settings
    now: datetime
    search: Search
    openid_hash: str = ""
    notes: dict = field(default_factory=dict)


Handler = Callable[["Message", Context], Reply | None]
Predicate = Callable[["Message"], bool]


class Router:
    """Ordered (predicate, handler) routes plus a fallback."""

    def __init__(self, fallback: Handler):
        self.routes: list[tuple[str, Predicate, Handler]] = []
        self.fallback = fallback

    def add(self, name: str, predicate: Predicate, handler: Handler) -> None:
        """Register a route; order of registration is order of matching."""
        self.routes.append((name, predicate, handler))

    def dispatch(self, msg: Message, ctx: Context) -> Reply:
        """Run the first matching handler that answers; else the fallback."""
        for name, predicate, handler in self.routes:
            if predicate(msg):
                reply = handler(msg, ctx)
                if reply is not None:
                    ctx.notes.setdefault("route", name)
                    return reply
        ctx.notes.setdefault("route", "fallback")
        return self.fallback(msg, ctx)


def is_type(*types: str) -> Predicate:
    """Predicate: MsgType is one of `types`."""
    return lambda msg: msg.msg_type in types


def is_event(*events: str) -> Predicate:
    """Predicate: an event whose Event is one of `events` (lowercase)."""
    return lambda msg: msg.msg_type == "event" and msg.event in events
