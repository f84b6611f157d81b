"""Second stage of ranking: re-weigh the best candidates by how well they fit the question.

BM25 sums evidence term by term, so a record that repeats one word of the question can
beat the record that matches all of it. The best candidates are therefore multiplied by
- coverage: the share of the question's weight the record matches (a soft AND);
- title fit: the share of the question's concepts found in the title (synonyms
  included; abbreviations such as 汽车站 for 汽车客运中心站 or 管养 for 管理养护 too),
  and the share of its character bigrams found there (quoting a title verbatim);
- a kind boost when the question's form points to a record kind (电话 -> hotline);
  a word naming a kind (政策, 电话) counts as matched by every record of that kind.
All candidates are weighed at once as numpy vectors; how the titles name a unit (and
which hold it abbreviated) is looked up in inverted title lists (build.Tables) and
remembered per index (TitleMemo), not checked title by title.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from typing import NamedTuple

import numpy as np

from handlers.search.build import Tables
from handlers.search.lexicon import KIND_WORDS
from handlers.search.query import Query, Unit
from handlers.search.text import is_cjk

# score * (COVERAGE_FLOOR + (1 - COVERAGE_FLOOR) * coverage)
COVERAGE_FLOOR = 0.35
TITLE_CONCEPT_BONUS = 1.0
TITLE_TEXT_BONUS = 0.5
# Strength of a match by abbreviation (the word's characters in order, a few apart).
ABBREV_STRENGTH = 0.7
ABBREV_GAP = 4
# What a match in a title is typically worth after BM25 saturation (per unit of idf).
TITLE_SATURATION = 1.5
GRAM_SHARE = 0.7


class TitleMemo:
    """Per index: how the titles name the most recently asked units (title_named) and which
    titles hold their words abbreviated (abbreviated). Immutable results: threads share
    them without locking."""

    def __init__(self, tables: Tables, size: int):
        """Remember up to `size` units' title matches for these tables."""
        self.named = functools.lru_cache(maxsize=size)(functools.partial(title_named, tables))
        self.abbreviated = functools.lru_cache(maxsize=size)(
            functools.partial(abbreviated, tables))


def rerank(
    tables: Tables,
    query: Query,
    weights: Sequence[float],
    strengths: Sequence[np.ndarray],
    candidates: Sequence[tuple[int, float]],
    memo: TitleMemo | None = None,
) -> tuple[dict[int, float], dict[int, float], dict[int, float]]:
    """Final scores, coverages and title fits of the candidates.

    ``strengths`` are the query's own dense per-unit vectors (score._Scorer); the
    candidates' entries are updated (a kind word, an abbreviation in the title). The title
    fit returned is the share of the question's concepts named by the title or, if better,
    by what the record says it is about (a hotline's scope); only the title's own fit
    weighs in the score. All candidates are weighed at once, as numpy vectors; ``memo`` is
    the index's TitleMemo (a fresh one remembering nothing if not given).
    """
    if not candidates:
        return {}, {}, {}
    memo = TitleMemo(tables, 0) if memo is None else memo
    ids = [doc_id for doc_id, _ in candidates]
    cand = np.array(ids, dtype=np.intp)
    score = np.array([value for _, value in candidates])
    kinds = [tables.kinds[doc_id] for doc_id in ids]
    for index, unit in enumerate(query.units):
        if unit.word in KIND_WORDS:
            # a word naming a record kind ("有什么扶持政策") is what a record of that kind is
            same = np.array([kind == KIND_WORDS[unit.word] for kind in kinds])
            strengths[index][cand[same]] = 1.0
    # per unit: which candidates' titles hold its word abbreviated (None: none does)
    shortened = [_shortened(tables, memo, unit, cand) for unit in query.units]
    for index, found in enumerate(shortened):
        if found is not None:
            score += _abbreviations(found, strengths[index], cand) * weights[index] * (
                TITLE_SATURATION)
    cover = _coverage(weights, strengths, cand)
    score *= COVERAGE_FLOOR + (1.0 - COVERAGE_FLOOR) * cover
    concepts = _concept_weights(tables, query, shortened)  # per query, not per candidate
    fit = _title_fits(memo, concepts, cand, len(tables.kinds))
    score *= 1.0 + TITLE_CONCEPT_BONUS * fit
    score *= 1.0 + TITLE_TEXT_BONUS * _title_overlaps(tables, query.bigrams, cand)
    if query.boosts:
        score *= np.array([query.boosts.get(kind, 1.0) for kind in kinds])
    titles = dict(zip(ids, fit.tolist(), strict=True))
    for doc_id in ids:
        about = tables.about.get(doc_id)
        if about:
            titles[doc_id] = max(titles[doc_id], _title_concepts(*about, concepts))
    return (dict(zip(ids, score.tolist(), strict=True)),
            dict(zip(ids, cover.tolist(), strict=True)), titles)


def abbreviated(tables: Tables, word: str) -> np.ndarray:
    """The documents whose title (with keywords) holds the word as an abbreviation
    (_abbreviation's pattern), ascending. Read-only."""
    pattern = _abbreviation_pattern(word)
    titles = tables.title_text
    docs = np.array([d for d in _spelling(tables, word) if pattern.search(titles[d])],
                    dtype=np.intp)
    docs.flags.writeable = False
    return docs


def _spelling(tables: Tables, word: str) -> list[int]:
    """The documents whose title has every character of the word (the only ones an
    abbreviation pattern can match), ascending."""
    chars = set(word)
    count = np.zeros(len(tables.kinds), dtype=np.intp)
    for char in chars:
        docs = tables.title_grams.get(char)
        if docs is None:
            return []
        count[docs] += 1
    return np.flatnonzero(count == len(chars)).tolist()


def _shortened(tables: Tables, memo: TitleMemo, unit: Unit, cand: np.ndarray
               ) -> np.ndarray | None:
    """Per candidate, whether its title holds the unit's word abbreviated; None if none does
    (or the word is no abbreviation, _abbreviation)."""
    if _abbreviation(unit) is None:
        return None
    docs = memo.abbreviated(unit.word)
    if not len(docs):
        return None
    mask = np.zeros(len(tables.kinds), dtype=bool)
    mask[docs] = True
    found = mask[cand]
    return found if found.any() else None


def _abbreviations(found: np.ndarray, strength: np.ndarray, cand: np.ndarray) -> np.ndarray:
    """Per candidate, how much stronger the unit's match gets from its word abbreviated in
    the title (0 where it is not, or matched as well already); strengths raised to match."""
    got = strength[cand]
    found = found & (got < ABBREV_STRENGTH)
    strength[cand[found]] = ABBREV_STRENGTH
    return np.where(found, ABBREV_STRENGTH - got, 0.0)


def _coverage(weights: Sequence[float], strengths: Sequence[np.ndarray], cand: np.ndarray
              ) -> np.ndarray:
    """Per candidate, the share of the question's weight it matches."""
    total = sum(weights)
    matched = np.zeros(len(cand))
    for weight, strength in zip(weights, strengths, strict=True):
        if weight != 0.0:  # an optional unit weighs 0 and adds nothing
            matched += weight * np.minimum(1.0, strength[cand])
    return matched / total if total > 0.0 else matched * 0.0


def _abbreviation(unit: Unit) -> re.Pattern | None:
    """A pattern finding the unit's word as an abbreviation (汽车站 in 汽车客运中心站)."""
    word = unit.word
    if unit.optional or not 2 <= len(word) <= 4 or not is_cjk(word):
        return None
    return _abbreviation_pattern(word)


@functools.lru_cache(maxsize=4096)
def _abbreviation_pattern(word: str) -> re.Pattern:
    """The compiled abbreviation pattern of a word (compiled once per word, not per query)."""
    return re.compile(f".{{0,{ABBREV_GAP}}}".join(map(re.escape, word)))


class _Concept(NamedTuple):
    """A required concept of the question, as title fits read it."""

    unit: Unit
    alts: tuple[tuple[str, float], ...]  # strongest first
    grams: tuple[str, ...]
    pattern: re.Pattern | None
    weight: float
    # per candidate: whether its title holds the word abbreviated (None: no candidate's does)
    short: np.ndarray | None


def _concept_weights(tables: Tables, query: Query, shortened: Sequence[np.ndarray | None]
                     ) -> list[_Concept]:
    """The question's required concepts with their idf weights."""
    return [_Concept(unit, _strongest_first(unit.alts), unit.grams, _abbreviation(unit),
                     unit.scale * _idf(tables, unit.word), short)
            for unit, short in zip(query.units, shortened, strict=True) if not unit.optional]


def _strongest_first(alts: Sequence[tuple[str, float]]) -> tuple[tuple[str, float], ...]:
    """A unit's alternatives, strongest first (as query.py makes them)."""
    return tuple(sorted(alts, key=lambda alt: -alt[1]))


def title_named(tables: Tables, unit: Unit) -> tuple[np.ndarray, np.ndarray]:
    """How well each title names the unit, before abbreviations: the strongest alternative
    among its terms, or the share of the unit's n-grams it holds if that is more; as
    (document ids, values) of the titles naming it at all. Read-only."""
    named = np.zeros(len(tables.kinds))
    for term, factor in reversed(_strongest_first(unit.alts)):  # the strongest is kept
        docs = tables.title_words.get(term)
        if docs is not None:
            named[docs] = factor
    grams = unit.grams
    if grams:
        hits = np.zeros(len(tables.kinds))
        for gram in grams:
            docs = tables.title_grams.get(gram)
            if docs is not None:
                hits[docs] += 1.0
        share = hits / len(grams)
        # a title naming the word itself (1.0) is never beaten by its grams
        named = np.maximum(named, GRAM_SHARE * share if len(grams) > 1 else share)
    docs = np.flatnonzero(named)
    values = named[docs]
    docs.flags.writeable = values.flags.writeable = False
    return docs, values


def _title_fits(memo: TitleMemo, concepts: Sequence[_Concept], cand: np.ndarray, size: int
                ) -> np.ndarray:
    """_title_concepts for every candidate at once (title_named, then abbreviations)."""
    total = 0.0
    matched = np.zeros(len(cand))
    for unit, _, _, _, weight, short in concepts:
        total += weight
        docs, values = memo.named(unit)
        best = np.zeros(size)
        best[docs] = values
        best = best[cand]
        if short is not None:
            best[short & (best < ABBREV_STRENGTH)] = ABBREV_STRENGTH
        matched += weight * best
    return matched / total if total > 0.0 else matched * 0.0


def _title_concepts(terms: AbstractSet[str], title: str, concepts: Sequence[_Concept]
                    ) -> float:
    """Share of the question's concepts (idf-weighted) that a title (its terms) names."""
    total = matched = 0.0
    for _, alts, grams, pattern, weight, _ in concepts:
        total += weight
        best = 0.0
        for term, factor in alts:  # strongest first: the first one named is the best
            if term in terms:
                best = factor
                break
        if best < 1.0 and grams:
            share = sum(1 for g in grams if g in title) / len(grams)
            best = max(best, GRAM_SHARE * share if len(grams) > 1 else share)
        if best < ABBREV_STRENGTH and pattern is not None and pattern.search(title):
            best = ABBREV_STRENGTH
        matched += weight * best
    return matched / total if total > 0.0 else 0.0


def _idf(tables: Tables, word: str) -> float:
    """The idf of a word (its synonym concept's if it has one), or the largest."""
    concept = tables.concept_idf.get(word)
    if concept is not None:
        return concept
    posting = tables.words.get(word)
    return posting.idf if posting is not None else tables.max_idf


def _title_overlaps(tables: Tables, bigrams: frozenset[str], cand: np.ndarray
                    ) -> np.ndarray:
    """Per candidate, the share of the question's character bigrams (weighted by idf) in
    its title."""
    grams = tables.grams
    total = 0.0
    matched = np.zeros(len(tables.kinds))
    for gram in bigrams:
        posting = grams.get(gram)
        weight = posting.idf if posting is not None else tables.max_idf
        total += weight
        docs = tables.title_grams.get(gram)
        if docs is not None:
            matched[docs] += weight
    return matched[cand] / total if total else np.zeros(len(cand))
