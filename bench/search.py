"""Speed and memory of the query index on a generated 5 000-record pack.

Run: .venv/bin/python bench/search.py [--records N] [--queries N] [--profile]

Prints the jieba dictionary load time, the index build time (first build, which also
adds the pack's words to jieba, and a rebuild as after a content change), per-query latency
(p50/p99/max over eval questions, random on-topic questions and garbage; also with the
index's unit memo off, as for words never asked before) and the
process's peak RSS before loading and after building and querying. ``--profile`` also prints
the cProfile top 25 (by internal time) of the uncached queries, run once more.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import resource
import sys
import time
import tomllib
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from answers import EVAL, pack_docs  # noqa: E402

from handlers.search import SearchDoc, SearchIndex  # noqa: E402
from handlers.search.score import UnitMemo  # noqa: E402
from handlers.search.text import tokenizer  # noqa: E402

FILLERS = ["请问", "我想问一下", "", "", "你好，"]
ENDINGS = ["怎么办", "在哪里办", "要带什么材料", "电话多少", "还开吗", "？", "", "呢"]
GARBAGE = ["", "😀" * 40, "a" * 10_000, "公交" * 5_000, "\x00\x01\x02", "泉交办〔" * 500,
           "1" * 3_000, "？？？", "的了吗呢" * 200]


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (Linux reports KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def make_queries(docs: Sequence[SearchDoc], count: int, seed: int = 7) -> list[str]:
    """A mix of eval questions, random colloquial questions about records, and garbage."""
    rng = random.Random(seed)
    evalset = tomllib.loads(EVAL.read_text(encoding="utf-8")) if EVAL.exists() else {}
    asked = [q["text"] for q in evalset.get("q", []) + evalset.get("unanswerable", [])]
    queries: list[str] = []
    while len(queries) < count:
        roll = rng.random()
        if roll < 0.4 and asked:
            queries.append(rng.choice(asked))
        elif roll < 0.95:
            doc = rng.choice(docs)
            words = doc.title[: rng.randint(2, max(2, len(doc.title)))]
            queries.append(f"{rng.choice(FILLERS)}{words}{rng.choice(ENDINGS)}")
        else:
            queries.append(rng.choice(GARBAGE))
    return queries


def percentile(values: Sequence[float], share: float) -> float:
    """The value at the given share (0..1) of the sorted values."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main(argv: Sequence[str] | None = None) -> int:
    """Generate, build, query, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=5_000)
    parser.add_argument("--queries", type=int, default=2_000)
    parser.add_argument("--profile", action="store_true",
                        help="print the cProfile top 25 of the uncached queries")
    args = parser.parse_args(argv)
    rss_start = peak_rss_mb()

    from genpack import generate

    pack = tomllib.loads(generate(args.records, seed=7))
    docs, synonyms = pack_docs(pack)
    rss_pack = peak_rss_mb()

    started, cpu = time.perf_counter(), time.process_time()
    tokenizer()
    jieba_s, jieba_cpu = time.perf_counter() - started, time.process_time() - cpu
    rss_jieba = peak_rss_mb()
    started, cpu = time.perf_counter(), time.process_time()
    index = SearchIndex(docs, synonyms)
    build_s, build_cpu = time.perf_counter() - started, time.process_time() - cpu
    rss_index = peak_rss_mb()
    started, cpu = time.perf_counter(), time.process_time()
    SearchIndex(docs, synonyms)  # what a content change costs a running process
    rebuild_s, rebuild_cpu = time.perf_counter() - started, time.process_time() - cpu

    queries = make_queries(docs, args.queries)
    # uncached: every question pays parsing, scoring and reranking (words met before are
    # remembered per index: score.UnitMemo); then once more with that memo off
    latencies = uncached(index, queries)
    memo, index._units = index._units, UnitMemo(index._tables, 0)
    cold = uncached(index, queries)
    index._units = memo
    cached = []
    for query in queries:
        index.search(query)  # fill the per-index answer cache
    for query in queries:
        started = time.perf_counter()
        index.search(query)
        cached.append((time.perf_counter() - started) * 1000.0)

    print(f"pack: {args.records} records generated, {len(index)} visible and indexed, "
          f"{len(synonyms)} synonym groups")
    # CPU time too: on a shared machine the wall clock also counts other processes.
    print(f"jieba dictionary load: {jieba_s:.2f} s (cpu {jieba_cpu:.2f} s)")
    print(f"index build: {build_s:.2f} s (cpu {build_cpu:.2f} s, "
          f"{len(index) / build_s:,.0f} records/s); rebuild in the same process: "
          f"{rebuild_s:.2f} s (cpu {rebuild_cpu:.2f} s)")
    print(f"queries: {len(latencies)}  p50 {percentile(latencies, 0.5):.2f} ms  "
          f"p99 {percentile(latencies, 0.99):.2f} ms  max {max(latencies):.2f} ms (uncached); "
          f"repeated question (cache hit) p50 {percentile(cached, 0.5):.3f} ms  "
          f"p99 {percentile(cached, 0.99):.3f} ms")
    print(f"  with the unit memo off (every word scored afresh): p50 "
          f"{percentile(cold, 0.5):.2f} ms  p99 {percentile(cold, 0.99):.2f} ms")
    print(f"peak RSS: before loading {rss_start:.0f} MB, pack parsed {rss_pack:.0f} MB, "
          f"jieba loaded {rss_jieba:.0f} MB, index built {rss_index:.0f} MB, "
          f"after queries {peak_rss_mb():.0f} MB")
    if args.profile:
        profile(index, queries)
    return 0


def uncached(index: SearchIndex, queries: Sequence[str]) -> list[float]:
    """Per-question latencies (ms) of the search without the per-question answer cache."""
    latencies = []
    for query in queries:
        started = time.perf_counter()
        index._rank(query, 5)
        latencies.append((time.perf_counter() - started) * 1000.0)
    return latencies


def profile(index: SearchIndex, queries: Sequence[str]) -> None:
    """cProfile the uncached queries once more and print the top 25 by internal time."""
    profiler = cProfile.Profile()
    profiler.enable()
    for query in queries:
        index._rank(query, 5)
    profiler.disable()
    pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    sys.exit(main())
