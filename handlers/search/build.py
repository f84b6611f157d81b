"""Building the index: posting lists with BM25F term frequencies, and lookup tables.

Each record is cut into fields (title, keywords, text). A channel (jieba words, or
characters and character bigrams) stores for every term the documents containing it
and, per document, the pseudo term frequency ``sum(weight * tf / (1 - b + b * len /
avg_len))`` over the fields (BM25F: a title match counts more than a body match, and
long bodies do not win by length alone), already saturated with BM25's k1 so that a
query only multiplies. Everything is built once and never changed afterwards.
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

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


@dataclass(frozen=True)
class Posting:
    """Documents containing a term, their saturated BM25F term frequencies, the idf."""

    docs: array
    sats: array
    idf: float


@dataclass(frozen=True)
class Tables:
    """What scoring reads, per channel and per document (ids are list positions)."""

    words: dict[str, Posting]
    grams: dict[str, Posting]
    kinds: tuple[str, ...]
    max_idf: float
    concept_idf: dict[str, float]
    title_terms: tuple[tuple[str, ...], ...]
    title_text: tuple[str, ...]
    # records about the account itself (their title names it): see lexicon.ACCOUNT_PHRASES
    account: frozenset[int]
    # doc id -> (terms, text) of what it is about besides its title (SearchDoc.about)
    about: dict[int, tuple[tuple[str, ...], str]]
    # referral records (their text opens with lexicon.REFERRAL_MARK) -> their topic: the
    # normalised keywords a question names when it asks about that other agency's business
    referral: dict[int, tuple[str, ...]]
    # per document: the document words (lexicon.DOCUMENT_HEADS) its title, keywords or
    # `about` name, inner words included (汽车票 -> 汽车票, 车票): what it is about
    documents: tuple[frozenset[str], ...]


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
    title_terms = tuple(tuple({**cs[0], **cs[1]}) for cs in words)
    del words  # the n-gram counters are made one document at a time: keep the peak low
    grams = build_channel(map(gram_counters, fields), [gram_lengths(f) for f in fields],
                          GRAM_FIELDS)
    about = about_tables(docs)
    return Tables(
        words=word_postings,
        grams=grams,
        kinds=tuple(doc.kind for doc in docs),
        max_idf=idf(len(docs), 0),
        concept_idf=concept_idfs(word_postings, synonyms, len(docs)),
        title_terms=title_terms,
        title_text=tuple(f"{title} {keywords}".strip() for title, keywords, _ in fields),
        account=frozenset(i for i, (title, _, _) in enumerate(fields)
                          if any(word in title for word in ACCOUNT_TITLE_WORDS)),
        about=about,
        documents=tuple(document_words((*terms, *about.get(i, ((), ""))[0]))
                        for i, terms in enumerate(title_terms)),
        referral={i: tuple(k for k in (normalize(w) for w in doc.keywords) if k)
                  for i, doc in enumerate(docs) if doc.text.lstrip().startswith(REFERRAL_MARK)},
    )


def document_words(terms: Iterable[str]) -> frozenset[str]:
    """The words among terms that name a document (身份证, 车票: lexicon.DOCUMENT_HEADS)."""
    return frozenset(t for t in terms if len(t) > 1 and t[-1] in DOCUMENT_HEADS)


def about_tables(docs: Sequence) -> dict[int, tuple[tuple[str, ...], str]]:
    """Terms (words and inner words) and text of each document's `about` field, if any."""
    table = {}
    for doc_id, doc in enumerate(docs):
        text = normalize(getattr(doc, "about", ""))
        if text:
            terms = {word: None for group in cut_words(text) for word in group}
            table[doc_id] = (tuple(terms), text)
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
    words: dict[str, Posting], synonyms: dict[str, tuple[str, ...]], count: int
) -> dict[str, float]:
    """One idf per synonym word, from the documents containing any word of its groups."""
    result = {}
    for word, others in synonyms.items():
        docs: set[int] = set()
        for term in (word, *others):
            posting = words.get(term)
            if posting is not None:
                docs.update(posting.docs)
        if docs:
            result[word] = idf(count, len(docs))
    return result


def build_channel(
    per_doc: Iterable[Sequence[Counter]], lengths: Sequence[Sequence[float]], fields
) -> dict[str, Posting]:
    """Posting lists with BM25F pseudo term frequencies for one channel."""
    count = len(lengths)
    avg = [max(1.0, sum(doc[i] for doc in lengths) / max(1, count)) for i in range(len(fields))]
    lists: dict[str, tuple[list[int], list[float]]] = {}
    # The body first: it is the largest field, and a comprehension builds it fastest.
    order = sorted(range(len(fields)), key=lambda i: -avg[i])
    for doc_id, counters in enumerate(per_doc):
        sizes = lengths[doc_id]
        combined: dict[str, float] | None = None
        for i in order:
            if not sizes[i]:
                continue
            weight, b = fields[i]
            norm = weight / (1.0 - b + b * sizes[i] / avg[i])
            if combined is None:
                combined = {term: tf * norm for term, tf in counters[i].items()}
            else:
                get = combined.get
                for term, tf in counters[i].items():
                    combined[term] = get(term, 0.0) + tf * norm
        if combined is None:
            continue
        for term, value in combined.items():
            entry = lists.get(term)
            if entry is None:
                lists[term] = ([doc_id], [value])
            else:
                entry[0].append(doc_id)
                entry[1].append(value)
    return {
        term: Posting(array("I", ids), array("f", map(_saturate, tfs)), idf(count, len(ids)))
        for term, (ids, tfs) in lists.items()
    }


def _saturate(tf: float) -> float:
    """BM25 term-frequency saturation, computed once at build time."""
    return tf * (K1 + 1.0) / (tf + K1)


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
