"""Push engine correctness under faults: quota bursts, a revoked token, refusals, a killed worker.

    .venv/bin/python bench/push_faults.py                # 20 000 eligible recipients
    .venv/bin/python bench/push_faults.py --recipients 5000

Same set-up as bench/push.py (scratch PostgreSQL database, Redis db 12 **flushed**, the
simulator in its own process at 20 ms per call) with two long-running `qzbot worker`
processes. The citizens: eligible subscribers of 出行资讯 in 南安市 (long-term consent,
a few with only an open customer-service window, a few with neither), 5% of them refusing
at WeChat (43101), and ineligible ones: unfollowed, not subscribed, another district.
While the campaign runs: 45009 and 45011 bursts, the access token invalidated, one worker
killed with SIGKILL and started again. Then the checks, each PASS or FAIL (exit 1).
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # before bench/ itself, so `push` is the package

import psutil  # noqa: E402
import requests  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from bench.push import (  # noqa: E402
    LOG,
    QZBOT,
    bench_approval,
    drop_database,
    environment,
    free_port,
    scratch_database,
    start_simulator,
)

TOPIC, DISTRICT, TPL = "出行资讯", "南安市", "TPL_TRAVEL_BENCH"


def citizens(rt, n: int) -> dict[str, list[str]]:
    """Followers, subscriptions and consents; returns the openids per kind."""
    from bot.store.models import Consent, Follower, Subscription

    now = rt.now().replace(tzinfo=None)
    kinds = {"consent": [], "window": [], "neither": [], "unfollowed": [], "unsubscribed": [],
             "elsewhere": []}
    rng = random.Random(7)
    for i in range(n):
        roll = rng.random()
        kind = "window" if roll < 0.03 else "neither" if roll < 0.05 else "consent"
        kinds[kind].append(f"oFault{i:09d}")
    for kind in ("unfollowed", "unsubscribed", "elsewhere"):
        kinds[kind] = [f"oFault{kind[:3]}{i:06d}" for i in range(max(100, n // 20))]
    with rt.engine.begin() as conn:
        for kind, openids in kinds.items():
            conn.execute(Follower.__table__.insert(), [
                {"openid": o, "active": kind != "unfollowed", "cs_sent": 0,
                 "last_message_at": now if kind == "window" else None} for o in openids])
            if kind != "unsubscribed":
                conn.execute(Subscription.__table__.insert(), [
                    {"openid": o, "topic": TOPIC, "notice_kind": "", "source": "bench",
                     "district": "丰泽区" if kind == "elsewhere" else rng.choice(["", DISTRICT]),
                     "created_at": now} for o in openids])
            if kind in ("consent", "unfollowed", "elsewhere"):
                conn.execute(Consent.__table__.insert(), [
                    {"openid": o, "template_id": TPL, "scene": "long_term", "long_term": True,
                     "status": "available", "source": "popup", "created_at": now,
                     "updated_at": now} for o in openids])
    return kinds


def campaign(rt) -> int:
    """An approved subscribe-notification campaign to 出行资讯 subscribers in 南安市."""
    from bot.store.models import Campaign

    now = rt.now().replace(tzinfo=None)
    with rt.sessions() as s:
        c = Campaign(title="公交线路调整", topic=TOPIC, district=DISTRICT, status="approved",
                     record_keys=["notice:bench"], author="bench", approver="bench2",
                     payload={}, created_at=now, updated_at=now)
        s.add(c)
        s.flush()
        c.payload = {
            "text": f"【泉州交通运输】公交线路调整 cid={c.id}",
            "once": {"title": "线路调整", "content": f"公交线路调整 cid={c.id}"},
            "template": {"template_id": TPL, "channel": "subscribe", "long_term": True,
                         "data": {"thing1": {"value": "公交线路调整"},
                                  "time2": {"value": "2026-12-01 08:00"}},
                         "url": f"https://jtj.quanzhou.gov.cn/notice?cid={c.id}"}}
        bench_approval(s, c, rt.now())  # sending re-checks the record and the approval
        s.commit()
        return c.id


def worker(env: dict[str, str]) -> subprocess.Popen:
    """A long-running `qzbot worker` in its own process group."""
    log = open(LOG, "ab")  # noqa: SIM115 - the child keeps its own descriptor
    proc = subprocess.Popen([QZBOT, "worker"], env=env, stdout=log, stderr=log,
                            start_new_session=True)
    log.close()
    return proc


def progress(rt, campaign_id: int) -> tuple[int, int, str]:
    """(final rows, all rows, campaign status)."""
    from bot.store.models import Campaign, Delivery

    with rt.sessions() as s:
        rows = dict(s.execute(select(Delivery.status, func.count()).where(
            Delivery.campaign_id == campaign_id).group_by(Delivery.status)).all())
        status = s.scalar(select(Campaign.status).where(Campaign.id == campaign_id))
    total = sum(rows.values())
    return total - rows.get("pending", 0) - rows.get("sending", 0), total, status


def drive(rt, env: dict[str, str], sim: str, campaign_id: int, planned: int,
          timeout: float) -> tuple[float, int]:
    """Run the campaign through the faults; returns (seconds, workers killed)."""
    from push.jobs import enqueue_fanout

    events = [  # (fraction of rows final, what, action)
        (0.15, "45009 burst: half the bizsend calls for 1.5 s", lambda: fault(sim, 45009)),
        (0.35, "access token invalidated", lambda: requests.post(
            f"{sim}/_sim/invalidate_token", json={}, timeout=10)),
        (0.50, "45011 burst: half the bizsend calls for 1.5 s", lambda: fault(sim, 45011)),
        (0.70, "SIGKILL worker 1 (its whole process tree), restart it", None)]
    workers = [worker(env), worker(env)]
    start = time.perf_counter()
    enqueue_fanout(rt, campaign_id)
    killed = 0
    try:
        while time.perf_counter() - start < timeout:
            done, total, status = progress(rt, campaign_id)
            if status not in ("approved", "sending"):
                break
            while events and total >= planned and done >= events[0][0] * planned:
                at, what, action = events.pop(0)
                print(f"  t={time.perf_counter() - start:6.1f}s  {done:>6} rows final: {what}")
                if action is None:
                    kill_tree(workers[0].pid)
                    workers[0].wait()
                    killed += 1
                    workers[0] = worker(env)
                else:
                    action()
            time.sleep(0.2)
        return time.perf_counter() - start, killed
    finally:
        for proc in workers:
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in workers:
            proc.wait(30)


def kill_tree(pid: int) -> None:
    """SIGKILL the worker and every descendant (its work horse has a process group of its
    own), as a crash of the machine would."""
    root = psutil.Process(pid)
    victims = [root, *root.children(recursive=True)]
    for victim in victims:
        victim.kill()
    psutil.wait_procs(victims, timeout=10)


def fault(sim: str, errcode: int) -> None:
    """A quota burst on bizsend."""
    requests.post(f"{sim}/_sim/faults", timeout=10, json={"rules": [
        {"kind": "errcode", "errcode": errcode, "api": "message/subscribe/bizsend",
         "fraction": 0.5, "duration_s": 1.5}]}).raise_for_status()


def check(name: str, ok: bool, detail: str) -> bool:
    """Print one check."""
    print(f"  {'PASS' if ok else 'FAIL'}  {name}: {detail}")
    return ok


def verify(rt, sim: str, campaign_id: int, kinds: dict[str, list[str]], killed: int,
           concurrency: int) -> bool:
    """The checks: accounting, exactly once (within the bound), nothing to the ineligible."""
    from bot.store.models import Campaign, Consent, Delivery
    from push.fanout import campaign_counts

    with rt.sessions() as s:
        status = s.scalar(select(Campaign.status).where(Campaign.id == campaign_id))
        counts = campaign_counts(s, campaign_id)
        rows = {d.openid: d for d in s.scalars(select(Delivery).where(
            Delivery.campaign_id == campaign_id))}
        revoked = s.scalar(select(func.count()).select_from(Consent).where(
            Consent.status == "revoked"))
    received = Counter(m["touser"] for m in requests.get(
        f"{sim}/_sim/messages", timeout=120).json()["messages"])
    stats = requests.get(f"{sim}/_sim/stats", timeout=60).json()
    st = counts["status"]
    print(f"  rows: {counts['total']} = " + " + ".join(f"{k} {v}" for k, v in sorted(st.items()))
          + f"; reasons {counts['reason']}; errcodes {counts['errcode']}; "
          f"channels {counts['channel']}")
    calls = stats["calls"].get("message/subscribe/bizsend", {})
    print(f"  simulator: accepted {stats['accepted_total']}, bizsend answers {calls}, "
          f"tokens {stats['tokens']}, faults fired {stats['faults_fired']}")
    eligible = set(kinds["consent"] + kinds["window"] + kinds["neither"])
    sent = {o for o, d in rows.items() if d.status == "sent"}
    duplicates = sum(n - 1 for n in received.values())
    ineligible = set(kinds["unfollowed"] + kinds["unsubscribed"] + kinds["elsewhere"])
    refused = {o for o, d in rows.items() if d.errcode == 43101}
    results = [
        check("every row accounted", counts["total"] == len(rows) == sum(
            st.get(k, 0) for k in ("sent", "failed", "skipped", "unknown")),
            f"sent + failed + skipped + unknown = {counts['total']} rows, none pending"),
        check("rows are exactly the eligible citizens", set(rows) == eligible,
              f"{len(rows)} rows for {len(eligible)} eligible"),
        check("every sent row received", sent <= set(received), f"{len(sent)} sent rows"),
        check("exactly once (beyond the in-flight bound)",
              duplicates <= concurrency * killed and set(received) <= eligible,
              f"{duplicates} duplicate message(s), bound {concurrency} x {killed} killed"),
        check("nothing to ineligible citizens", not (set(received) & ineligible),
              f"{len(ineligible)} unfollowed/unsubscribed/other-district citizens, "
              f"{len(set(received) & ineligible)} messaged"),
        check("43101 revoked the consent", revoked >= len(refused) > 0,
              f"{len(refused)} refusals, {revoked} consents revoked"),
        check("campaign done", status == "done", f"status {status}")]
    return all(results)


def main(argv: list[str] | None = None) -> int:
    """Run the faults scenario and print the checks."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--lease-seconds", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=280.0)
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/12", help="FLUSHED")
    args = parser.parse_args(argv)
    name = f"qzbot_bench_faults_{os.getpid()}"
    db_url = scratch_database(args.pg, name)
    port = free_port()
    sim = f"http://127.0.0.1:{port}"
    env = environment(db_url, args.redis, sim, concurrency=args.concurrency,
                      lease_seconds=args.lease_seconds)
    env["QZBOT_LOG__LEVEL"] = "INFO"
    simulator = start_simulator(env, port, 20)
    try:
        return run(args, env, sim)
    finally:
        simulator.terminate()
        simulator.wait(10)
        drop_database(args.pg, name)


def run(args: argparse.Namespace, env: dict[str, str], sim: str) -> int:
    """Load, drive, verify."""
    from bot.runtime import build_runtime
    from bot.settings import load_settings
    from bot.store.db import upgrade
    from bot.store.models import Campaign
    from push.audience import preview

    rt = build_runtime(load_settings(env=env))
    rt.redis.flushdb()
    LOG.write_bytes(b"")
    upgrade(rt.engine)
    kinds = citizens(rt, args.recipients)
    refused = kinds["consent"][::20]  # 5% of them refuse at WeChat: 43101
    requests.post(f"{sim}/_sim/followers", json={"followers": None, "refused": refused},
                  timeout=30).raise_for_status()
    campaign_id = campaign(rt)
    with rt.sessions() as s:
        planned = preview(s, s.get(Campaign, campaign_id))
    print(f"faults run: {planned} eligible of {sum(map(len, kinds.values()))} citizens "
          f"({len(refused)} refusing at WeChat), 2 x `qzbot worker`, concurrency "
          f"{args.concurrency}, lease {args.lease_seconds} s, simulator 20 ms/call")
    seconds, killed = drive(rt, env, sim, campaign_id, planned, args.timeout)
    print(f"  finished in {seconds:.1f} s (quota pauses: 30 s, doubling; worker logs {LOG})")
    ok = verify(rt, sim, campaign_id, kinds, killed, args.concurrency)
    rt.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
