"""Search: the in-process index that finds the record answering a citizen's question.

`SearchService` (service.py) implements bot.search_api.Search, the typed interface the
webhook and handlers use; the composition root constructs it. `SearchIndex` (index.py) is
the immutable BM25F index over records, built from the modules listed in its docstring.
Search imports only bot's foundation (store, vocab, clock), never other handlers.
"""

from __future__ import annotations

from bot.search_api import Found
from handlers.search.index import KINDS, SearchDoc, SearchIndex, SearchResult, doc_from_record
from handlers.search.service import SearchService

__all__ = ["KINDS", "Found", "SearchDoc", "SearchIndex", "SearchResult", "SearchService",
           "doc_from_record"]
