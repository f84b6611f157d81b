"""Building the index: posting lists with BM25F term frequencies, and lookup tables.

Each record is cut into fields (title, keywords, text). A channel (jieba words, or
characters and character bigrams) stores for every term the documents containing it
and, per document, the pseudo term frequency ``sum(weight * tf / (1 - b + b * len /
avg_len))`` over the fields (BM25F: a title match counts more than a body match, and
long bodies do not win by length alone), already saturated with BM25's k1 so that a
query only multiplies. Everything is built once and never changed afterwards.

A channel's postings live in two flat numpy arrays (document ids, saturated term
frequencies), each term owning one slice of them, so that scoring adds a whole posting
to a dense per-query vector in one vectorised step (score.py), and a built index is a
few large arrays rather than hundreds of thousands of small ones (quick to pickle).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from handlers.search.lexicon import ACCOUNT_TITLE_WORDS, DOCUMENT_HEADS, REFERRAL_MARK
from handlers.search.query import strip_phrases
from handlers.search.text import (
    add_words,
    canon_id,
    cjk_runs,
    cut_words,
    is_phrase,
    normalize,
    wenhao_key,
)

# (weight, length normalisation b) per field, for the word and the n-gram channels.
WORD_FIELDS = ((3.0, 0.5), (2.5, 0.3), (1.0, 0.75))
GRAM_FIELDS = ((2.0, 0.5), (2.0, 0.3), (1.0, 0.75))
K1 = 1.2
AREA_CODE = "0595"
SUBWORD_TF = 0.5


class Posting(NamedTuple):
    """A term's slice [start, stop) of its channel's arrays (Channel), and its idf."""

    start: int
    stop: int
    idf: float


@dataclass(frozen=True)
class Channel:
    """One channel's postings: term -> Posting, and the flat arrays the slices index.

    ``docs`` holds document ids, ascending within a term; ``sats`` the saturated BM25F
    term frequencies (rounded to float32 precision, held as float64 so that a query's
    arithmetic is plain double precision). Read-only once built.
    """

    terms: dict[str, Posting]
    docs: np.ndarray
    sats: np.ndarray

    def get(self, term: str) -> Posting | None:
        """The term's posting, or None."""
        return self.terms.get(term)

    def __contains__(self, term: object) -> bool:
        """Whether any document contains the term."""
        return term in self.terms

    def __getitem__(self, term: str) -> Posting:
        """The term's posting (KeyError if no document contains it)."""
        return self.terms[term]

    def postings(self, posting: Posting) -> tuple[np.ndarray, np.ndarray]:
        """(document ids, saturated term frequencies) of a posting: read-only views."""
        return self.docs[posting.start:posting.stop], self.sats[posting.start:posting.stop]


@dataclass(frozen=True)
class DocLists:
    """An inverted list without frequencies: key -> the documents (ascending) it is in,
    as slices of one flat array. Read-only once built."""

    spans: dict[str, tuple[int, int]]
    docs: np.ndarray

    def get(self, key: str) -> np.ndarray | None:
        """The documents the key is in (a read-only view), or None."""
        span = self.spans.get(key)
        return None if span is None else self.docs[span[0]:span[1]]


@dataclass(frozen=True)
class Tables:
    """What scoring reads, per channel and per document (ids are list positions)."""

    words: Channel
    grams: Channel
    kinds: tuple[str, ...]
    max_idf: float
    concept_idf: dict[str, float]
    title_terms: tuple[frozenset[str], ...]
    title_text: tuple[str, ...]
    # records about the account itself (their title names it): see lexicon.ACCOUNT_PHRASES
    account: frozenset[int]
    # doc id -> (terms, text) of what it is about besides its title (SearchDoc.about)
    about: dict[int, tuple[frozenset[str], str]]
    # referral records (their text opens with lexicon.REFERRAL_MARK) -> their topic: the
    # normalised keywords a question names when it asks about that other agency's business
    referral: dict[int, tuple[str, ...]]
    # per document: the document words (lexicon.DOCUMENT_HEADS) its title, keywords or
    # `about` name, inner words included (汽车票 -> 汽车票, 车票): what it is about
    documents: tuple[frozenset[str], ...]
    # title terms and title_text's characters and bigrams -> the documents whose title
    # (with keywords) has them: rerank weighs all candidates' titles at once
    title_words: DocLists
    title_grams: DocLists


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
        words.extend(doc.keywords)
        words.extend(canon_id(e) for e in doc.exact)
    for group in groups:
        words.extend(group)
    add_words(words)
    add_words((doc.title for doc in docs), phrases=True)


def build_tables(docs: Sequence, synonyms: dict[str, tuple[str, ...]]) -> Tables:
    """Build both channels and the per-document data that scoring reads."""
    fields = [
        (normalize(d.title), normalize(" ".join(d.keywords)), normalize(d.text)) for d in docs
    ]
    words = [word_counters(doc.kind, texts) for doc, texts in zip(docs, fields, strict=True)]
    word_postings = build_channel(words, [[c.total() for c in cs] for cs in words], WORD_FIELDS)
    title_terms = tuple(frozenset({**cs[0], **cs[1]}) for cs in words)
    del words  # the n-gram counters are made one document at a time: keep the peak low
    grams = build_channel(map(gram_counters, fields), [gram_lengths(f) for f in fields],
                          GRAM_FIELDS)
    about = about_tables(docs)
    title_text = tuple(f"{title} {keywords}".strip() for title, keywords, _ in fields)
    return Tables(
        words=word_postings,
        grams=grams,
        kinds=tuple(doc.kind for doc in docs),
        max_idf=idf(len(docs), 0),
        concept_idf=concept_idfs(word_postings, synonyms, len(docs)),
        title_terms=title_terms,
        title_text=title_text,
        account=frozenset(i for i, (title, _, _) in enumerate(fields)
                          if any(word in title for word in ACCOUNT_TITLE_WORDS)),
        about=about,
        documents=tuple(document_words((*terms, *about.get(i, ((), ""))[0]))
                        for i, terms in enumerate(title_terms)),
        referral={i: tuple(k for k in (normalize(w) for w in doc.keywords) if k)
                  for i, doc in enumerate(docs) if doc.text.lstrip().startswith(REFERRAL_MARK)},
        title_words=doc_lists(title_terms),
        title_grams=doc_lists(map(title_grams, title_text)),
    )


def title_grams(text: str) -> set[str]:
    """The CJK characters and bigrams of a text: the 1-2 character CJK strings in it."""
    grams: set[str] = set()
    for run in cjk_runs(text):
        grams.update(run)
        grams.update(run[i : i + 2] for i in range(len(run) - 1))
    return grams


def doc_lists(per_doc: Iterable[Iterable[str]]) -> DocLists:
    """Invert the documents' key sets (document ids are positions)."""
    key_ids: dict[str, int] = {}
    keys: list[int] = []
    owners: list[int] = []
    number = key_ids.setdefault
    for doc_id, found in enumerate(per_doc):
        before = len(keys)
        keys.extend([number(key, len(key_ids)) for key in found])
        owners.extend([doc_id] * (len(keys) - before))
    ids = np.array(keys, dtype=np.int64)
    docs = np.array(owners, dtype=np.intp)[np.argsort(ids, kind="stable")]
    docs.flags.writeable = False
    stops = np.cumsum(np.bincount(ids, minlength=len(key_ids))).tolist()
    starts = [0, *stops][:-1]
    return DocLists(dict(zip(key_ids, zip(starts, stops, strict=True), strict=True)), docs)


def document_words(terms: Iterable[str]) -> frozenset[str]:
    """The words among terms that name a document (身份证, 车票: lexicon.DOCUMENT_HEADS)."""
    return frozenset(t for t in terms if len(t) > 1 and t[-1] in DOCUMENT_HEADS)


def about_tables(docs: Sequence) -> dict[int, tuple[frozenset[str], str]]:
    """Terms (words and inner words) and text of each document's `about` field, if any."""
    table = {}
    for doc_id, doc in enumerate(docs):
        text = normalize(getattr(doc, "about", ""))
        if text:
            terms = frozenset(word for group in cut_words(text) for word in group)
            table[doc_id] = (terms, text)
    return table


def word_counters(kind: str, fields: Sequence[str]) -> list[Counter]:
    """Word counters of a document's normalised (title, keywords, text) fields."""
    counters = []
    for index, field in enumerate(fields):
        groups = cut_words(field)
        counter = Counter([group[0] for group in groups])
        if index == 0 and kind == "faq":
            # A FAQ's question is phrased like citizens' questions: map it the same way.
            counter.update(strip_phrases(field)[1])
        for group in groups:
            if len(group) > 1:
                # A word inside a longer word counts half ("出租" in "网络预约出租汽车");
                # inside a title added whole it is the title's own content: in full.
                sub_tf = 1.0 if is_phrase(group[0]) else SUBWORD_TF
                for sub in group[1:]:
                    counter[sub] += sub_tf
        counters.append(counter)
    return counters


def gram_counters(fields: Sequence[str]) -> list[Counter]:
    """Character and character-bigram counters of a document's normalised fields."""
    counters = []
    for field in fields:
        sequence: list[str] = []
        for run in cjk_runs(field):
            sequence.extend(run)
            sequence.extend([run[i : i + 2] for i in range(len(run) - 1)])
        counters.append(Counter(sequence))
    return counters


def gram_lengths(fields: Sequence[str]) -> list[int]:
    """What gram_counters' totals will be, without counting."""
    return [sum(2 * len(run) - 1 for run in cjk_runs(field)) for field in fields]


def concept_idfs(
    words: Channel, synonyms: dict[str, tuple[str, ...]], count: int
) -> dict[str, float]:
    """One idf per synonym word, from the documents containing any word of its groups."""
    result = {}
    for word, others in synonyms.items():
        docs: set[int] = set()
        for term in (word, *others):
            posting = words.get(term)
            if posting is not None:
                docs.update(words.postings(posting)[0].tolist())
        if docs:
            result[word] = idf(count, len(docs))
    return result


def build_channel(
    per_doc: Iterable[Sequence[Counter]], lengths: Sequence[Sequence[float]], fields
) -> Channel:
    """Posting lists with BM25F pseudo term frequencies for one channel."""
    count = len(lengths)
    avg = [max(1.0, sum(doc[i] for doc in lengths) / max(1, count)) for i in range(len(fields))]
    term_ids: dict[str, int] = {}
    entry_terms: list[int] = []
    entry_docs: list[int] = []
    entry_tfs: list[float] = []
    # The body first: it is the largest field, and a comprehension builds it fastest.
    order = sorted(range(len(fields)), key=lambda i: -avg[i])
    for doc_id, counters in enumerate(per_doc):
        combined = _combine(counters, lengths[doc_id], fields, avg, order)
        if not combined:
            continue
        number = term_ids.setdefault
        entry_terms.extend([number(term, len(term_ids)) for term in combined])
        entry_docs.extend([doc_id] * len(combined))
        entry_tfs.extend(combined.values())
    # arrays replace the lists one at a time: the build's peak memory stays low
    terms = np.array(entry_terms, dtype=np.int32)
    del entry_terms
    docs = np.array(entry_docs, dtype=np.intp)
    del entry_docs
    tfs = np.array(entry_tfs, dtype=np.float64)
    del entry_tfs
    return _channel(term_ids, terms, docs, tfs, count)


def _combine(counters: Sequence[Counter], sizes: Sequence[float], fields,
             avg: Sequence[float], order: Sequence[int]) -> dict[str, float]:
    """One document's BM25F pseudo term frequency per term, over its fields."""
    combined: dict[str, float] = {}
    for i in order:
        if not sizes[i]:
            continue
        weight, b = fields[i]
        norm = weight / (1.0 - b + b * sizes[i] / avg[i])
        if not combined:
            combined = {term: tf * norm for term, tf in counters[i].items()}
        else:
            get = combined.get
            for term, tf in counters[i].items():
                combined[term] = get(term, 0.0) + tf * norm
    return combined


def _channel(term_ids: dict[str, int], terms: np.ndarray, docs: np.ndarray, tfs: np.ndarray,
             count: int) -> Channel:
    """Group the (term, doc, tf) entries by term into a Channel (docs ascending per term)."""
    order = np.argsort(terms, kind="stable")  # entries come in document order
    docs = docs[order]
    tfs = tfs[order]
    del order
    # BM25 saturation once, at build time; float32 precision (as postings always had)
    sats = (tfs * (K1 + 1.0) / (tfs + K1)).astype(np.float32).astype(np.float64)
    sizes = np.bincount(terms, minlength=len(term_ids)).tolist()
    stops = np.cumsum(sizes).tolist()
    postings = {term: Posting(stop - size, stop, idf(count, size))
                for term, size, stop in zip(term_ids, sizes, stops, strict=True)}
    for array in (docs, sats):
        array.flags.writeable = False
    return Channel(postings, docs, sats)


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
