"""Turning a citizen's question into weighted query units for the index.

A question such as "请问公交卡丢了去哪补呀" becomes: filler removed ("请问"), colloquial
question phrases mapped to the words records use ("去哪" -> 地址/窗口/办理, optional),
the rest cut by jieba into units ("公交卡", "丢", "补"), each with its alternatives
(the word itself, its synonyms, the dictionary words inside it) and its character
n-grams for the fallback channel.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from handlers.search_text import (
    FILLERS,
    MAX_RAW_CHARS,
    QUESTION_RULES,
    WEAK_WORDS,
    bigrams,
    canon_id,
    cjk_runs,
    cut_words,
    is_cjk,
    normalize,
)

# Factors of a unit's alternatives relative to the word as asked.
SYNONYM_FACTOR = 0.9
SUBWORD_FACTOR = 0.5
# Weight of weak units (single characters, generic words) and of mapped question words.
WEAK_SCALE = 0.35
OPTIONAL_SCALE = 0.4
MAX_UNITS = 16
MAX_GRAMS = 32

# (phrase, terms, kinds), longest phrase first so "怎么办理" wins over "怎么办".
_PHRASES: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = tuple(
    sorted(
        [(p, terms, kinds) for phrases, terms, kinds in QUESTION_RULES for p in phrases]
        + [(p, (), ()) for p in FILLERS],
        key=lambda item: -len(item[0]),
    )
)


@dataclass(frozen=True)
class Unit:
    """One concept of the question and the index terms that can stand for it."""

    word: str
    alts: tuple[tuple[str, float], ...]
    grams: tuple[str, ...]
    scale: float
    optional: bool


@dataclass(frozen=True)
class Query:
    """A parsed question: units, fallback n-grams, kind hints and identifier forms."""

    text: str
    canon: str
    units: tuple[Unit, ...]
    grams: tuple[str, ...]
    kinds: frozenset[str]


def parse_query(raw: object, synonyms: Mapping[str, tuple[str, ...]]) -> Query:
    """Parse a raw question (any object, any length) into a Query; never raises."""
    text = normalize(raw, MAX_RAW_CHARS)
    rest, mapped, kinds = _strip_phrases(text)
    units: dict[str, Unit] = {}
    for group in cut_words(rest):
        if len(units) >= MAX_UNITS:
            break
        word = group[0]
        if word not in units:
            units[word] = _unit(word, group[1:], synonyms)
    for term in mapped:
        if term not in units and len(units) < MAX_UNITS + 4:
            alts = ((term, 1.0),) + tuple((s, SYNONYM_FACTOR) for s in synonyms.get(term, ()))
            units[term] = Unit(term, alts, (), OPTIONAL_SCALE, True)
    return Query(text, canon_id(text), tuple(units.values()), _query_grams(rest, units),
                 frozenset(kinds))


def _strip_phrases(text: str) -> tuple[str, list[str], set[str]]:
    """Remove filler and question phrases; return the rest, mapped terms and kinds."""
    mapped: list[str] = []
    kinds: set[str] = set()
    for phrase, terms, hinted in _PHRASES:
        if phrase in text:
            text = text.replace(phrase, " ")
            mapped.extend(t for t in terms if t not in mapped)
            kinds.update(hinted)
    return text, mapped, kinds


def _unit(word: str, subs: tuple[str, ...], synonyms: Mapping[str, tuple[str, ...]]) -> Unit:
    """Build the unit for one segmented word."""
    alts: dict[str, float] = {word: 1.0}
    for syn in synonyms.get(word, ()):
        alts.setdefault(syn, SYNONYM_FACTOR)
    for sub in subs:
        alts.setdefault(sub, SUBWORD_FACTOR)
        for syn in synonyms.get(sub, ()):
            alts.setdefault(syn, SUBWORD_FACTOR * SYNONYM_FACTOR)
    cjk = is_cjk(word)
    grams = tuple(bigrams(word)) if cjk and len(word) > 1 else ((word,) if cjk else ())
    weak = len(word) == 1 or word in WEAK_WORDS
    return Unit(word, tuple(alts.items()), grams, WEAK_SCALE if weak else 1.0, False)


def _query_grams(rest: str, units: Mapping[str, Unit]) -> tuple[str, ...]:
    """Character n-grams of the question for the fallback channel."""
    grams: dict[str, None] = {}
    for run in cjk_runs(rest):
        for gram in bigrams(run):
            grams.setdefault(gram)
    for unit in units.values():
        if not unit.optional and len(unit.word) == 1 and is_cjk(unit.word):
            grams.setdefault(unit.word)
    return tuple(grams)[:MAX_GRAMS]
