"""Building the index's posting lists: BM25F pseudo term frequencies per channel.

Each record is cut into fields (title, keywords, text). A channel (jieba words, or
character n-grams) stores for every term the documents containing it and one
pseudo term frequency per document: the sum over fields of
``weight * tf / (1 - b + b * len / avg_len)`` (BM25F), so that a title match counts
more than a body match and long bodies do not win by length alone.
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from handlers.search_text import (
    add_words,
    bigrams,
    canon_id,
    cjk_runs,
    cut_terms,
    normalize,
    wenhao_key,
)

# (weight, length normalisation b) per field, for the word and the n-gram channels.
WORD_FIELDS = ((3.0, 0.5), (2.5, 0.3), (1.0, 0.75))
GRAM_FIELDS = ((2.0, 0.5), (2.0, 0.3), (1.0, 0.75))
AREA_CODE = "0595"


@dataclass(frozen=True)
class Posting:
    """Documents containing a term, their pseudo term frequencies, and the term's idf."""

    docs: array
    tfs: array
    idf: float


@dataclass(frozen=True)
class Tables:
    """What scoring reads: both channels, each document's kind, the largest idf."""

    words: dict[str, Posting]
    grams: dict[str, Posting]
    kinds: tuple[str, ...]
    max_idf: float


@dataclass
class ExactIds:
    """Lookup tables for identifiers that must match exactly."""

    digits: dict[str, list[int]]
    wenhao: dict[tuple[str, int], list[tuple[str, int]]]
    other: list[tuple[str, int]]


def register_words(docs: Sequence, groups: Sequence[Sequence[str]]) -> None:
    """Put titles, keywords, synonym words and exact ids into jieba's dictionary."""
    words: list[str] = []
    for doc in docs:
        words.append(doc.title)
        words.extend(doc.keywords)
        words.extend(canon_id(e) for e in doc.exact)
    for group in groups:
        words.extend(group)
    add_words(words)


def field_terms(doc) -> tuple[list[Counter], list[Counter]]:
    """Word and n-gram counters for a document's (title, keywords, text) fields."""
    fields = (normalize(doc.title), normalize(" ".join(doc.keywords)), normalize(doc.text))
    words = [Counter(cut_terms(f)) for f in fields]
    grams = []
    for index, field in enumerate(fields):
        counter: Counter = Counter()
        for run in cjk_runs(field):
            counter.update(bigrams(run))
            if index < 2:  # single characters only for short fields: they are a last resort
                counter.update(run)
        grams.append(counter)
    return words, grams


def build_channel(per_doc: Sequence[Sequence[Counter]], fields) -> dict[str, Posting]:
    """Posting lists with BM25F pseudo term frequencies for one channel."""
    count = len(per_doc)
    lengths = [[c.total() for c in counters] for counters in per_doc]
    avg = [max(1.0, sum(doc[i] for doc in lengths) / max(1, count)) for i in range(len(fields))]
    lists: dict[str, tuple[list[int], list[float]]] = {}
    for doc_id, counters in enumerate(per_doc):
        combined: dict[str, float] = {}
        for (weight, b), counter, mean, size in zip(
            fields, counters, avg, lengths[doc_id], strict=True
        ):
            if not size:
                continue
            norm = weight / (1.0 - b + b * size / mean)
            get = combined.get
            for term, tf in counter.items():
                combined[term] = get(term, 0.0) + tf * norm
        for term, value in combined.items():
            entry = lists.get(term)
            if entry is None:
                lists[term] = ([doc_id], [value])
            else:
                entry[0].append(doc_id)
                entry[1].append(value)
    return {
        term: Posting(array("I", ids), array("f", tfs), idf(count, len(ids)))
        for term, (ids, tfs) in lists.items()
    }


def idf(count: int, df: int) -> float:
    """BM25 inverse document frequency (always positive)."""
    return math.log(1.0 + (count - df + 0.5) / (df + 0.5))


def build_exact(docs: Sequence) -> ExactIds:
    """Index every document's exact identifiers (文号, telephone numbers)."""
    table = ExactIds({}, {}, [])
    for doc_id, doc in enumerate(docs):
        for raw in doc.exact:
            canon = canon_id(raw)
            if len(canon) < 3:
                continue
            if canon.isdigit():
                table.digits.setdefault(canon, []).append(doc_id)
                if canon.startswith(AREA_CODE) and len(canon) > len(AREA_CODE) + 4:
                    table.digits.setdefault(canon[len(AREA_CODE) :], []).append(doc_id)
                continue
            key = wenhao_key(canon)
            if key is not None:
                prefix, year, number = key
                table.wenhao.setdefault((year, number), []).append((prefix, doc_id))
            else:
                table.other.append((canon, doc_id))
    return table
