"""Answer quality of the query index on the eval set, against a rank-bm25 baseline.

Run: .venv/bin/python bench/answers.py [--pack PATH] [--eval PATH] [--quiet]

Loads the sample pack (keeping only what citizens may see, as the data layer does),
builds our SearchIndex and a baseline (rank_bm25.BM25Okapi over jieba.lcut of each
record's title and text, no synonyms), and prints top-1/top-3 accuracy of both on the
same questions, our misses, and how many unanswerable questions got confident=True.
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

from handlers.search import KINDS, SearchDoc, SearchIndex, doc_from_record

ROOT = Path(__file__).resolve().parent.parent
PACK = ROOT / "bot" / "data" / "sample_pack.toml"
EVAL = ROOT / "tests" / "eval" / "questions.toml"
# The eval set's "today": notices that ended before this are no longer answered.
NOW = datetime(2026, 11, 27, 10, 0)


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
        """The baseline's best three keys for a question."""
        scores = model.get_scores(cut(query))
        order = sorted(range(len(keys)), key=lambda i: -scores[i])
        return [keys[i] for i in order[:3] if scores[i] > 0]

    return ranked


def accuracy(questions: Sequence[dict], ranked: Callable[[str], list[str]]) -> dict:
    """Top-1 and top-3 hit counts (a hit is `expect` or one of `also`) and the misses."""
    top1 = top3 = 0
    misses = []
    for q in questions:
        good = {q["expect"], *q.get("also", [])}
        keys = ranked(q["text"])
        top1 += bool(keys) and keys[0] in good
        top3 += any(k in good for k in keys[:3])
        if not keys or keys[0] not in good:
            misses.append((q["text"], q["expect"], keys[:3]))
    return {"top1": top1, "top3": top3, "misses": misses}


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


def confidence(index: SearchIndex, questions: Sequence[dict],
               unanswerable: Sequence[dict]) -> tuple[int, list[str], list[str]]:
    """(answerable answered confidently, of those the wrong ones, confident unanswerable)."""
    results = [(q, index.search(q["text"])) for q in questions]
    wrong = [q["text"] for q, r in results
             if r.confident and r.hits[0].key not in {q["expect"], *q.get("also", [])}]
    bad = [q["text"] for q in unanswerable if index.search(q["text"]).confident]
    return sum(r.confident for _, r in results), wrong, bad


def main(argv: Sequence[str] | None = None) -> int:
    """Print the figures; exit status 1 if an unanswerable question got confident."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pack", type=Path, default=PACK)
    parser.add_argument("--eval", type=Path, default=EVAL)
    parser.add_argument("--quiet", action="store_true", help="do not list the misses")
    parser.add_argument("--records", type=int, default=0,
                        help="ask against bench/genpack.generate(N) (the sample pack plus "
                             "synthetic distractors) instead of --pack")
    args = parser.parse_args(argv)
    docs, synonyms, evalset = load(args)
    questions, unanswerable = evalset.get("q", []), evalset.get("unanswerable", [])
    started = time.perf_counter()
    index = SearchIndex(docs, synonyms)
    built = time.perf_counter() - started
    ours = accuracy(questions, lambda text: [h.key for h in index.search(text, 3).hits])
    base = accuracy(questions, baseline(docs))
    answered, wrong, bad = confidence(index, questions, unanswerable)

    n = max(1, len(questions))
    print(f"records indexed: {len(index)} (build {built:.2f} s incl. jieba load), "
          f"synonym groups: {len(synonyms)}, questions: {len(questions)}, "
          f"unanswerable: {len(unanswerable)}")
    print(f"{'':10}{'top-1':>14}{'top-3':>14}")
    for name, res in (("ours", ours), ("baseline", base)):
        print(f"{name:10}{res['top1']:>6} {res['top1'] / n:6.1%}{res['top3']:>6} "
              f"{res['top3'] / n:6.1%}")
    ratio = ours["top1"] / base["top1"] if base["top1"] else float("inf")
    print(f"ratio ours/baseline top-1: {ratio:.2f}")
    print(f"answerable questions answered confidently: {answered}/{len(questions)}, "
          f"of which wrong: {len(wrong)}")
    print(f"unanswerable questions with confident=True: {len(bad)}/{len(unanswerable)}")
    if not args.quiet:
        for text, expect, got in ours["misses"]:
            print(f"  MISS {text!r}: expected {expect}, got {got}")
        for text in wrong:
            print(f"  CONFIDENT-WRONG {text!r}")
        for text in bad:
            print(f"  CONFIDENT-UNANSWERABLE {text!r}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
