"""The domain lexicon shipped with the engine: the words citizens type for official terms.

Why in the engine and not in the content pack: a bureau that imports its own pack must not
lose "打车 = 出租汽车" or "拉货 = 道路货物运输" (issue 8, item 6). The data lives in
``domain_lexicon.toml`` beside this module (format: /work/notes/lexicon-format.md); each
group's ``everyday`` words and its ``official`` term become one synonym group of every
index (a pack's own [[synonym]] groups add to them), and every word in the file marks a
question as being about transport (the fallback then names 12328 instead of 12345).

The file is read and validated once per process (``domain_lexicon``); a broken file is an
error naming the group and the word, never silently half-applied.
"""

from __future__ import annotations

import functools
import logging
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from handlers.search.text import normalize

log = logging.getLogger("qzbot.search")
LEXICON_PATH = Path(__file__).with_name("domain_lexicon.toml")
VERSION = 1
DOMAINS = frozenset(
    {"taxi", "ridehail", "bus", "coach", "freight", "dangerous", "driving_school", "repair",
     "port", "road", "permit", "rail_air", "disclosure", "general"}
)
_GROUP_KEYS = frozenset({"domain", "official", "everyday", "source"})
# A whole word: CJK characters, letters or digits only (no spaces, no punctuation).
_WORD_RE = re.compile(r"[0-9a-z\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]{2,}")


class LexiconError(ValueError):
    """The lexicon file is malformed; the message names where."""


@dataclass(frozen=True)
class LexiconGroup:
    """One official term and the everyday words citizens use for it."""

    domain: str
    official: str
    everyday: tuple[str, ...]
    source: str


@dataclass(frozen=True)
class DomainLexicon:
    """The validated groups; immutable, shared by every index of the process."""

    groups: tuple[LexiconGroup, ...] = ()

    @functools.cached_property
    def words(self) -> frozenset[str]:
        """Every word of the file (normalised): each marks a question as about transport."""
        return frozenset(w for g in self.groups for w in (g.official, *g.everyday))

    def synonym_groups(self) -> list[tuple[str, ...]]:
        """One synonym group per lexicon group: the official term first."""
        return [(g.official, *g.everyday) for g in self.groups]

    @property
    def pairs(self) -> int:
        """Number of everyday -> official pairs (the lexicon's size)."""
        return sum(len(g.everyday) for g in self.groups)


EMPTY = DomainLexicon()


def parse_lexicon(text: str, origin: str = "<lexicon>") -> DomainLexicon:
    """Parse and validate lexicon TOML; raise LexiconError listing every problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise LexiconError(f"{origin}: not valid TOML: {exc}") from exc
    problems: list[str] = []
    if data.get("version") != VERSION:
        problems.append(f"version must be {VERSION}, got {data.get('version')!r}")
    raw = data.get("group", [])
    if not isinstance(raw, list):
        problems.append("[[group]] must be an array of tables")
        raw = []
    groups: list[LexiconGroup] = []
    owner: dict[str, int] = {}  # everyday word -> index of the group that has it
    for index, entry in enumerate(raw):
        group = _group(entry, f"group {index}", problems)
        if group is None:
            continue
        for word in group.everyday:
            if word in owner:
                problems.append(f"group {index}: everyday word {word!r} already in group "
                                f"{owner[word]}")
            owner.setdefault(word, index)
        groups.append(group)
    if problems:
        raise LexiconError(f"{origin}: " + "; ".join(problems))
    return DomainLexicon(tuple(groups))


def _group(entry: object, where: str, problems: list[str]) -> LexiconGroup | None:
    """Validate one [[group]] table (appending to problems); None if unusable."""
    if not isinstance(entry, Mapping):
        problems.append(f"{where}: not a table")
        return None
    unknown = sorted(set(entry) - _GROUP_KEYS)
    if unknown:
        problems.append(f"{where}: unknown keys {unknown}")
    domain = entry.get("domain")
    if domain not in DOMAINS:
        problems.append(f"{where}: unknown domain {domain!r}")
    source = entry.get("source")
    if not isinstance(source, str) or not source.strip():
        problems.append(f"{where}: source is required")
    official = _word(entry.get("official"), f"{where} official", problems)
    everyday_raw = entry.get("everyday")
    if not isinstance(everyday_raw, list) or not everyday_raw:
        problems.append(f"{where}: everyday must be a non-empty array of words")
        everyday_raw = []
    everyday: list[str] = []
    for raw in everyday_raw:
        word = _word(raw, f"{where} everyday", problems)
        if word is None:
            continue
        if word in everyday or word == official:
            problems.append(f"{where}: {word!r} repeated in the group")
            continue
        everyday.append(word)
    if official is None or not everyday:
        return None
    return LexiconGroup(str(domain), official, tuple(everyday), str(source))


def _word(raw: object, where: str, problems: list[str]) -> str | None:
    """The normalised whole word, or None (appending the problem)."""
    word = normalize(raw) if isinstance(raw, str) else ""
    if not _WORD_RE.fullmatch(word):
        problems.append(f"{where}: {raw!r} is not a whole word of 2+ characters")
        return None
    return word


def load_lexicon(path: Path) -> DomainLexicon:
    """Read and validate a lexicon file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LexiconError(f"{path}: cannot read the domain lexicon: {exc}") from exc
    return parse_lexicon(text, str(path))


@functools.cache
def domain_lexicon() -> DomainLexicon:
    """The lexicon shipped with the engine, read once per process.

    A missing file (a broken install) leaves the engine working without it, loudly; a
    malformed one is an error.
    """
    if not LEXICON_PATH.exists():
        log.warning("no domain lexicon at %s: colloquial transport words will not match",
                    LEXICON_PATH)
        return EMPTY
    return load_lexicon(LEXICON_PATH)


def merge_groups(lexicon: DomainLexicon, pack: Sequence[Sequence[str]]
                 ) -> list[tuple[str, ...]]:
    """The lexicon's synonym groups followed by a pack's own (which add to them)."""
    return [*lexicon.synonym_groups(), *(tuple(g) for g in pack)]
