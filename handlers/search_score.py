"""Scoring a parsed question against the index, and deciding whether to be confident.

Score = sum over units of the best BM25F contribution among the unit's alternatives
(the word, its synonyms, the dictionary words inside it), plus a light n-gram channel
that catches out-of-vocabulary words, segmentation mismatches and typos, times a small
boost for record kinds the question hints at; an exact identifier adds a bonus that
puts its record first. Confidence needs the top record to cover most of the question's
weight (unmatched rare words weigh the most: "今天吃什么" covers nothing) and to
clearly beat the runner-up.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

from handlers.search_build import Posting, Tables
from handlers.search_query import SYNONYM_FACTOR, Query, Unit

K1 = 1.2
GRAM_WEIGHT = 0.3
# n-grams found in more documents than this share carry no information; skip them.
MAX_GRAM_DF_SHARE = 0.3
KIND_BOOST = 1.2
EXACT_BONUS = 1000.0
# How much of a unit an n-gram-only match counts for when judging coverage.
GRAM_STRENGTH = 0.7
MIN_COVERAGE = 0.6
MAX_RUNNER_UP = 0.85


def score_query(
    tables: Tables, query: Query, exact: set[int], limit: int
) -> tuple[list[tuple[int, float]], bool]:
    """Return the best (doc id, score) pairs and whether the first is clearly right."""
    scores: dict[int, float] = {}
    strengths = [_score_unit(tables.words, unit, scores) for unit in query.units]
    _score_grams(tables, query.grams, scores)
    if query.kinds:
        for doc_id in scores:
            if tables.kinds[doc_id] in query.kinds:
                scores[doc_id] *= KIND_BOOST
    for doc_id in exact:
        scores[doc_id] = scores.get(doc_id, 0.0) + EXACT_BONUS
    ranked = heapq.nlargest(limit, scores.items(), key=lambda item: (item[1], -item[0]))
    if exact:
        confident = len(exact) == 1 and bool(ranked) and ranked[0][0] in exact
    else:
        confident = _confident(tables, query, ranked, strengths)
    return ranked, confident


def _saturate(tf: float) -> float:
    """BM25 term-frequency saturation."""
    return tf * (K1 + 1.0) / (tf + K1)


def _score_unit(words: dict[str, Posting], unit: Unit, scores: dict[int, float]) -> dict:
    """Add a unit's best alternative per document to scores; return match strengths."""
    best: dict[int, float] = {}
    strength: dict[int, float] = {}
    for term, factor in unit.alts:
        posting = words.get(term)
        if posting is None:
            continue
        weight = factor * posting.idf * unit.scale
        for doc_id, tf in zip(posting.docs, posting.tfs, strict=True):
            value = weight * _saturate(tf)
            if value > best.get(doc_id, 0.0):
                best[doc_id] = value
            if factor > strength.get(doc_id, 0.0):
                strength[doc_id] = factor
    for doc_id, value in best.items():
        scores[doc_id] = scores.get(doc_id, 0.0) + value
    return strength


def _score_grams(tables: Tables, grams: Sequence[str], scores: dict[int, float]) -> None:
    """Add the n-gram fallback channel to scores."""
    limit = MAX_GRAM_DF_SHARE * len(tables.kinds)
    for gram in grams:
        posting = tables.grams.get(gram)
        if posting is None or len(posting.docs) > max(limit, 1):
            continue
        weight = GRAM_WEIGHT * posting.idf
        for doc_id, tf in zip(posting.docs, posting.tfs, strict=True):
            scores[doc_id] = scores.get(doc_id, 0.0) + weight * _saturate(tf)


def _confident(
    tables: Tables, query: Query, ranked: list[tuple[int, float]], strengths: list[dict]
) -> bool:
    """Whether the top hit covers the question and clearly beats the runner-up."""
    if not ranked or ranked[0][1] <= 0.0:
        return False
    if len(ranked) > 1 and ranked[1][1] > MAX_RUNNER_UP * ranked[0][1]:
        return False
    return coverage(tables, query, ranked[0][0], strengths) >= MIN_COVERAGE


def coverage(tables: Tables, query: Query, doc_id: int, strengths: list[dict]) -> float:
    """Share of the question's required weight that the document matches (0..1)."""
    total = matched = 0.0
    for unit, strength in zip(query.units, strengths, strict=True):
        if unit.optional:
            continue
        weight = unit.scale * _unit_idf(tables, unit)
        got = strength.get(doc_id, 0.0)
        if got < SYNONYM_FACTOR and unit.grams:
            hits = sum(1 for g in unit.grams if _has_gram(tables.grams.get(g), doc_id))
            got = max(got, GRAM_STRENGTH * hits / len(unit.grams))
        total += weight
        matched += weight * min(got, 1.0)
    return matched / total if total > 0.0 else 0.0


def _unit_idf(tables: Tables, unit: Unit) -> float:
    """The idf a unit weighs with: its word's (or synonym's), or the largest if unknown."""
    words = tables.words
    known = [words[t].idf for t, f in unit.alts if f >= SYNONYM_FACTOR and t in words]
    # An unknown word is as informative as the rarest one: an off-topic word must weigh.
    return max(known) if known else tables.max_idf


def _has_gram(posting: Posting | None, doc_id: int) -> bool:
    """Whether an n-gram posting list contains the document."""
    return posting is not None and doc_id in posting.docs
