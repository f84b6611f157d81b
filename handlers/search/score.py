"""First-stage scoring of a parsed question, and the confidence decision.

Each unit of the question adds, per record, the best BM25F value among its
alternatives: the word and its synonyms share one concept idf; colloquial equivalents
and the dictionary words inside it count less. Where the word channel finds nothing
(out-of-vocabulary words, segmentation mismatches, typos) the unit's character bigrams
stand in, and for a word the records never use, its single characters. Bigrams joining
adjacent words add a little phrase evidence. The best candidates then go through
rerank; an exact identifier puts its record first. Confidence needs the top
record to cover most of the question (unmatched rare words weigh the most: "今天吃什么"
covers nothing) and to clearly beat the runner-up. Finally outcome.py keeps only the
relevant records (none: the honest fallback) and says whether the question is about
transport; records about the account itself ("公众号能做什么") only take part when the
question asks about the account, and referral records (another agency's business,
lexicon.REFERRAL_MARK) step aside unless the question names their topic.

Scoring is vectorised: a unit's best value and match strength per record are computed
with numpy, every posting (build.Channel) applied in one step, and remembered per index
for the units asked most recently (UnitMemo: questions differ, their words repeat).
Each query adds them into its own dense vectors (nothing shared is written), so
concurrent searches need no locking. Only the candidates' strengths leave this module,
as dicts.
"""

from __future__ import annotations

import functools
import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from handlers.search.build import Channel, Tables
from handlers.search.lexicon import ACCOUNT_PHRASES
from handlers.search.outcome import Evidence, meaningful_units, relevant
from handlers.search.query import COLLOQUIAL_FACTOR, SYNONYM_FACTOR, Query, Unit
from handlers.search.rerank import TitleMemo, rerank
from handlers.search.text import is_cjk

# Value of an n-gram-only match relative to a word match, and of a single-character one.
GRAM_FACTOR = 0.6
CHAR_FACTOR = 0.3
JUNCTION_WEIGHT = 0.15
# How much of a unit an n-gram-only (or single-character-only) match covers.
GRAM_STRENGTH = 0.7
CHAR_STRENGTH = 0.4
RERANK = 30
# units whose matches an index remembers (UnitMemo): about 12 MB on 5 000 records (a unit
# is ~24 bytes per record it matches; most words are in few records)
UNIT_MEMO_SIZE = 1024
EXACT_BONUS = 1000.0
MIN_COVERAGE = 0.6
MAX_RUNNER_UP = 0.85
# A referral the question does not name by a keyword answers only when none of our own
# records does and its title names at least this share of the question (score._own_first).
REFERRAL_TITLE_FIT = 0.5


@dataclass(frozen=True)
class UnitMatch:
    """What one unit matches, whatever question it comes from: the records it matches
    (ascending ids), each one's best value and match strength, the unit's weight and
    whether the records use its word. Read-only: shared by concurrent searches."""

    docs: np.ndarray
    best: np.ndarray
    strength: np.ndarray
    weight: float
    known: bool


def match_unit(tables: Tables, unit: Unit) -> UnitMatch:
    """Score one unit against every record: its words, then its n-grams where they do better
    (for a word the records never use, its single characters)."""
    best = np.zeros(len(tables.kinds))
    strength = np.zeros(len(tables.kinds))
    known = _score_words(tables, unit, best, strength)
    if unit.grams:
        _fallback(tables, unit, unit.grams, GRAM_FACTOR, GRAM_STRENGTH, best, strength)
    if not known and len(unit.word) > 1:
        chars = tuple(c for c in unit.word if is_cjk(c))
        _fallback(tables, unit, chars, CHAR_FACTOR, CHAR_STRENGTH, best, strength)
    docs = np.flatnonzero((best > 0.0) | (strength > 0.0))
    match = UnitMatch(docs, best[docs], strength[docs],
                      0.0 if unit.optional else unit.scale * _unit_idf(tables, unit), known)
    for array in (match.docs, match.best, match.strength):
        array.flags.writeable = False
    return match


class UnitMemo:
    """Per index: what the most recently asked units match (their records and title fits).

    Questions differ, their words repeat: a unit is scored against the records once, not
    once per question. The results are immutable, so threads share them without locking.
    """

    def __init__(self, tables: Tables, size: int = UNIT_MEMO_SIZE):
        """Remember up to `size` units' matches and title fits for these tables."""
        self.match = functools.lru_cache(maxsize=size)(functools.partial(match_unit, tables))
        self.titles = TitleMemo(tables, size)


class _Scorer:
    """The state of scoring one query: dense score and per-unit strength vectors."""

    def __init__(self, tables: Tables, query: Query, memo: UnitMemo):
        """Prepare to score the query against the tables."""
        self.tables = tables
        self.query = query
        self.memo = memo
        self.size = len(tables.kinds)
        # doc id -> score; 0.0 where the question shares nothing with the record
        self.scores = np.zeros(self.size)
        # per unit: doc id -> match strength (0: none); the query's own, rerank adds to them
        self.strengths: list[np.ndarray] = []
        self.weights: list[float] = []
        self.known: list[bool] = []  # per unit: whether the records use the word at all

    def run(self) -> None:
        """Score every unit, then the bigrams that join adjacent words."""
        for unit in self.query.units:
            match = self.memo.match(unit)
            self.scores[match.docs] += match.best
            strength = np.zeros(self.size)
            strength[match.docs] = match.strength
            self.strengths.append(strength)
            self.weights.append(match.weight)
            self.known.append(match.known)
        grams = self.tables.grams
        for gram in self.query.junctions:
            posting = grams.get(gram)
            if posting is not None:
                docs, sats = grams.postings(posting)
                self.scores[docs] += (JUNCTION_WEIGHT * posting.idf) * sats


def _score_words(tables: Tables, unit: Unit, best: np.ndarray, strength: np.ndarray) -> bool:
    """Best word-channel value per document; True if any strong alternative occurs.

    Alternatives come strongest first: a document's strength is the first one it has.
    """
    words = tables.words
    concept = tables.concept_idf.get(unit.word)
    known = fresh = False
    for term, factor in unit.alts:
        posting = words.get(term)
        if posting is None:
            continue
        known = known or factor >= COLLOQUIAL_FACTOR
        idf = concept if concept is not None and factor >= SYNONYM_FACTOR else posting.idf
        weight = factor * idf * unit.scale
        docs, sats = words.postings(posting)
        if not fresh:  # the first alternative found: nothing to compare with yet
            best[docs] = weight * sats
            strength[docs] = factor
            fresh = True
            continue
        best[docs] = np.maximum(best[docs], weight * sats)
        had = strength[docs]
        strength[docs] = np.where(had > 0.0, had, factor)
    return known


def _fallback(tables: Tables, unit: Unit, grams: Sequence[str], factor: float, cover: float,
              best: np.ndarray, strength: np.ndarray) -> None:
    """n-gram stand-in for a unit where it beats the word channel."""
    if not grams:
        return
    channel: Channel = tables.grams
    values = np.zeros(len(best))
    hits = np.zeros(len(best))
    for gram in grams:
        posting = channel.get(gram)
        if posting is None:
            continue
        weight = factor * unit.scale * posting.idf / len(grams)
        docs, sats = channel.postings(posting)
        values[docs] += weight * sats
        hits[docs] += 1.0
    np.maximum(best, values, out=best)
    np.maximum(strength, (cover / len(grams)) * hits, out=strength)


def _unit_idf(tables: Tables, unit: Unit) -> float:
    """The idf a unit weighs with: its concept's, or the largest if the word is unknown."""
    concept = tables.concept_idf.get(unit.word)
    if concept is not None:
        return concept
    words = tables.words
    known = [words[t].idf for t, f in unit.alts if f >= COLLOQUIAL_FACTOR and t in words]
    # An unknown word is as informative as the rarest one: an off-topic word must weigh.
    return max(known) if known else tables.max_idf


@dataclass(frozen=True)
class Scored:
    """The relevant records, best first; whether the first is clearly right; transport."""

    ranked: list[tuple[int, float]]
    confident: bool
    transport: bool


def score_query(tables: Tables, query: Query, exact: set[int], limit: int,
                memo: UnitMemo | None = None) -> Scored:
    """Rank the records, keep the relevant ones (outcome.py), decide confidence.

    ``memo`` is the index's UnitMemo (a fresh one, remembering nothing, if not given).
    """
    memo = UnitMemo(tables, 0) if memo is None else memo
    scorer = _Scorer(tables, query, memo)
    scorer.run()
    if not query.account:  # records about the account itself answer only questions about it
        scorer.scores[list(tables.account)] = 0.0
    elif _only_about_account(query):  # "你们能做什么": the records about the account answer
        exact = exact | tables.account
    candidates = _top(scorer.scores, RERANK)
    final, cover, titles = rerank(tables, query, scorer.weights, scorer.strengths, candidates,
                                  memo.titles)
    strengths = _sparse(scorer.strengths, [doc_id for doc_id, _ in candidates] + sorted(exact))
    for doc_id in exact:
        final[doc_id] = final.get(doc_id, 0.0) + EXACT_BONUS
    ranked = heapq.nlargest(max(limit, 2), final.items(), key=_order)
    if exact:
        confident = len(exact) == 1 and ranked[0][0] in exact
    else:
        confident = _confident(ranked, cover)
    evidence = Evidence(strengths, scorer.weights, scorer.known, cover, titles, exact,
                        tables.documents)
    kept, transport = relevant(query, ranked, evidence)
    own = _own_first(tables, query, kept, evidence)
    if len(own) < len(kept):  # a referral the question did not ask about stepped aside
        kept = own
        confident = bool(kept) and (ranked[0][0] in exact if exact else _confident(kept, cover))
    elif not kept or kept[0][0] != ranked[0][0]:
        confident = False
    return Scored(kept[:limit], confident, transport)


def _top(scores: np.ndarray, count: int) -> list[tuple[int, float]]:
    """The `count` best (doc id, score) pairs with a score, best first, earlier doc first
    among equal scores (as heapq.nlargest with _order)."""
    ids = np.flatnonzero(scores > 0.0)
    values = scores[ids]
    if len(ids) > count:
        cutoff = np.partition(values, len(values) - count)[len(values) - count]
        keep = values >= cutoff  # every tie at the cut-off, ordered below
        ids, values = ids[keep], values[keep]
    order = np.lexsort((ids, -values))[:count]
    return list(zip(ids[order].tolist(), values[order].tolist(), strict=True))


def _sparse(strengths: Sequence[np.ndarray], doc_ids: Iterable[int]) -> list[dict[int, float]]:
    """Per unit: doc id -> strength, for the given documents where it is not zero."""
    ids = list(dict.fromkeys(doc_ids))
    if not ids:
        return [{} for _ in strengths]
    index = np.array(ids, dtype=np.intp)
    return [{doc_id: value for doc_id, value in zip(ids, strength[index].tolist(), strict=True)
             if value > 0.0} for strength in strengths]


def _own_first(tables: Tables, query: Query, kept: list[tuple[int, float]],
               evidence: Evidence) -> list[tuple[int, float]]:
    """The relevant records without the referrals whose topic (keywords) the question does
    not name: another agency's record that merely shares words ("车票" inside 火车票,
    "交通" and "热线" in the catch-all, 电动 in 电动汽车) must not answer a question our
    records answer, nor one its title barely names (lexicon.REFERRAL_MARK)."""
    said = {term for unit in query.units for term, factor in unit.alts
            if factor >= SYNONYM_FACTOR}
    ours = any(doc_id not in tables.referral for doc_id, _ in kept)
    return [(doc_id, score) for doc_id, score in kept
            if doc_id not in tables.referral or doc_id in evidence.exact
            or any(k in said or k in query.text for k in tables.referral[doc_id])
            or (not ours and evidence.titles.get(doc_id, 0.0) >= REFERRAL_TITLE_FIT)]


def _only_about_account(query: Query) -> bool:
    """Whether the question asks what the account is or does, and nothing else."""
    return query.account and all(query.units[i].word in ACCOUNT_PHRASES
                                 for i in meaningful_units(query))


def _order(item: tuple[int, float]) -> tuple[float, int]:
    """Sort key: higher score first, then earlier document (deterministic ties)."""
    return item[1], -item[0]


def _confident(ranked: list[tuple[int, float]], cover: dict[int, float]) -> bool:
    """Whether the top hit covers the question and clearly beats the runner-up."""
    if not ranked or ranked[0][1] <= 0.0:
        return False
    if len(ranked) > 1 and ranked[1][1] > MAX_RUNNER_UP * ranked[0][1]:
        return False
    return cover.get(ranked[0][0], 0.0) >= MIN_COVERAGE
