"""Answer quality of the query index on the eval set, against a rank-bm25 baseline.

Run: .venv/bin/python bench/answers.py [--pack PATH] [--eval PATH] [--quiet] [--show-lists]

Loads the sample pack (keeping only what citizens may see, as the data layer does) and
asks every question of tests/eval/questions.toml the way the chat does (limit=20), with
three indexes: ours as shipped (domain lexicon + the pack's [[synonym]] groups), ours
without the pack's synonym groups (the domain lexicon alone: what a bureau importing its
own pack gets), ours with neither; and a baseline (rank_bm25.BM25Okapi over jieba.lcut of
each record's title and text). Figures, per index:

- in-scope top-1 / top-3: the first (first three) hits include `expect` or one of `also`;
- fallback: the share of [[out_of_scope]] questions that get NO hits (the honest
  fallback); hotline: of those that fell back, the share whose transport flag names the
  expected hotline (12328 transport / 12345 otherwise);
- list precision: over the in-scope questions answered with a list (hits, not confident),
  the share of listed records that are `expect` or `also`, pooled over all listed records
  (and the share of lists whose first page of 5 holds a right record). `also` names the
  acceptable answers, not every related record, so this is a lower bound;
- confident: in-scope questions answered confidently, of those wrong; unanswerable ones
  (hidden records, expired notices, chat) that got confident=True (must be 0).
The baseline has no notion of relevance: it answers every question that shares a word.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import tomllib
from collections.abc import Callable, Sequence
from datetime import date, datetime
from pathlib import Path

from handlers.search import KINDS, SearchDoc, SearchIndex, SearchResult, doc_from_record
from handlers.search.domain import EMPTY, domain_lexicon

ROOT = Path(__file__).resolve().parent.parent
PACK = ROOT / "bot" / "data" / "sample_pack.toml"
EVAL = ROOT / "tests" / "eval" / "questions.toml"
# The eval set's "today": notices that ended before this are no longer answered.
NOW = datetime(2026, 11, 27, 10, 0)
# what the chat asks for (bot: pages of 5 up to 20 records)
LIMIT = 20
PAGE = 5


def visible(kind: str, record: dict, now: datetime = NOW) -> bool:
    """Whether citizens may see the record (主动公开; notices not yet ended)."""
    if kind in ("policy", "disclosure") and record.get("disclosure") != "主动公开":
        return False
    if kind == "notice":
        ends = record.get("ends_at")
        if isinstance(ends, datetime) and ends < now:
            return False
        if isinstance(ends, date) and not isinstance(ends, datetime) and ends < now.date():
            return False
    return True


def pack_docs(pack: dict) -> tuple[list[SearchDoc], list[list[str]]]:
    """The visible SearchDocs and the synonym groups of a parsed pack."""
    docs = [
        doc_from_record(kind, record)
        for kind in KINDS
        for record in pack.get(kind, [])
        if visible(kind, record)
    ]
    return docs, [list(s["words"]) for s in pack.get("synonym", [])]


def baseline(docs: Sequence[SearchDoc]) -> Callable[[str], list[str]]:
    """rank-bm25 over jieba.lcut(title + text); returns a function query -> keys."""
    import jieba
    from rank_bm25 import BM25Okapi

    jieba.setLogLevel(logging.WARNING)

    def cut(text: str) -> list[str]:
        """jieba's default cut, white space dropped."""
        return [t for t in jieba.lcut(text) if t.strip()]

    model = BM25Okapi([cut(f"{d.title} {d.text}") for d in docs])
    keys = [d.key for d in docs]

    def ranked(query: str) -> list[str]:
        """The baseline's keys for a question (best 20 with a positive score)."""
        scores = model.get_scores(cut(query))
        order = sorted(range(len(keys)), key=lambda i: -scores[i])
        return [keys[i] for i in order[:LIMIT] if scores[i] > 0]

    return ranked


Ask = Callable[[str], SearchResult]


def figures(evalset: dict, ask: Ask) -> dict:
    """Every figure of one index on the eval set (see the module docstring)."""
    questions = evalset.get("q", [])
    out = evalset.get("out_of_scope", [])
    top1 = top3 = confident = wrong = listed = right = lists = first_page = 0
    misses: list[tuple[str, str, list[str]]] = []
    shown: list[tuple[str, list[tuple[str, bool]]]] = []  # each list: (key, right?)
    for q in questions:
        good = {q["expect"], *q.get("also", [])}
        result = ask(q["text"])
        keys = [hit.key for hit in result.hits]
        top1 += bool(keys) and keys[0] in good
        top3 += any(k in good for k in keys[:3])
        if not keys or keys[0] not in good:
            misses.append((q["text"], q["expect"], keys[:3]))
        if result.confident:
            confident += 1
            wrong += keys[0] not in good
        elif keys:
            lists += 1
            listed += len(keys)
            right += sum(k in good for k in keys)
            shown.append((q["text"], [(k, k in good) for k in keys]))
            first_page += any(k in good for k in keys[:PAGE])
    answered = [(q, ask(q["text"])) for q in out]
    listed_out = [(q["text"], [h.key for h in r.hits[:3]]) for q, r in answered if r.hits]
    wrong_hotline = [q["text"] for q, r in answered if not r.hits
                     and ("12328" if r.transport else "12345") != q["hotline"]]
    bad = [q["text"] for q in evalset.get("unanswerable", []) if ask(q["text"]).confident]
    return {"n": len(questions), "top1": top1, "top3": top3, "misses": misses,
            "confident": confident, "wrong": wrong, "lists": lists, "listed": listed,
            "right": right, "first_page": first_page, "out": len(out),
            "fallback": len(out) - len(listed_out), "listed_out": listed_out,
            "hotline": len(out) - len(listed_out) - len(wrong_hotline),
            "wrong_hotline": wrong_hotline,
            "unanswerable": len(evalset.get("unanswerable", [])),
            "bad": bad, "shown": shown}


def baseline_ask(docs: Sequence[SearchDoc]) -> Ask:
    """The baseline as an Ask: its keys as hits, never confident, never transport."""
    ranked = baseline(docs)
    return lambda text: SearchResult([_Hit(k) for k in ranked(text)])


class _Hit:
    """A baseline hit (a key; SearchResult only needs `.key` here)."""

    def __init__(self, key: str) -> None:
        self.key = key


def load(args: argparse.Namespace) -> tuple[list[SearchDoc], list[list[str]], dict]:
    """The visible records, the synonym groups and the eval set."""
    if args.records:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from genpack import generate

        text = generate(args.records, seed=7)
    else:
        text = args.pack.read_text(encoding="utf-8")
    docs, synonyms = pack_docs(tomllib.loads(text))
    return docs, synonyms, tomllib.loads(args.eval.read_text(encoding="utf-8"))


def _pct(part: int, whole: int) -> str:
    """A count and its share, 12 characters wide."""
    return f"{part:>5} {part / whole:6.1%}" if whole else f"{part:>5}    n/a"


def report(name: str, f: dict) -> None:
    """One row of the table."""
    print(f"{name:26}{_pct(f['top1'], f['n'])}{_pct(f['top3'], f['n'])}"
          f"{_pct(f['fallback'], f['out'])}{_pct(f['hotline'], f['fallback'])}"
          f"{_pct(f['right'], f['listed'])}{_pct(f['first_page'], f['lists'])}"
          f"{f['confident']:>7}/{f['wrong']:<3}{len(f['bad']):>7}")


def details(f: dict) -> None:
    """The misses of one index."""
    for text, expect, got in f["misses"]:
        print(f"  MISS {text!r}: expected {expect}, got {got}")
    for text, got in f["listed_out"]:
        print(f"  OUT-OF-SCOPE LISTED {text!r}: {got}")
    for text in f["wrong_hotline"]:
        print(f"  WRONG HOTLINE {text!r}")
    for text in f["bad"]:
        print(f"  CONFIDENT-UNANSWERABLE {text!r}")


def show_lists(f: dict) -> None:
    """Every list of one index: the question, then each listed record (+ right, - not)."""
    for text, listed in f["shown"]:
        print(f"  LIST {text!r}: " + ", ".join(f"{'+' if ok else '-'}{k}" for k, ok in listed))


def main(argv: Sequence[str] | None = None) -> int:
    """Print the figures; exit status 1 if an unanswerable question got confident."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pack", type=Path, default=PACK)
    parser.add_argument("--eval", type=Path, default=EVAL)
    parser.add_argument("--quiet", action="store_true", help="do not list the misses")
    parser.add_argument("--show-lists", action="store_true",
                        help="print every list the shipped index gives (+ right, - not)")
    parser.add_argument("--records", type=int, default=0,
                        help="ask against bench/genpack.generate(N) (the sample pack plus "
                             "synthetic distractors) instead of --pack")
    args = parser.parse_args(argv)
    docs, synonyms, evalset = load(args)
    started = time.perf_counter()
    index = SearchIndex(docs, synonyms)
    built = time.perf_counter() - started
    lexicon = domain_lexicon()
    rows = {
        "ours (lexicon + pack syn.)": index,
        "ours, lexicon only": SearchIndex(docs, ()),
        "ours, pack syn. only": SearchIndex(docs, synonyms, lexicon=EMPTY),
        "ours, neither": SearchIndex(docs, (), lexicon=EMPTY),
    }
    results = {name: figures(evalset, lambda t, i=ix: i.search(t, LIMIT))
               for name, ix in rows.items()}
    results["baseline (rank-bm25)"] = figures(evalset, baseline_ask(docs))
    print(f"records indexed: {len(index)} (build {built:.2f} s incl. jieba load), "
          f"pack synonym groups: {len(synonyms)}, domain lexicon: {len(lexicon.groups)} "
          f"groups / {lexicon.pairs} pairs; in-scope questions: {results['ours, neither']['n']},"
          f" out-of-scope: {results['ours, neither']['out']}, unanswerable: "
          f"{results['ours, neither']['unanswerable']}")
    print(f"{'':26}{'top-1':>12}{'top-3':>12}{'fallback':>12}{'hotline':>12}"
          f"{'list prec.':>12}{'page-1 hit':>12}{'conf/wrong':>11}{'unans.':>7}")
    for name, f in results.items():
        report(name, f)
    ours, base = results["ours (lexicon + pack syn.)"], results["baseline (rank-bm25)"]
    ratio = ours["top1"] / base["top1"] if base["top1"] else float("inf")
    print(f"ratio ours/baseline top-1: {ratio:.2f}")
    if not args.quiet:
        for name in ("ours (lexicon + pack syn.)", "ours, lexicon only"):
            print(f"{name}:")
            details(results[name])
    if args.show_lists:
        print("lists, ours (lexicon + pack syn.):")
        show_lists(ours)
    return 1 if ours["bad"] else 0


if __name__ == "__main__":
    sys.exit(main())
