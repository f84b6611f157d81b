"""Text handling for the query index: normalisation, jieba segmentation, n-grams, exact ids.

Everything here is shared by index building and query parsing so that a record and a
question are cut the same way. jieba is imported and its dictionary loaded once per
process, lazily, into a private ``jieba.Tokenizer``; the dictionary is read from jieba's
marshal cache in the temp directory, which jieba writes on the first load.

Each index owns a ``Segmenter``: a copy of that base dictionary plus the index's own domain
words, memo and title phrases. The index makes it current (a context variable) while it
builds or searches, so words added for one content pack never change how another index
cuts text — results do not depend on which packs a process saw before.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import unicodedata
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from handlers.search.lexicon import STOP_WORDS

# Longest raw input we look at: citizens' questions are short, and anything longer is
# noise that must not cost time (WeChat allows 2 048 characters per text message).
MAX_RAW_CHARS = 256
# Longest in-vocabulary sub-word emitted from inside a long token.
MAX_SUBWORD = 8
# Segmentations remembered (records repeat many clauses); long runs are not worth it.
_MEMO_LIMIT = 100_000
_MEMO_MAX_RUN = 64

_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_RUN_RE = re.compile(f"[0-9a-z{_CJK}]+")
_CJK_RUN_RE = re.compile(f"[{_CJK}]+")
_CJK_CHAR_RE = re.compile(f"[{_CJK}]")
_SPACE_RE = re.compile(r"\s+")
# Characters outside the common ranges, which normalize() checks one by one.
_ODD_CHAR_RE = re.compile(f"[^\\x20-\\x7e\\u3000-\\u303f\\uff01-\\uff60\\u2010-\\u2027{_CJK}]")
# Brackets and separators that people write in many ways inside identifiers.
_ID_NOISE_RE = re.compile(
    r"[\s\[\]()（）〔〕【】［］{}<>《》「」〖〗﹝﹞'\"·.,，。:：、_\-—–~～/\\]+"
)
_DIGITS_RE = re.compile(r"\d{3,}")
_ALNUM_RE = re.compile(r"[0-9a-z]{2,}")
_DIGIT_SEP_RE = re.compile(r"(?<=\d)[\s\-—–]+(?=\d)")
_WENHAO_RE = re.compile(r"((?:19|20)\d{2})年?第?(\d{1,4})号")

_lock = threading.RLock()
_base: Any = None


def load_jieba() -> Any:
    """The jieba module, imported on first use (slow, and it sets up logging).

    jieba's `_compat` imports pkg_resources only to open its own data files, and falls
    back to opening them by path when that import fails; pkg_resources costs 0.15 s at
    start-up (it scans every installed distribution), a sixth of a `qzbot ask`. So jieba
    is imported with pkg_resources hidden (None in sys.modules makes an import fail) and
    sys.modules is restored at once; the files are the same ones either way."""
    with _lock:
        hidden = "pkg_resources" not in sys.modules and "jieba" not in sys.modules
        if hidden:
            sys.modules["pkg_resources"] = None  # type: ignore[assignment]
        try:
            import jieba  # noqa: PLC0415 - slow, sets up logging: load on first use
        finally:
            if hidden and sys.modules.get("pkg_resources", 0) is None:
                del sys.modules["pkg_resources"]
        jieba.setLogLevel(logging.WARNING)
    return jieba


def _base_tokenizer() -> Any:
    """The process-wide pristine jieba tokenizer, loading its dictionary on first use."""
    global _base
    if _base is None:
        with _lock:
            if _base is None:
                jieba = load_jieba()
                tk = jieba.Tokenizer()
                tk.initialize()
                _base = tk
    return _base


class Segmenter:
    """One index's jieba dictionary (base words + its own), memo and title phrases."""

    def __init__(self) -> None:
        base = _base_tokenizer()
        tk = load_jieba().Tokenizer()
        tk.FREQ, tk.total, tk.initialized = dict(base.FREQ), base.total, True
        self.tk = tk
        self.memo: dict[str, tuple[tuple[str, ...], ...]] = {}
        # query.py's per-word units, valid for one synonyms mapping (`units_for`, by identity)
        self.units: dict[tuple, Any] = {}
        self.units_for: object = None
        self.phrases: set[str] = set()
        self.lock = threading.RLock()


_current: ContextVar[Segmenter | None] = ContextVar("qzbot_segmenter", default=None)
_default: Segmenter | None = None


def current() -> Segmenter:
    """The segmenter in use (the current index's, else a process default)."""
    seg = _current.get()
    if seg is None:
        global _default
        with _lock:
            if _default is None:
                _default = Segmenter()
        seg = _default
    return seg


@contextmanager
def using(seg: Segmenter) -> Iterator[Segmenter]:
    """Make `seg` current for the enclosed build or search."""
    token = _current.set(seg)
    try:
        yield seg
    finally:
        _current.reset(token)


def tokenizer() -> Any:
    """The current segmenter's jieba tokenizer."""
    return current().tk


def normalize(text: object, limit: int | None = None) -> str:
    """NFKC, lower-case, drop control/format/emoji characters, collapse white space."""
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    if limit is not None:
        text = text[:limit]
    text = unicodedata.normalize("NFKC", text).lower()
    if not text.isascii():
        text = _ODD_CHAR_RE.sub(_drop_odd_char, text)
    return _SPACE_RE.sub(" ", text).strip()


def _drop_odd_char(match: re.Match) -> str:
    """Replace control, format, surrogate and symbol (emoji) characters by a space."""
    ch = match.group()
    cat = unicodedata.category(ch)
    return " " if cat[0] == "C" or cat in ("So", "Sk") else ch


def is_cjk(text: str) -> bool:
    """Whether the string consists of CJK characters only."""
    return bool(text) and _CJK_CHAR_RE.sub("", text) == ""


def add_words(words: Iterable[str], phrases: bool = False) -> None:
    """Add domain words (or, with phrases=True, record titles) to jieba's dictionary."""
    seg = current()
    tk = seg.tk
    added = False
    with seg.lock:
        freq_table = tk.FREQ
        for raw in words:
            for word in _RUN_RE.findall(normalize(raw)):
                if phrases and len(word) > 2:
                    seg.phrases.add(word)
                if len(word) < 2 or freq_table.get(word):
                    continue
                # Long words: any small frequency beats splitting them; short ones get
                # jieba's own estimate of what keeps them whole.
                freq = 10 if len(word) >= 5 else tk.suggest_freq(word)
                tk.add_word(word, freq)
                added = True
        if added:
            seg.memo.clear()
            seg.units = {}


def is_phrase(word: str) -> bool:
    """Whether the word is a record title added whole (its inner words are its content)."""
    return word in current().phrases


def _cut_run(run: str) -> tuple[tuple[str, ...], ...]:
    """Cut one run of word characters into words, each followed by its sub-words."""
    seg = current()
    memo = seg.memo
    cached = memo.get(run)
    if cached is not None:
        return cached
    tk = seg.tk
    freq_table = tk.FREQ
    out: list[tuple[str, ...]] = []
    for tok in tk.cut(run, HMM=False):
        if tok in STOP_WORDS:
            continue
        if len(tok) >= 3 and not tok.isascii():
            out.append((tok, *_subwords(tok, freq_table)))
        else:
            out.append((tok,))
    result = tuple(out)
    if len(run) <= _MEMO_MAX_RUN:
        if len(memo) >= _MEMO_LIMIT:
            memo.clear()
        memo[run] = result
    return result


def _subwords(tok: str, freq_table: dict) -> list[str]:
    """Dictionary words and letter/digit runs inside a long word (search-engine style).

    "公交卡补办" still matches a question about "补办", and "国道g228线" one about "g228".
    """
    found: dict[str, None] = {}
    size = len(tok)
    for i in range(size - 1):
        for j in range(i + 2, min(size, i + MAX_SUBWORD) + 1):
            sub = tok[i:j]
            if j - i < size and freq_table.get(sub) and sub not in STOP_WORDS:
                found[sub] = None
    for sub in _ALNUM_RE.findall(tok):
        if sub != tok:
            found[sub] = None
    return list(found)


def cut_words(text: str) -> list[tuple[str, ...]]:
    """Segment normalised text into words, each as (word, sub-word, ...)."""
    groups: list[tuple[str, ...]] = []
    for run in _RUN_RE.findall(text):
        groups.extend(_cut_run(run))
    return groups


def cjk_runs(text: str) -> list[str]:
    """Runs of CJK characters in normalised text."""
    return _CJK_RUN_RE.findall(text)


def bigrams(run: str) -> list[str]:
    """Character bigrams of one CJK run."""
    return [run[i : i + 2] for i in range(len(run) - 1)]


def canon_id(text: str) -> str:
    """Canonical form of an identifier: normalised, without brackets or separators."""
    return _ID_NOISE_RE.sub("", normalize(text))


def wenhao_key(canon: str) -> tuple[str, str, int] | None:
    """Split a canonical 文号 into (issuer prefix, year, number), or None."""
    match = _WENHAO_RE.search(canon)
    if match is None or match.end() != len(canon) or match.start() == 0:
        return None
    return canon[: match.start()], match.group(1), int(match.group(2))


def wenhao_mentions(canon_query: str) -> list[tuple[str, str, int]]:
    """(text before, year, number) for every 文号-like mention in a canonical query."""
    found = []
    for match in _WENHAO_RE.finditer(canon_query):
        found.append((canon_query[: match.start()], match.group(1), int(match.group(2))))
    return found


def digit_runs(text: str) -> set[str]:
    """Runs of 3+ digits in normalised text, as written and with separators removed."""
    joined = _DIGIT_SEP_RE.sub("", text)
    return set(_DIGITS_RE.findall(text)) | set(_DIGITS_RE.findall(joined))
