"""Turning a citizen's question into weighted query units for the index.

A question such as "请问公交卡丢了去哪补呀" becomes: filler removed ("请问"), colloquial
question phrases mapped to the words records use ("去哪" -> 地址/窗口/办理, optional)
and to record kinds, the rest cut by jieba into units ("公交卡", "丢", "补"), each with
its alternatives (the word, its synonyms, colloquial equivalents such as 补 -> 补办,
the dictionary words inside it) and its character bigrams for the fallback channel.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date

from handlers.search.lexicon import (
    ACCOUNT_PHRASES,
    COLLOQUIAL,
    FILLERS,
    KIND_WORD_BOOST,
    KIND_WORDS,
    QUESTION_RULES,
    RELATIVE_YEARS,
    STOP_WORDS,
    WEAK_WORDS,
)
from handlers.search.text import (
    MAX_RAW_CHARS,
    bigrams,
    canon_id,
    cjk_runs,
    current,
    cut_words,
    is_cjk,
    normalize,
)

# Factors of a unit's alternatives relative to the word as asked.
SYNONYM_FACTOR = 0.9
COLLOQUIAL_FACTOR = 0.8
SUBWORD_FACTOR = 0.5
# The words inside a synonym-group phrase of PHRASE_MIN+ characters ("申请公开信息").
PHRASE_PART_FACTOR = 0.8
PHRASE_MIN = 4
# Weight of weak units (generic words, single characters) and of mapped question words.
WEAK_SCALE = 0.35
VERB_SCALE = 0.6
OPTIONAL_SCALE = 0.4
MAX_UNITS = 16
UNIT_MEMO_LIMIT = 20_000  # words whose units an index keeps (cleared when full)

# (phrase, terms, kinds, boost), longest phrase first so "怎么办理" wins over "怎么办".
_PHRASES: tuple[tuple[str, tuple[str, ...], tuple[str, ...], float], ...] = tuple(
    sorted(
        [(p, terms, kinds, boost) for phrases, terms, kinds, boost in QUESTION_RULES
         for p in phrases]
        + [(p, (), (), 1.0) for p in FILLERS],
        key=lambda item: -len(item[0]),
    )
)
# The phrases by first character, in _PHRASES order: a question is only checked for the
# phrases that can start in it (replacing a phrase by a space never creates another).
_PHRASES_BY_FIRST: dict[str, tuple[int, ...]] = {
    first: tuple(i for i, item in enumerate(_PHRASES) if item[0][0] == first)
    for first in {item[0][0] for item in _PHRASES}
}
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
    """A parsed question.

    text: normalised; canon: without brackets or separators (for identifiers);
    units: its concepts; junctions: bigrams joining adjacent words; boosts: record
    kind -> factor; bigrams: every character bigram (to compare with titles);
    domain: the domain-lexicon words it contains (transport words, domain.py);
    account: whether it asks about the account itself (what it can do);
    compounds: the pieces of each word the records never use that was split up
    ("社保卡" -> "社保", "卡").
    """

    text: str
    canon: str
    units: tuple[Unit, ...]
    junctions: tuple[str, ...]
    boosts: Mapping[str, float]
    bigrams: frozenset[str]
    domain: frozenset[str] = frozenset()
    account: bool = False
    compounds: tuple[tuple[str, ...], ...] = ()


def parse_query(
    raw: object,
    synonyms: Mapping[str, tuple[str, ...]],
    known: Callable[[str], bool] | None = None,
    today: date | None = None,
    domain: frozenset[str] = frozenset(),
) -> Query:
    """Parse a raw question (any object, any length) into a Query; never raises.

    ``known`` tells whether the records use a word; a compound they never use
    ("客运公司") is asked about through the words inside it ("客运", "公司").
    ``domain`` is the domain lexicon's words: the question's own words (and the words
    inside them) found there make it a transport question.
    """
    text = normalize(raw, MAX_RAW_CHARS)
    rest, mapped, boosts = strip_phrases(text)
    year = (today or date.today()).year
    units: dict[str, Unit] = {}
    groups = cut_words(rest)
    words, compounds = _words(groups, known)
    for word, subs in words:
        if word in KIND_WORDS:
            kind = KIND_WORDS[word]
            boosts[kind] = max(boosts.get(kind, 1.0), KIND_WORD_BOOST)
        if word not in units and len(units) < MAX_UNITS:
            units[word] = _cached_unit(word, subs, synonyms, year)
    for term in mapped:
        if term not in units and len(units) < MAX_UNITS + 4:
            alts = ((term, 1.0),) + tuple((s, SYNONYM_FACTOR) for s in synonyms.get(term, ()))
            units[term] = Unit(term, alts, (), OPTIONAL_SCALE, True)
    whole = frozenset(g for run in cjk_runs(_WANT_RE.sub(" ", text)) for g in bigrams(run))
    said = frozenset(w for group in cut_words(text) for w in group)
    return Query(text, canon_id(text), tuple(units.values()), _junctions(rest, groups), boosts,
                 whole,
                 said & domain, any(p in text for p in ACCOUNT_PHRASES), compounds)


def _words(
    groups: list[tuple[str, ...]], known: Callable[[str], bool] | None
) -> tuple[list[tuple[str, tuple[str, ...]]], tuple[tuple[str, ...], ...]]:
    """(word, inner words) of the cleaned question's segmented `groups`, unknown compounds
    split up; the pieces of each compound split."""
    words: list[tuple[str, tuple[str, ...]]] = []
    compounds: list[tuple[str, ...]] = []
    for group in groups:
        word, subs = group[0], group[1:]
        if known is not None and subs and not known(word):
            pieces = _split(word, subs)
            words.extend((piece, ()) for piece in pieces)
            compounds.append(tuple(pieces))
        else:
            words.append((word, subs))
    return words, tuple(compounds)


def _junctions(rest: str, groups: list[tuple[str, ...]]) -> tuple[str, ...]:
    """Bigrams across adjacent words ("公交" + "卡" -> "交卡"): phrase evidence.
    `groups` is `cut_words(rest)`, segmented once by the caller."""
    junctions: dict[str, None] = {}
    cursor, previous = 0, ""
    for group in groups:
        word = group[0]
        found = rest.find(word, cursor)
        if found == cursor and previous and is_cjk(previous[-1] + word[0]):
            junctions[previous[-1] + word[0]] = None
        cursor, previous = (found + len(word), word) if found >= 0 else (cursor, "")
    return tuple(junctions)


def strip_phrases(text: str) -> tuple[str, list[str], dict[str, float]]:
    """Remove filler and question phrases; return the rest, mapped terms and kind boosts."""
    mapped: list[str] = []
    boosts: dict[str, float] = {}
    candidates = sorted({i for ch in set(text) for i in _PHRASES_BY_FIRST.get(ch, ())})
    for phrase, terms, kinds, boost in (_PHRASES[i] for i in candidates):
        if phrase in text:
            text = text.replace(phrase, " ")
            mapped.extend(t for t in terms if t not in mapped)
            for kind in kinds:
                boosts[kind] = max(boosts.get(kind, 1.0), boost)
    return _WANT_RE.sub(" ", text), mapped, boosts


def _split(word: str, subs: tuple[str, ...]) -> list[str]:
    """The longest sub-words covering a word left to right (客运公司 -> 客运, 公司)."""
    pieces: list[str] = []
    pos = 0
    while pos < len(word):
        piece = max((s for s in subs if word.startswith(s, pos)), key=len, default=word[pos])
        if len(piece) > 1 or piece not in STOP_WORDS:
            pieces.append(piece)
        pos += len(piece)
    return pieces


def _cached_unit(
    word: str, subs: tuple[str, ...], synonyms: Mapping[str, tuple[str, ...]], year: int
) -> Unit:
    """`_unit`, memoised in the current segmenter (one per index) for one synonyms mapping:
    an index's synonyms never change, so a word's unit is built once per year."""
    seg = current()
    if seg.units_for is not synonyms:
        seg.units, seg.units_for = {}, synonyms
    memo = seg.units
    key = (word, subs, year)
    unit = memo.get(key)
    if unit is None:
        if len(memo) >= UNIT_MEMO_LIMIT:
            memo.clear()
        unit = memo[key] = _unit(word, subs, synonyms, year)
    return unit


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
    # A synonym-group phrase ("申请公开信息", "货车司机") is made of its words: they stand
    # for it nearly as well as a colloquial equivalent does.
    inner = PHRASE_PART_FACTOR if word in synonyms and len(word) >= PHRASE_MIN else SUBWORD_FACTOR
    for sub in subs:
        alts.setdefault(sub, inner)
        for syn in synonyms.get(sub, ()):
            alts.setdefault(syn, inner * SYNONYM_FACTOR)
    cjk = is_cjk(word)
    grams = tuple(bigrams(word)) if cjk and len(word) > 1 else ((word,) if cjk else ())
    if word in COLLOQUIAL:
        scale = VERB_SCALE
    elif len(word) == 1 or word in WEAK_WORDS:
        scale = WEAK_SCALE
    else:
        scale = 1.0
    ordered = tuple(sorted(alts.items(), key=lambda alt: -alt[1]))  # strongest first
    return Unit(word, ordered, grams, scale, False)
