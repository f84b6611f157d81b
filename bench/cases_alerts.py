"""The casework alert job's cost over many open cases (issue 10's closing figure).

Run: .venv/bin/python bench/cases_alerts.py [--cases 10000] [--pg]

Builds N open applications (in handling, answer clocks received over the last 40 days, so
every level occurs: nothing yet, T-5, T-2, T-0, overdue) in a scratch database, then runs
cases.jobs.run_alerts twice at the same moment, each in its own transaction, and prints the
seconds and the cost per open case of each run. The second run must record nothing (the
CaseAlert unique key makes the job idempotent).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, insert, text  # noqa: E402

from bot.clock import SHANGHAI  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.store.db import make_engine, make_sessionmaker, transaction, upgrade  # noqa: E402
from bot.store.models import Case, CaseClock  # noqa: E402
from cases import clock, jobs  # noqa: E402

PG_ADMIN = os.environ.get("QZBOT_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
NOW = datetime(2026, 6, 15, 8, 0, tzinfo=SHANGHAI)


def build(sessions, n: int) -> None:
    rng = random.Random(10)
    today = NOW.date()
    at = NOW.astimezone(UTC).replace(tzinfo=None)
    with transaction(sessions) as s:
        cal = clock.work_calendar(s, NOW)
        cases, clocks = [], []
        for i in range(1, n + 1):
            received = today - timedelta(days=rng.randint(0, 40))
            due = cal.add(received, 20)
            cases.append({"id": i, "number": f"YSQ-2026-{i:06d}", "kind": "application",
                          "state": "handling", "channel": "letter", "openid": None,
                          "query_code_hash": "0" * 64, "applicant": {"name": "张三"},
                          "applicant_type": "自然人", "subject": "bench", "submitted_at": at,
                          "received_on": received, "due_on": due.on,
                          "due_provisional": due.provisional, "department_id": 1 + i % 5,
                          "created_at": at, "updated_at": at})
            clocks.append({"case_id": i, "kind": "answer", "started_on": received,
                           "working_days": 20, "paused_days": 0, "due_on": due.on,
                           "provisional": due.provisional, "status": "running"})
        for start in range(0, n, 2000):
            s.execute(insert(Case), cases[start:start + 2000])
            s.execute(insert(CaseClock), clocks[start:start + 2000])


def measure(url: str, n: int, name: str) -> None:
    engine = make_engine(url)
    upgrade(engine)
    sessions = make_sessionmaker(engine)
    print(f"{name}: building {n} open cases ...", flush=True)
    build(sessions, n)
    settings = Settings()
    for attempt in ("first run", "second run"):
        started = time.perf_counter()
        with transaction(sessions) as s:
            result = jobs.run_alerts(s, settings, NOW)
        seconds = time.perf_counter() - started
        print(f"  {attempt:10}  {seconds:6.2f} s  {seconds / n * 1000:6.3f} ms per open case  "
              f"checked {result.checked}  recorded {result.total} {result.sent}")
    engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--pg", action="store_true", help="PostgreSQL too (scratch database)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="qzbot-bench-cases-") as tmp:
        measure(f"sqlite:///{tmp}/cases.sqlite3", args.cases, "SQLite")
    if args.pg:
        name = f"qzbot_bench_cases_{os.getpid()}"
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            measure(PG_ADMIN.rsplit("/", 1)[0] + "/" + name, args.cases, "PostgreSQL")
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
