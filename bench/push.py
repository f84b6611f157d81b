"""Push engine benchmark: sends/s, total time and worker memory vs a naive per-recipient baseline.

    .venv/bin/python bench/push.py                  # 100 000 and 10 000 recipients + baseline
    .venv/bin/python bench/push.py --recipients 20000 --small 5000 --baseline 2000

Everything real and local: a scratch PostgreSQL database (created and dropped), Redis
db 12 (**flushed**), the WeChat API simulator as its own process (`qzbot simulator`,
20 ms per call), two `qzbot worker --burst` processes. The campaign goes to every
subscriber of a topic through template messages. The naive baseline is one RQ job per
recipient calling wechatpy's `client.message.send_text` (wechatpy pointed at the
simulator, its token shared in Redis), run by the same two workers in the same run.
Memory: each worker's process tree is polled with psutil (peak RSS of the worker process
and of its largest child: the forked job horse or RQ's scheduler).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # before bench/ itself, so `push` is the package

import psutil  # noqa: E402
import requests  # noqa: E402
import wechatpy  # noqa: E402,F401 - preloaded by the baseline's workers (--preload bench.push)
from rq import Queue  # noqa: E402
from sqlalchemy import create_engine, func, select, text  # noqa: E402

APP_ID, APP_SECRET = "wxbenchpush000001", "bench-push-secret"
QZBOT = str(Path(sys.executable).parent / "qzbot")
TOPIC, SMALL_TOPIC, BASELINE_TOPIC = "出行资讯", "项目进展", "政策解读"
LOG = Path(os.environ.get("TMPDIR", "/tmp")) / "qzbot-bench-push-workers.log"


# --- the naive baseline's job (imported by the workers as bench.push) ------------------


def naive_send(openid: str, content: str) -> None:
    """One recipient, one job: a fresh wechatpy client (token shared in Redis), send_text."""
    import redis
    from wechatpy import WeChatClient
    from wechatpy.session.redisstorage import RedisStorage

    base = os.environ["BENCH_SIM_URL"]

    class SimClient(WeChatClient):
        API_BASE_URL = f"{base}/cgi-bin/"

        def fetch_access_token(self):
            return self._fetch_access_token(url=f"{base}/cgi-bin/token", params={
                "grant_type": "client_credential", "appid": self.appid,
                "secret": self.secret})

    storage = RedisStorage(redis.Redis.from_url(os.environ["QZBOT_REDIS__URL"]),
                           prefix="bench-wechatpy")
    SimClient(os.environ["QZBOT_WECHAT__APP_ID"], os.environ["QZBOT_WECHAT__APP_SECRET"],
              session=storage, timeout=10).message.send_text(openid, content)


# --- set-up ------------------------------------------------------------------------------


def free_port() -> int:
    """A free loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def scratch_database(admin_url: str, name: str) -> str:
    """Create an empty PostgreSQL database; returns its URL."""
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return admin_url.rsplit("/", 1)[0] + "/" + name


def drop_database(admin_url: str, name: str) -> None:
    """Drop the scratch database."""
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def environment(db_url: str, redis_url: str, sim_url: str, **push: str) -> dict[str, str]:
    """Settings of every qzbot process of the run (env overrides, no config file)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QZBOT_")}
    env.update({
        "QZBOT_WECHAT__APP_ID": APP_ID, "QZBOT_WECHAT__APP_SECRET": APP_SECRET,
        "QZBOT_WECHAT__TOKEN": "benchtoken", "QZBOT_WECHAT__API_BASE_URL": sim_url,
        "QZBOT_DATABASE__URL": db_url, "QZBOT_REDIS__URL": redis_url,
        "QZBOT_SECURITY__SECRET_KEY": "bench-push-secret-key-of-at-least-32-bytes",
        "QZBOT_LOG__LEVEL": "WARNING",
        "BENCH_SIM_URL": sim_url, "PYTHONPATH": str(ROOT)})
    env.update({f"QZBOT_PUSH__{k.upper()}": str(v) for k, v in push.items()})
    return env


def start_simulator(env: dict[str, str], port: int, latency_ms: float) -> subprocess.Popen:
    """`qzbot simulator` in its own process; returns once it answers."""
    proc = subprocess.Popen([QZBOT, "simulator", "--port", str(port), "--latency-ms",
                             str(int(latency_ms))], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}/_sim/health", timeout=1)
            return proc
        except requests.RequestException:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the simulator did not start")


def load_citizens(rt, n: int, topics: dict[str, int]) -> list[str]:
    """n active followers; the first topics[t] of them subscribe to topic t (any district)."""
    from bot.store.models import Follower, Subscription

    openids = [f"oBench{i:010d}" for i in range(n)]
    now = rt.now().replace(tzinfo=None)
    with rt.engine.begin() as conn:
        for start in range(0, n, 10_000):
            chunk = openids[start:start + 10_000]
            conn.execute(Follower.__table__.insert(), [
                {"openid": o, "active": True, "cs_sent": 0} for o in chunk])
            for topic, count in topics.items():
                subscribers = chunk[:max(0, count - start)]
                if subscribers:
                    conn.execute(Subscription.__table__.insert(), [
                        {"openid": o, "topic": topic, "district": "", "notice_kind": "",
                         "source": "bench", "created_at": now} for o in subscribers])
    return openids


def new_campaign(rt, topic: str) -> int:
    """An approved template-message campaign to every subscriber of `topic`."""
    from bot.store.models import Campaign

    now = rt.now().replace(tzinfo=None)
    with rt.sessions() as s:
        c = Campaign(title="公交线路调整", topic=topic, record_keys=["notice:bench"],
                     status="approved", author="bench", approver="bench2", payload={},
                     created_at=now, updated_at=now)
        s.add(c)
        s.flush()
        c.payload = {"text": f"公交线路调整 cid={c.id}", "once": None, "template": {
            "template_id": "TPL_BENCH", "channel": "template", "long_term": False,
            "data": {"first": {"value": "公交线路调整"}, "keyword1": {"value": "2026-12-01"}},
            "url": f"https://jtj.quanzhou.gov.cn/notice?cid={c.id}"}}
        bench_approval(s, c, rt.now())
        s.commit()
        return c.id


def bench_approval(session, campaign, now) -> None:
    """What sending re-checks (issue 6): its record exists 主动公开, the approval is sealed."""
    from bot.store.models import Record
    from push.review import seal

    key = "notice:bench"
    if session.scalar(select(Record.id).where(Record.kind == "notice",
                                              Record.rid == "bench")) is None:
        stamp = now.replace(tzinfo=None)
        session.add(Record(kind="notice", rid="bench", title="公交线路调整",
                           disclosure="主动公开", public=True, urgent=False,
                           data={"title": "公交线路调整"}, digest="0" * 64,
                           created_at=stamp, updated_at=stamp))
        session.flush()
    assert key in campaign.record_keys
    seal(session, campaign, now)


# --- running workers -------------------------------------------------------------------


class Workers:
    """`qzbot worker --burst` processes with their process trees' peak RSS."""

    def __init__(self, env: dict[str, str], preload: tuple[str, ...] = ()):
        self.env, self.preload = env, preload
        self.procs: list[subprocess.Popen] = []
        self.peak: list[list[int]] = []  # [main, largest child] bytes per worker
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def start_one(self) -> None:
        """Start one more worker."""
        args = [QZBOT, "worker", "--burst", *sum((["--preload", m] for m in self.preload), [])]
        log = open(LOG, "ab")  # noqa: SIM115 - the child keeps its own descriptor
        self.procs.append(subprocess.Popen(args, env=self.env, stdout=log, stderr=log))
        log.close()
        self.peak.append([0, 0])
        if not self._thread.is_alive():
            self._thread.start()

    def _poll(self) -> None:
        while not self._stop.wait(0.1):
            for i, proc in enumerate(self.procs):
                try:
                    main = psutil.Process(proc.pid)
                    rss = main.memory_info().rss
                    kids = [c.memory_info().rss for c in main.children(recursive=True)]
                except psutil.Error:
                    continue
                self.peak[i][0] = max(self.peak[i][0], rss)
                self.peak[i][1] = max([self.peak[i][1], *kids])

    def wait(self, timeout: float) -> None:
        """Wait for every worker to exit (burst: the queues are empty)."""
        deadline = time.monotonic() + timeout
        for proc in self.procs:
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        self._stop.set()

    def memory(self) -> str:
        """Peak RSS per worker: main / largest child, MiB."""
        return "  ".join(f"w{i + 1} {m / 2**20:.0f}/{c / 2**20:.0f}"
                         for i, (m, c) in enumerate(self.peak))


def counts(rt, campaign_id: int) -> dict[str, int]:
    """Delivery rows per status."""
    from bot.store.models import Delivery

    with rt.sessions() as s:
        return dict(s.execute(select(Delivery.status, func.count()).where(
            Delivery.campaign_id == campaign_id).group_by(Delivery.status)).all())


def run_engine(rt, env: dict[str, str], campaign_id: int, timeout: float) -> tuple[float, str]:
    """Fan out with two burst workers; returns (seconds, memory). The second worker starts
    once the first (running the planner) has enqueued a batch, so burst mode finds work."""
    from push.jobs import PUSH_QUEUE, enqueue_fanout

    workers = Workers(env)
    start = time.perf_counter()
    enqueue_fanout(rt, campaign_id)
    workers.start_one()
    queue = Queue(PUSH_QUEUE, connection=rt.redis)
    while not any("batch" in j for j in queue.job_ids) and time.perf_counter() - start < 60:
        time.sleep(0.02)
    workers.start_one()
    workers.wait(timeout)
    return time.perf_counter() - start, workers.memory()


def run_baseline(rt, env: dict[str, str], openids: list[str], timeout: float) -> float:
    """One RQ job per recipient (enqueued before the clock starts); returns seconds."""
    from rq import Queue as Q

    from push.jobs import PUSH_QUEUE

    queue = Q(PUSH_QUEUE, connection=rt.redis)
    queue.enqueue_many([Q.prepare_data("bench.push.naive_send", (o, "公交线路调整 cid=naive"),
                                       result_ttl=0) for o in openids])
    workers = Workers(env, preload=("bench.push",))
    start = time.perf_counter()
    workers.start_one()
    workers.start_one()
    workers.wait(timeout)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=10_000, help="second, smaller campaign")
    parser.add_argument("--baseline", type=int, default=5_000, help="naive baseline slice")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=32,
                        help="settings.push.concurrency (the duplicate bound per killed worker)")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/12", help="FLUSHED")
    args = parser.parse_args(argv)
    name = f"qzbot_bench_push_{os.getpid()}"
    db_url = scratch_database(args.pg, name)
    port = free_port()
    env = environment(db_url, args.redis, f"http://127.0.0.1:{port}",
                      batch_size=args.batch_size, concurrency=args.concurrency)
    sim = start_simulator(env, port, args.latency_ms)
    try:
        return report(args, env, port)
    finally:
        sim.terminate()
        sim.wait(10)
        drop_database(args.pg, name)


def report(args: argparse.Namespace, env: dict[str, str], port: int) -> int:
    """Load the citizens, run both campaigns and the baseline, print the figures."""
    from bot.runtime import build_runtime
    from bot.settings import load_settings
    from bot.store.db import upgrade

    rt = build_runtime(load_settings(env=env))
    rt.redis.flushdb()
    LOG.write_bytes(b"")
    upgrade(rt.engine)
    t0 = time.perf_counter()
    openids = load_citizens(rt, args.recipients, {TOPIC: args.recipients,
                                                  SMALL_TOPIC: args.small,
                                                  BASELINE_TOPIC: args.baseline})
    print(f"push benchmark: PostgreSQL, 2 x `qzbot worker --burst`, simulator "
          f"{args.latency_ms:.0f} ms/call (own process), batch {args.batch_size}, "
          f"concurrency {args.concurrency}; {args.recipients} citizens loaded in "
          f"{time.perf_counter() - t0:.1f} s")
    print(f"{'recipients':>10} {'sent':>8} {'other':>6} {'time s':>8} {'sends/s':>8}   "
          "peak RSS MiB per worker (worker / largest child)")
    rates = {}
    for topic, n in ((TOPIC, args.recipients), (SMALL_TOPIC, args.small)):
        requests.post(f"http://127.0.0.1:{port}/_sim/reset", timeout=30)
        cid = new_campaign(rt, topic)
        seconds, memory = run_engine(rt, env, cid, timeout=1800)
        got = counts(rt, cid)
        sent = got.pop("sent", 0)
        rates[n] = sent / seconds
        stats = requests.get(f"http://127.0.0.1:{port}/_sim/stats", timeout=60).json()
        print(f"{n:>10} {sent:>8} {sum(got.values()):>6} {seconds:>8.1f} {rates[n]:>8.0f}   "
              f"{memory}   (simulator accepted {stats['accepted_total']}, duplicates "
              f"{stats['duplicates']['extra_messages']})")
    requests.post(f"http://127.0.0.1:{port}/_sim/reset", timeout=30)
    seconds = run_baseline(rt, env, openids[:args.baseline], timeout=1800)
    accepted = requests.get(f"http://127.0.0.1:{port}/_sim/stats", timeout=60).json()
    naive = accepted["accepted_total"] / seconds
    print(f"naive baseline (one RQ job per recipient, wechatpy send_text): "
          f"{accepted['accepted_total']} of {args.baseline} sent in {seconds:.1f} s = "
          f"{naive:.0f} sends/s")
    print(f"ratio at {args.recipients} recipients: {rates[args.recipients] / naive:.1f}x "
          f"the baseline")
    print(f"(worker logs: {LOG})")
    rt.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
