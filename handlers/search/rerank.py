"""Second stage of ranking: re-weigh the best candidates by how well they fit the question.

BM25 sums evidence term by term, so a record that repeats one word of the question can
beat the record that matches all of it. The best candidates are therefore multiplied by
- coverage: the share of the question's weight the record matches (a soft AND);
- title fit: the share of the question's concepts found in the title (synonyms
  included; abbreviations such as 汽车站 for 汽车客运中心站 or 管养 for 管理养护 too),
  and the share of its character bigrams found there (quoting a title verbatim);
- a kind boost when the question's form points to a record kind (电话 -> hotline);
  a word naming a kind (政策, 电话) counts as matched by every record of that kind.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

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


def rerank(
    tables: Tables,
    query: Query,
    weights: Sequence[float],
    strengths: Sequence[dict[int, float]],
    candidates: Sequence[tuple[int, float]],
) -> tuple[dict[int, float], dict[int, float], dict[int, float]]:
    """Final scores, coverages and title fits of the candidates.

    The title fit returned is the share of the question's concepts named by the title or,
    if better, by what the record says it is about (a hotline's scope); only the title's
    own fit weighs in the score.
    """
    patterns = [_abbreviation(unit) for unit in query.units]
    concepts = _concept_weights(tables, query, patterns)  # per query, not per candidate
    gram_weights = _gram_weights(tables, query.bigrams)
    final: dict[int, float] = {}
    cover: dict[int, float] = {}
    titles: dict[int, float] = {}
    total = sum(weights)
    kinds = [KIND_WORDS.get(unit.word) for unit in query.units]
    for doc_id, score in candidates:
        title_text = tables.title_text[doc_id]
        for index, kind in enumerate(kinds):
            # a word naming a record kind ("有什么扶持政策") is what a record of that kind is
            if kind is not None and tables.kinds[doc_id] == kind:
                strengths[index][doc_id] = 1.0
        for index, pattern in enumerate(patterns):
            got = strengths[index].get(doc_id, 0.0)
            if pattern is not None and got < ABBREV_STRENGTH and pattern.search(title_text):
                strengths[index][doc_id] = ABBREV_STRENGTH
                score += (ABBREV_STRENGTH - got) * weights[index] * TITLE_SATURATION
        pairs = zip(weights, strengths, strict=True)
        matched = sum(w * min(1.0, s.get(doc_id, 0.0)) for w, s in pairs)
        cover[doc_id] = matched / total if total > 0.0 else 0.0
        score *= COVERAGE_FLOOR + (1.0 - COVERAGE_FLOOR) * cover[doc_id]
        fit = _title_concepts(tables.title_terms[doc_id], tables.title_text[doc_id], concepts)
        score *= 1.0 + TITLE_CONCEPT_BONUS * fit
        about = tables.about.get(doc_id)
        titles[doc_id] = max(fit, _title_concepts(*about, concepts)) if about else fit
        score *= 1.0 + TITLE_TEXT_BONUS * _title_overlap(tables, gram_weights, doc_id)
        score *= query.boosts.get(tables.kinds[doc_id], 1.0)
        final[doc_id] = score
    return final, cover, titles


def _abbreviation(unit: Unit) -> re.Pattern | None:
    """A pattern finding the unit's word as an abbreviation (汽车站 in 汽车客运中心站)."""
    word = unit.word
    if unit.optional or not 2 <= len(word) <= 4 or not is_cjk(word):
        return None
    return re.compile(f".{{0,{ABBREV_GAP}}}".join(map(re.escape, word)))


def _concept_weights(tables: Tables, query: Query, patterns: Sequence[re.Pattern | None]
                     ) -> list[tuple[Unit, re.Pattern | None, float]]:
    """The question's required concepts with their idf weights."""
    return [(unit, pattern, unit.scale * _idf(tables, unit.word))
            for unit, pattern in zip(query.units, patterns, strict=True) if not unit.optional]


def _title_concepts(terms: Sequence[str], title: str,
                    concepts: Sequence[tuple[Unit, re.Pattern | None, float]]) -> float:
    """Share of the question's concepts (idf-weighted) that a title (its terms) names."""
    total = matched = 0.0
    for unit, pattern, weight in concepts:
        total += weight
        best = max((f for t, f in unit.alts if t in terms), default=0.0)
        if best < 1.0 and unit.grams:
            share = sum(g in title for g in unit.grams) / len(unit.grams)
            best = max(best, GRAM_SHARE * share if len(unit.grams) > 1 else share)
        if best < ABBREV_STRENGTH and pattern is not None:
            if pattern.search(title):
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


def _gram_weights(tables: Tables, bigrams: frozenset[str]) -> list[tuple[str, float]]:
    """The question's character bigrams with their idf weights."""
    grams = tables.grams
    out = []
    for gram in bigrams:
        posting = grams.get(gram)
        out.append((gram, posting.idf if posting is not None else tables.max_idf))
    return out


def _title_overlap(tables: Tables, gram_weights: Sequence[tuple[str, float]],
                   doc_id: int) -> float:
    """Share of the question's character bigrams (weighted by idf) in the record's title."""
    title = tables.title_text[doc_id]
    total = sum(w for _, w in gram_weights)
    matched = sum(w for gram, w in gram_weights if gram in title)
    return matched / total if total else 0.0
