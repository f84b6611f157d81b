"""What the citizen edge needs from search, as a typed interface (the foundation's side).

The webhook asks whether answering needs an index build first (`ready`), the composition
root warms the index up (`index`), and handlers ask questions (`find`). The implementation
is a feature (handlers.search.SearchService); the foundation only knows this Protocol, so
`bot/` never imports `handlers/`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from bot.store.models import Record


@dataclass(frozen=True)
class Found:
    """Visible records for a query, best first, and whether the first is a confident answer.

    `records` holds only records relevant to the question (each shares a meaningful term
    with it; never padded), so an empty list means "honest fallback". `transport` says
    whether the question is about transport at all (the fallback names 12328 then, else
    12345).
    """

    records: list[Record]
    confident: bool
    transport: bool = False


class Search(Protocol):
    """A per-process search over the visible records, kept current with the content."""

    def ready(self, sessions: sessionmaker[Session], now: datetime) -> bool:
        """Whether answering now needs no index build (the webhook's time-budget check)."""
        ...

    def index(self, session: Session, now: datetime) -> object:
        """Build the index for the current content if needed (warm-up) and return it."""
        ...

    def find(self, session: Session, query: str, now: datetime, limit: int = 5) -> Found:
        """Visible records answering `query`, best first."""
        ...

    def visible(self, session: Session, keys: list[str], now: datetime) -> dict[str, Record]:
        """The records of `keys` citizens may see now (the data layer's visibility rule)."""
        ...
