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
    """Visible records for a query, best first, and whether the first is a confident answer."""

    records: list[Record]
    confident: bool


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
