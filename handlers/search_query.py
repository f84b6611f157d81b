"""Turning a citizen's question into weighted query units for the index.

A question such as "请问公交卡丢了去哪补呀" becomes: filler removed ("请问"), colloquial
question phrases mapped to the words records use ("去哪" -> 地址/窗口/办理, optional)
and to record kinds, the rest cut by jieba into units ("公交卡", "丢", "补"), each with
its alternatives (the word, its synonyms, colloquial equivalents such as 补 -> 补办,
the dictionary words inside it) and its character bigrams for the fallback channel.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from handlers.search_lexicon import (
    COLLOQUIAL,
    FILLERS,
    KIND_WORDS,
    QUESTION_RULES,
    RELATIVE_YEARS,
    WEAK_WORDS,
)
from handlers.search_text import (
    MAX_RAW_CHARS,
    bigrams,
    canon_id,
    cut_words,
    is_cjk,
    normalize,
)

# Factors of a unit's alternatives relative to the word as asked.
SYNONYM_FACTOR = 0.9
COLLOQUIAL_FACTOR = 0.8
SUBWORD_FACTOR = 0.5
# Weight of weak units (generic words, single characters) and of mapped question words.
WEAK_SCALE = 0.35
VERB_SCALE = 0.6
OPTIONAL_SCALE = 0.4
MAX_UNITS = 16

# (phrase, terms, kinds), longest phrase first so "怎么办理" wins over "怎么办".
_PHRASES: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = tuple(
    sorted(
        [(p, terms, kinds) for phrases, terms, kinds in QUESTION_RULES for p in phrases]
        + [(p, (), ()) for p in FILLERS],
        key=lambda item: -len(item[0]),
    )
)
# A lone 想 ("想开出租车") is filler, but not inside 理想, 思想, 想法 and the like.
_WANT_RE = re.compile("(?<![理思设构梦感联回])想(?![法象])")


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


def parse_query(
    raw: object, synonyms: Mapping[str, tuple[str, ...]], today: date | None = None
) -> Query:
    """Parse a raw question (any object, any length) into a Query; never raises."""
    text = normalize(raw, MAX_RAW_CHARS)
    rest, mapped, kinds = _strip_phrases(text)
    year = (today or date.today()).year
    units: dict[str, Unit] = {}
    junctions: list[str] = []
    cursor, previous = 0, ""
    for group in cut_words(rest):
        word = group[0]
        found = rest.find(word, cursor)
        if found == cursor and previous and is_cjk(previous[-1] + word[0]):
            junctions.append(previous[-1] + word[0])
        cursor, previous = (found + len(word), word) if found >= 0 else (cursor, "")
        kinds.update(KIND_WORDS.get(word, ()))
        if word not in units and len(units) < MAX_UNITS:
            units[word] = _unit(word, group[1:], synonyms, year)
    for term in mapped:
        if term not in units and len(units) < MAX_UNITS + 4:
            alts = ((term, 1.0),) + tuple((s, SYNONYM_FACTOR) for s in synonyms.get(term, ()))
            units[term] = Unit(term, alts, (), OPTIONAL_SCALE, True)
    grams = dict.fromkeys(g for u in units.values() if not u.optional for g in u.grams)
    grams.update(dict.fromkeys(junctions))
    return Query(text, canon_id(text), tuple(units.values()), tuple(grams), frozenset(kinds))


def _strip_phrases(text: str) -> tuple[str, list[str], set[str]]:
    """Remove filler and question phrases; return the rest, mapped terms and kinds."""
    mapped: list[str] = []
    kinds: set[str] = set()
    for phrase, terms, hinted in _PHRASES:
        if phrase in text:
            text = text.replace(phrase, " ")
            mapped.extend(t for t in terms if t not in mapped)
            kinds.update(hinted)
    return _WANT_RE.sub(" ", text), mapped, kinds


def _unit(
    word: str, subs: tuple[str, ...], synonyms: Mapping[str, tuple[str, ...]], year: int
) -> Unit:
    """Build the unit for one segmented word."""
    alts: dict[str, float] = {word: 1.0}
    for syn in synonyms.get(word, ()):
        alts.setdefault(syn, SYNONYM_FACTOR)
    for formal in COLLOQUIAL.get(word, ()):
        alts.setdefault(formal, COLLOQUIAL_FACTOR)
    if word in RELATIVE_YEARS:
        alts.setdefault(str(year + RELATIVE_YEARS[word]), 1.0)
    for sub in subs:
        alts.setdefault(sub, SUBWORD_FACTOR)
        for syn in synonyms.get(sub, ()):
            alts.setdefault(syn, SUBWORD_FACTOR * SYNONYM_FACTOR)
    cjk = is_cjk(word)
    grams = tuple(bigrams(word)) if cjk and len(word) > 1 else ((word,) if cjk else ())
    if word in COLLOQUIAL:
        scale = VERB_SCALE
    elif len(word) == 1 or word in WEAK_WORDS:
        scale = WEAK_SCALE
    else:
        scale = 1.0
    return Unit(word, tuple(alts.items()), grams, scale, False)
