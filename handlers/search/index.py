"""The query index: find the record that answers a citizen's Chinese question.

Why hand-written: no library does what the bot needs in-process. rank-bm25 scores one
bag of words per document: no fields (a title match counts like a body match), no
synonyms, no identifiers, no colloquial handling, and a full scan per query;
Whoosh/Tantivy-style engines need a Chinese analyser, an on-disk store and still know
nothing of 文号 variants or of "怎么办"; Elasticsearch is a server to run. The bot answers
from a few thousand records held in memory, so a small BM25F index over our own fields
is simpler and answers better (bench/answers.py measures it against rank-bm25).

The modules, in the order a question meets them:
- text: normalisation, the process-wide jieba tokenizer (loaded lazily from
  jieba's cache, quiet, with titles, keywords, synonym words and exact ids added so
  domain terms stay whole), character n-grams, 文号 and number forms;
- lexicon: stop words, filler, question phrases and colloquial verbs;
- query: a question -> weighted units (word, synonyms, colloquial equivalents,
  inner words, n-grams) plus kind hints;
- build: records -> posting lists with BM25F pseudo term frequencies (flat numpy arrays);
- score: first-stage BM25F scoring with an n-gram fallback per unit, vectorised, each
  unit's matches remembered per index (UnitMemo: questions differ, their words repeat);
- rerank: the best candidates re-weighed by coverage (a soft AND), title fit and
  kind hints;
- outcome: only the relevant ones are kept (a list is never padded; none = fallback);
- domain: the engine's domain lexicon (everyday -> official transport words), applied to
  every index and marking transport questions.
An exact 文号 or telephone number puts its record first. ``confident`` says whether the
top hit covers most of what was asked and clearly beats the runner-up. An index is
immutable once built (its memos only hold read-only results, behind lru_cache's own
lock), so concurrent searches need no locking.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from bot.vocab import ANSWER_KINDS, NOTICE_KIND_LABEL, NoticeKind
from handlers.search.build import build_exact, build_tables, register_words
from handlers.search.domain import DomainLexicon, domain_lexicon, merge_groups
from handlers.search.query import Query, parse_query
from handlers.search.score import UnitMemo, score_query
from handlers.search.text import (
    MAX_RAW_CHARS,
    Segmenter,
    cut_words,
    digit_runs,
    is_cjk,
    normalize,
    using,
    wenhao_mentions,
)

KINDS: tuple[str, ...] = tuple(k.value for k in ANSWER_KINDS)
_TITLE_FIELD = {"hotline": "name", "project": "name", "faq": "question"}
_EXACT_FIELD = {"hotline": "number", "policy": "doc_number"}
_ABOUT_FIELD = {"hotline": "scope"}
# Fields that are not words a citizen would ask with.
_SKIP_FIELDS = frozenset(
    {"id", "keywords", "url", "online_url", "disclosure", "urgent", "starts_at", "ends_at",
     "issued_on", "formed_on", "published_on", "updated_on"}
)
MAX_LIMIT = 50
# answers to recent distinct questions kept per index (results are small: keys and scores)
QUERY_CACHE_SIZE = 4096


@dataclass(frozen=True)
class SearchDoc:
    """One searchable record."""

    key: str
    kind: str
    title: str
    text: str
    keywords: tuple[str, ...] = ()
    exact: tuple[str, ...] = ()
    # what the record is about besides its title (a hotline's scope): a question naming
    # it is about the record (outcome.py), though it ranks like the rest of the text
    about: str = ""


@dataclass(frozen=True)
class Hit:
    """A matching record and its score."""

    key: str
    score: float


@dataclass(frozen=True)
class SearchResult:
    """Relevant hits, best first, and whether the first one is clearly the answer.

    Only records sharing a meaningful term with the question are hits (outcome.py), never
    padded up to the limit: no hits means the honest fallback.
    """

    hits: list[Hit] = field(default_factory=list)
    confident: bool = False
    # whether the question is about transport (decides the fallback hotline: 12328 / 12345)
    transport: bool = False


def doc_from_record(kind: str, fields: Mapping[str, object]) -> SearchDoc:
    """Build the SearchDoc of a pack record of the given kind (see content-pack.md)."""
    if kind not in KINDS:
        raise ValueError(f"not a searchable record kind: {kind!r}")
    title_field = _TITLE_FIELD.get(kind, "title")
    parts: list[str] = []
    for name, value in fields.items():
        if name == title_field or name in _SKIP_FIELDS:
            continue
        if kind == "notice" and name == "kind":
            value = "" if value == NoticeKind.OTHER else NOTICE_KIND_LABEL.get(str(value), "")
        elif name == "progress_percent":
            value = f"进度{value}%"
        parts.append(_flatten(value))
    exact_field = _EXACT_FIELD.get(kind)
    exact = fields.get(exact_field) if exact_field else None
    keywords = fields.get("keywords") or ()
    return SearchDoc(
        key=f"{kind}:{fields.get('id', '')}",
        kind=kind,
        title=_flatten(fields.get(title_field, "")),
        text=" ".join(p for p in parts if p),
        keywords=tuple(str(k) for k in keywords) if isinstance(keywords, list | tuple) else (),
        exact=(str(exact),) if exact else (),
        about=_flatten(fields.get(_ABOUT_FIELD.get(kind, ""), "")),
    )


def _flatten(value: object) -> str:
    """Text of a field value: strings as is, lists and tables joined, dates dropped."""
    if value is None or isinstance(value, bool | date | datetime):
        return ""
    if isinstance(value, Mapping):
        return " ".join(_flatten(v) for k, v in value.items() if k != "url")
    if isinstance(value, list | tuple):
        return " ".join(_flatten(v) for v in value)
    return str(value)


class SearchIndex:
    """An immutable in-memory index over SearchDocs; safe for concurrent searches."""

    def __init__(self, docs: Iterable[SearchDoc], synonyms: Iterable[Sequence[str]] = (),
                 lexicon: DomainLexicon | None = None):
        """Index the documents (a repeated key keeps the last one) with synonym groups.

        The domain lexicon (the engine's own, by default; domain.EMPTY for none) gives
        every index its everyday -> official transport words; `synonyms` (a pack's own
        groups) add to them.
        """
        records = list({doc.key: doc for doc in docs}.values())
        lexicon = domain_lexicon() if lexicon is None else lexicon
        groups = [tuple(w for w in (normalize(x) for x in g) if w)
                  for g in merge_groups(lexicon, list(synonyms))]
        groups = [g for g in groups if len(g) > 1]
        self._synonyms = _synonym_map(groups)
        self._domain = lexicon.words
        self._segmenter = Segmenter()
        with using(self._segmenter):
            register_words(records, groups)
            self._tables = build_tables(records, self._synonyms)
            self._exact = build_exact(records)
        self._keys = [doc.key for doc in records]  # the records live in the data layer
        self._units = UnitMemo(self._tables)  # what recently asked words match (score.py)
        # per index, so a rebuild (content change, notice expiry) starts with an empty cache
        self._cached = functools.lru_cache(maxsize=QUERY_CACHE_SIZE)(self._rank)

    def __len__(self) -> int:
        """Number of indexed documents."""
        return len(self._keys)

    def search(self, query: str, limit: int = 5) -> SearchResult:
        """Rank the documents for a question; never raises on odd input."""
        try:
            limit = max(1, min(int(limit), MAX_LIMIT))
        except (TypeError, ValueError):
            limit = 5
        if not isinstance(query, str):
            query = "" if query is None else str(query)
        if not self._keys:  # no content yet: nothing to answer, but the hotline still fits
            return SearchResult([], False, self._names_domain_word(query))
        # only the first MAX_RAW_CHARS characters are ever read (parse_query), so they are
        # the cache key; popular questions repeat (a typhoon day: "渡轮还开吗" all day long)
        shared = self._cached(query[:MAX_RAW_CHARS], limit)
        # callers get their own list
        return SearchResult(list(shared.hits), shared.confident, shared.transport)

    def _rank(self, query: str, limit: int) -> SearchResult:
        """Parse, score and rerank (the uncached search)."""
        with using(self._segmenter):
            parsed = parse_query(query, self._synonyms, self._known, domain=self._domain)
            exact = self._exact_matches(parsed)
            scored = score_query(self._tables, parsed, exact, limit, self._units)
        confident = scored.confident
        if not exact and _asks_identifier(parsed):
            confident = False  # a 文号 or number we do not have: similar words are no answer
        hits = [Hit(self._keys[d], round(s, 4)) for d, s in scored.ranked]
        return SearchResult(hits, confident, scored.transport)

    def _names_domain_word(self, query: str) -> bool:
        """Whether the question names a domain-lexicon word (a transport question)."""
        with using(self._segmenter):
            groups = cut_words(normalize(query, MAX_RAW_CHARS))
        return any(word in self._domain for group in groups for word in group)

    def _known(self, word: str) -> bool:
        """Whether the records use the word or one of its synonyms."""
        words = self._tables.words
        return word in words or any(s in words for s in self._synonyms.get(word, ()))

    def _exact_matches(self, query: Query) -> set[int]:
        """Documents whose 文号 or telephone number the question contains."""
        found: set[int] = set()
        for run in digit_runs(query.text):
            found.update(self._exact.digits.get(run, ()))
        for before, year, number in wenhao_mentions(query.canon):
            for prefix, doc_id in self._exact.wenhao.get((year, number), ()):
                if before.endswith(prefix):
                    found.add(doc_id)
        for canon, doc_id in self._exact.other:
            if canon in query.canon:
                found.add(doc_id)
        return found


def _asks_identifier(query: Query) -> bool:
    """Whether the question quotes a 文号 (with its issuer) or a telephone-like number."""
    if any(len(run) >= 5 for run in digit_runs(query.text)):
        return True
    return any(before and is_cjk(before[-1]) for before, _, _ in wenhao_mentions(query.canon))


def _synonym_map(groups: Sequence[Sequence[str]]) -> dict[str, tuple[str, ...]]:
    """Map each synonym word to the other words of every group it belongs to."""
    merged: dict[str, set[str]] = {}
    for group in groups:
        for word in group:
            merged.setdefault(word, set()).update(group)
    return {word: tuple(sorted(others - {word})) for word, others in merged.items()}
