"""Which ranked records a citizen may be shown: the relevance gate behind the three outcomes.

Ranking (score, rerank) orders every record that shares anything with the question, down
to a lone common character. A citizen must see only records that share a meaningful term
with the question (issue 8, item 1): a confident answer, a numbered list of the records
that are genuinely relevant (never padded up to the limit), or nothing, so the handler
gives the honest fallback and records the question for `report unanswered`.

A record is relevant when it holds an identifier the question quotes (文号, telephone
number), or when all of these hold:
- shared: it matches a meaningful unit of the question (not a stop, weak or
  question-phrase word, not a lone character: query.Unit.scale) at MEANINGFUL_STRENGTH
  or more;
- about it: its title (for a hotline, its name and scope) names one of the question's
  concepts (rerank's title fit > 0). A word the record uses only in passing — a material
  to bring (身份证, 营业执照, 居住证), a place to read documents (图书馆) — does not make
  it an answer to "居住证怎么办理";
- not foreign: the question's meaningful words that no record uses at all (社保, 医保,
  公积金: another agency's business) weigh no more than the words the record matches, so
  "社保卡丢了怎么补办" does not get the bus-card guide for sharing 丢了 and 补办;
- the document asked about: when the question names a document (身份证, 车票: a word
  ending in lexicon.DOCUMENT_HEADS) and the record's title names documents, one of them
  is the question's (or a synonym): the 从业资格证 guide lists 身份证 among its materials
  but does not answer "身份证过期了怎么换";
- enough: it covers MIN_COVERAGE of the question and scores within LIST_SHARE of the best
  record, so a list is never a long tail of weak hits.
A transport question (one naming a domain-lexicon word, domain.py) whose record title
names none of its concepts is still answered when the record covers most of it
(TRANSPORT_COVERAGE): it is ours, phrased in the citizen's words.

The question is about transport when it names a lexicon word or a record passes the gate;
the fallback then names 12328, otherwise 12345.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from handlers.search.lexicon import DOCUMENT_HEADS, DOCUMENT_VERBS
from handlers.search.query import SYNONYM_FACTOR, VERB_SCALE, Query

# A unit counts as shared when a record matches it at least this strongly (a word or its
# synonym: 0.9-1.0; a colloquial equivalent 0.8; a word inside it 0.5, inside a synonym
# 0.45; its bigram 0.7).
MEANINGFUL_STRENGTH = 0.45
# Least coverage (share of the question's weight matched, see rerank) of a relevant record.
MIN_COVERAGE = 0.2
# Coverage that stands in for a title match on a transport question.
TRANSPORT_COVERAGE = 0.3
# Unmatched words no record uses may weigh at most this times the matched meaningful ones
# (on a transport question, TRANSPORT_FOREIGN_RATIO: "手机落在公交车上了找谁").
FOREIGN_RATIO = 1.0
TRANSPORT_FOREIGN_RATIO = 3.0
# A listed record scores at least this share of the best one (no long tail of weak hits;
# 0.4 -> 0.5 took list precision on the eval set from 44 % to 51 % at no top-1 cost).
LIST_SHARE = 0.5


@dataclass(frozen=True)
class Evidence:
    """What scoring learnt about each unit and candidate (see score._Scorer and rerank)."""

    strengths: Sequence[Mapping[int, float]]  # per unit: doc id -> match strength
    weights: Sequence[float]  # per unit: its weight (0 for optional units)
    known: Sequence[bool]  # per unit: whether the records use the word (or a synonym)
    cover: Mapping[int, float]  # doc id -> coverage
    titles: Mapping[int, float]  # doc id -> title fit
    exact: set[int]  # docs holding an identifier the question quotes
    # per doc: the document words its title, keywords or scope name (build.Tables.documents)
    documents: Sequence[frozenset[str]] = ()


def meaningful_units(query: Query) -> list[int]:
    """Indexes of the units that carry the question's topic (not filler, weak or optional).

    A bare number ("228国道") is left out: it is an identifier, matched exactly or not.
    """
    return [i for i, unit in enumerate(query.units)
            if not unit.optional and not unit.word.isdigit()
            and (unit.scale >= 1.0 or unit.word in query.domain)]


def relevant(query: Query, ranked: Sequence[tuple[int, float]], evidence: Evidence
             ) -> tuple[list[tuple[int, float]], bool]:
    """The relevant (doc id, score) pairs, best first, and whether the question is transport."""
    if not ranked:
        return [], bool(query.domain)
    units = meaningful_units(query)
    asked = asked_documents(query, units)
    floor = LIST_SHARE * ranked[0][1]
    kept = [(doc_id, score) for doc_id, score in ranked
            if doc_id in evidence.exact
            or (score >= floor and _relevant(query, units, evidence, doc_id)
                and not _other_document(asked, evidence, doc_id))]
    return kept, bool(query.domain) or bool(kept)


def asked_documents(query: Query, units: Sequence[int]) -> list[frozenset[str]]:
    """The documents the question names, each with its synonyms; a word the records never
    use counts whole ("残疾证", split into 残疾 + 证). A verb and a document ("买票", "办证",
    "补卡": lexicon.DOCUMENT_VERBS) name no particular document."""
    words = [query.units[i].word for i in units]
    asked = [frozenset(t for t, f in query.units[i].alts if f >= SYNONYM_FACTOR)
             for i, word in zip(units, words, strict=True) if names_document(word)]
    whole = ("".join(pieces) for pieces in query.compounds)
    asked.extend(frozenset({w}) for w in whole if names_document(w))
    return asked


def names_document(word: str) -> bool:
    """Whether a word names a particular document (身份证, 火车票; not 买票, not 证)."""
    return (len(word) > 1 and word[-1] in DOCUMENT_HEADS
            and not (len(word) == 2 and word[0] in DOCUMENT_VERBS))


def _other_document(asked: Sequence[frozenset[str]], evidence: Evidence, doc_id: int
                    ) -> bool:
    """Whether the record is about documents and none of them is one the question names."""
    if not asked or doc_id >= len(evidence.documents):
        return False
    documents = evidence.documents[doc_id]
    return bool(documents) and not any(names & documents for names in asked)


def _matched(query: Query, evidence: Evidence, doc_id: int) -> float:
    """Weight of the question's content units (meaningful or colloquial) the record matches."""
    return sum(weight for unit, weight, strength in zip(query.units, evidence.weights,
                                                        evidence.strengths, strict=True)
               if unit.scale >= VERB_SCALE and strength.get(doc_id, 0.0) >= MEANINGFUL_STRENGTH)


def _foreign(query: Query, units: Sequence[int], evidence: Evidence, doc_id: int) -> float:
    """Weight of the meaningful words no record uses (not lexicon words), less what the
    record matches of them by characters (a typo, a variant).

    A word the records never use that was split into pieces is one foreign thing when a
    piece is foreign: "社保卡" is not a kind of 卡 the records know, so its 卡 counts too.
    """
    foreign: set[str] = set()
    total = 0.0
    for i in units:
        word = query.units[i].word
        if not evidence.known[i] and word not in query.domain:
            foreign.add(word)
            total += evidence.weights[i] * (1.0 - min(1.0, evidence.strengths[i].get(doc_id, 0.0)))
    for pieces in query.compounds:
        if foreign.intersection(pieces):
            total += sum(weight for unit, weight in zip(query.units, evidence.weights, strict=True)
                         if unit.word in pieces and unit.word not in foreign)
    return total


def _relevant(query: Query, units: Sequence[int], evidence: Evidence, doc_id: int) -> bool:
    """Whether one ranked record passes the gate (see the module docstring)."""
    covered = evidence.cover.get(doc_id, 0.0)
    if covered < MIN_COVERAGE:
        return False
    if not any(evidence.strengths[i].get(doc_id, 0.0) >= MEANINGFUL_STRENGTH for i in units):
        return False
    ratio = TRANSPORT_FOREIGN_RATIO if query.domain else FOREIGN_RATIO
    if _foreign(query, units, evidence, doc_id) > ratio * _matched(query, evidence, doc_id):
        return False
    if evidence.titles.get(doc_id, 0.0) > 0.0:
        return True
    return bool(query.domain) and covered >= TRANSPORT_COVERAGE
