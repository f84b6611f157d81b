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
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from handlers.search.build import Tables
from handlers.search.lexicon import ACCOUNT_PHRASES
from handlers.search.outcome import Evidence, meaningful_units, relevant
from handlers.search.query import COLLOQUIAL_FACTOR, SYNONYM_FACTOR, Query, Unit
from handlers.search.rerank import rerank
from handlers.search.text import is_cjk

# Value of an n-gram-only match relative to a word match, and of a single-character one.
GRAM_FACTOR = 0.6
CHAR_FACTOR = 0.3
JUNCTION_WEIGHT = 0.15
# How much of a unit an n-gram-only (or single-character-only) match covers.
GRAM_STRENGTH = 0.7
CHAR_STRENGTH = 0.4
RERANK = 30
EXACT_BONUS = 1000.0
MIN_COVERAGE = 0.6
MAX_RUNNER_UP = 0.85
# A referral the question does not name by a keyword answers only when none of our own
# records does and its title names at least this share of the question (score._own_first).
REFERRAL_TITLE_FIT = 0.5


class _Scorer:
    """The state of scoring one query: scores and each unit's match strength per doc."""

    def __init__(self, tables: Tables, query: Query):
        """Prepare to score the query against the tables."""
        self.tables = tables
        self.query = query
        self.scores: dict[int, float] = {}
        self.strengths: list[dict[int, float]] = []
        self.weights: list[float] = []
        self.known: list[bool] = []  # per unit: whether the records use the word at all

    def run(self) -> None:
        """Score every unit, then the bigrams that join adjacent words."""
        for unit in self.query.units:
            best: dict[int, float] = {}
            strength: dict[int, float] = {}
            known = self._score_words(unit, best, strength)
            if unit.grams:
                self._fallback(unit, unit.grams, GRAM_FACTOR, GRAM_STRENGTH, best, strength)
            if not known and len(unit.word) > 1:
                chars = tuple(c for c in unit.word if is_cjk(c))
                self._fallback(unit, chars, CHAR_FACTOR, CHAR_STRENGTH, best, strength)
            for doc_id, value in best.items():
                self.scores[doc_id] = self.scores.get(doc_id, 0.0) + value
            self.strengths.append(strength)
            self.weights.append(0.0 if unit.optional else unit.scale * self._unit_idf(unit))
            self.known.append(known)
        for gram in self.query.junctions:
            posting = self.tables.grams.get(gram)
            if posting is not None:
                weight = JUNCTION_WEIGHT * posting.idf
                for doc_id, sat in zip(posting.docs, posting.sats, strict=True):
                    self.scores[doc_id] = self.scores.get(doc_id, 0.0) + weight * sat

    def _score_words(self, unit: Unit, best: dict, strength: dict) -> bool:
        """Best word-channel value per document; True if any strong alternative occurs."""
        concept = self.tables.concept_idf.get(unit.word)
        known = False
        for term, factor in unit.alts:
            posting = self.tables.words.get(term)
            if posting is None:
                continue
            known = known or factor >= COLLOQUIAL_FACTOR
            idf = concept if concept is not None and factor >= SYNONYM_FACTOR else posting.idf
            weight = factor * idf * unit.scale
            keep = strength.setdefault  # alternatives come strongest first
            for doc_id, sat in zip(posting.docs, posting.sats, strict=True):
                value = weight * sat
                if value > best.get(doc_id, 0.0):
                    best[doc_id] = value
                keep(doc_id, factor)
        return known

    def _fallback(self, unit: Unit, grams: Sequence[str], factor: float, cover: float,
                  best: dict, strength: dict) -> None:
        """n-gram stand-in for a unit where it beats the word channel."""
        if not grams:
            return
        values: dict[int, float] = {}
        hits: Counter[int] = Counter()
        for gram in grams:
            posting = self.tables.grams.get(gram)
            if posting is None:
                continue
            weight = factor * unit.scale * posting.idf / len(grams)
            get = values.get
            for doc_id, sat in zip(posting.docs, posting.sats, strict=True):
                values[doc_id] = get(doc_id, 0.0) + weight * sat
            hits.update(posting.docs)
        share = cover / len(grams)
        for doc_id, value in values.items():
            if value > best.get(doc_id, 0.0):
                best[doc_id] = value
            if share * hits[doc_id] > strength.get(doc_id, 0.0):
                strength[doc_id] = share * hits[doc_id]

    def _unit_idf(self, unit: Unit) -> float:
        """The idf a unit weighs with: its concept's, or the largest if the word is unknown."""
        concept = self.tables.concept_idf.get(unit.word)
        if concept is not None:
            return concept
        words = self.tables.words
        known = [words[t].idf for t, f in unit.alts if f >= COLLOQUIAL_FACTOR and t in words]
        # An unknown word is as informative as the rarest one: an off-topic word must weigh.
        return max(known) if known else self.tables.max_idf


@dataclass(frozen=True)
class Scored:
    """The relevant records, best first; whether the first is clearly right; transport."""

    ranked: list[tuple[int, float]]
    confident: bool
    transport: bool


def score_query(tables: Tables, query: Query, exact: set[int], limit: int) -> Scored:
    """Rank the records, keep the relevant ones (outcome.py), decide confidence."""
    scorer = _Scorer(tables, query)
    scorer.run()
    if not query.account:  # records about the account itself answer only questions about it
        for doc_id in tables.account:
            scorer.scores.pop(doc_id, None)
    elif _only_about_account(query):  # "你们能做什么": the records about the account answer
        exact = exact | tables.account
    candidates = heapq.nlargest(RERANK, scorer.scores.items(), key=_order)
    final, cover, titles = rerank(tables, query, scorer.weights, scorer.strengths, candidates)
    for doc_id in exact:
        final[doc_id] = final.get(doc_id, 0.0) + EXACT_BONUS
    ranked = heapq.nlargest(max(limit, 2), final.items(), key=_order)
    if exact:
        confident = len(exact) == 1 and ranked[0][0] in exact
    else:
        confident = _confident(ranked, cover)
    evidence = Evidence(scorer.strengths, scorer.weights, scorer.known, cover, titles, exact,
                        tables.documents)
    kept, transport = relevant(query, ranked, evidence)
    own = _own_first(tables, query, kept, evidence)
    if len(own) < len(kept):  # a referral the question did not ask about stepped aside
        kept = own
        confident = bool(kept) and (ranked[0][0] in exact if exact else _confident(kept, cover))
    elif not kept or kept[0][0] != ranked[0][0]:
        confident = False
    return Scored(kept[:limit], confident, transport)


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
