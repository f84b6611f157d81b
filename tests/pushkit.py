"""Helpers for the push-engine tests: citizens, consents, campaigns, a simulator, workers."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import requests
from rq import Queue, SimpleWorker
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select

from bot.clock import to_utc_naive
from bot.store.models import (
    Campaign,
    CampaignStatus,
    Consent,
    Delivery,
    DeliveryStatus,
    Follower,
    Record,
    Subscription,
)
from push.jobs import PUSH_QUEUE

TPL = "TPL_TRAVEL"
RATES = {"bizsend": "2000", "custom": "2000", "template": "2000", "subscribe_once": "2000"}
FINAL = {s.value for s in DeliveryStatus} - {"pending", "sending"}


def oid(n: int, prefix: str = "oCit") -> str:
    """A simulator-valid openid."""
    return f"{prefix}{n:08d}"


def payload(channel: str = "subscribe", cid: str = "c1") -> dict:
    """A rendered campaign payload; `cid=` in it lets the simulator count duplicates."""
    return {
        "template": {"template_id": TPL, "channel": channel, "long_term": True,
                     "data": {"thing1": {"value": "公交线路调整"},
                              "time2": {"value": "2026-11-28 08:00"}},
                     "url": f"https://jtj.quanzhou.gov.cn/notice?cid={cid}"},
        "text": f"【泉州交通运输】公交线路调整 cid={cid}",
        "once": {"title": "线路调整", "content": f"公交线路调整，详见公告 cid={cid}"},
    }


def add_follower(session, openid: str, *, active: bool = True,
                 last_message_at: datetime | None = None, cs_sent: int = 0) -> None:
    """A follower row."""
    session.add(Follower(openid=openid, active=active, cs_sent=cs_sent,
                         last_message_at=last_message_at and to_utc_naive(last_message_at)))


def subscribe(session, openid: str, now: datetime, topic: str = "出行资讯",
              district: str = "", notice_kind: str = "") -> None:
    """A topic subscription."""
    session.add(Subscription(openid=openid, topic=topic, district=district,
                             notice_kind=notice_kind, source="message",
                             created_at=to_utc_naive(now)))


def grant(session, openid: str, now: datetime, *, long_term: bool = True,
          scene: str = "long_term", source: str = "popup", template_id: str = TPL) -> Consent:
    """A consent row, written directly (the consent ledger's own API is tested elsewhere)."""
    consent = Consent(openid=openid, template_id=template_id, scene=scene,
                      long_term=long_term, status="available", source=source,
                      created_at=to_utc_naive(now), updated_at=to_utc_naive(now))
    session.add(consent)
    return consent


def ensure_record(session, key: str, now: datetime, **fields) -> Record:
    """The record "kind:id", created 主动公开 (a travel notice without an end) if missing."""
    kind, _, rid = key.partition(":")
    record = session.scalar(select(Record).where(Record.kind == kind, Record.rid == rid))
    if record is None:
        values = {"kind": kind, "rid": rid, "title": "公交线路调整", "disclosure": "主动公开",
                  "public": True, "urgent": False, "data": {"title": "公交线路调整"},
                  "digest": "0" * 64, "created_at": to_utc_naive(now),
                  "updated_at": to_utc_naive(now)}
        record = Record(**{**values, **fields})
        session.add(record)
        session.flush()
    return record


def make_campaign(session, now: datetime, **fields) -> Campaign:
    """An approved campaign created with the model directly (not through push.campaigns)."""
    values = {"title": "公交线路调整", "topic": "出行资讯", "record_keys": ["notice:n1"],
              "status": CampaignStatus.APPROVED.value, "author": "alice", "approver": "bob",
              "payload": payload(), "created_at": to_utc_naive(now),
              "updated_at": to_utc_naive(now)}
    values.update(fields)
    for key in values["record_keys"]:  # sending re-checks that its records are 主动公开
        ensure_record(session, key, now)
    campaign = Campaign(**values)
    session.add(campaign)
    session.flush()
    from push.review import APPROVED_STATES, seal

    if campaign.status in APPROVED_STATES and "approved_hash" not in fields:
        seal(session, campaign, now)  # approved = what it holds now (push.review.recheck)
    return campaign


def rows(rt, campaign_id: int) -> dict[str, Delivery]:
    """The campaign's delivery rows by openid."""
    with rt.sessions() as s:
        return {d.openid: d for d in s.scalars(select(Delivery).where(
            Delivery.campaign_id == campaign_id))}


def campaign(rt, campaign_id: int) -> Campaign:
    """A fresh copy of the campaign."""
    with rt.sessions() as s:
        return s.get(Campaign, campaign_id)


def drain(rt, campaign_id: int | None = None, timeout: float = 30.0) -> None:
    """Run burst SimpleWorkers (with the scheduler) until the queue and schedule are empty
    and, if given, the campaign left `sending`/`approved`."""
    queue = Queue(PUSH_QUEUE, connection=rt.redis)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        SimpleWorker([queue], connection=rt.redis).work(burst=True, with_scheduler=True,
                                                        logging_level="WARNING")
        waiting = len(queue) + ScheduledJobRegistry(queue=queue).count
        status = campaign(rt, campaign_id).status if campaign_id else None
        if not waiting and status not in ("sending", "approved", "scheduled"):
            return
        time.sleep(0.1)
    jobs = [(j.id, j.get_status()) for j in queue.get_jobs()]
    raise AssertionError(f"push queue not drained in {timeout}s (campaign {campaign_id}): "
                         f"queued {jobs}, scheduled {ScheduledJobRegistry(queue=queue).count}")


class Sim:
    """A simulator served from a thread: its URL, control API and recorded messages."""

    def __init__(self, running):
        self.running = running
        self.url = running.url

    def messages(self, **filters) -> list[dict]:
        """Accepted messages (oldest first)."""
        return requests.get(f"{self.url}/_sim/messages", params=filters,
                            timeout=10).json()["messages"]

    def received(self) -> dict[str, int]:
        """How many messages each openid received."""
        counts: dict[str, int] = {}
        for m in self.messages():
            counts[m["touser"]] = counts.get(m["touser"], 0) + 1
        return counts

    def stats(self) -> dict:
        """Per-API outcome counts, token calls, duplicates."""
        return requests.get(f"{self.url}/_sim/stats", timeout=10).json()

    def faults(self, *rules: dict, latency_ms: float | None = None) -> None:
        """Install fault rules (FaultRule dicts)."""
        body = {"rules": list(rules)}
        if latency_ms is not None:
            body["latency_ms"] = latency_ms
        requests.post(f"{self.url}/_sim/faults", json=body, timeout=10).raise_for_status()

    def recipients(self, followers: list[str] | None = None,
                   refused: list[str] | None = None) -> None:
        """Who follows (None: everybody) and whose consent is gone (43101)."""
        body = {"followers": followers, "refused": refused or []}
        requests.post(f"{self.url}/_sim/followers", json=body, timeout=10).raise_for_status()


def ago(now: datetime, **delta) -> datetime:
    """now - timedelta(**delta)."""
    return now - timedelta(**delta)


def worker_env(db_url: str, sim_url: str, **push) -> dict[str, str]:
    """Environment for a `qzbot worker` subprocess on the test database, Redis and simulator."""
    import os

    from tests.conftest import APP_ID, OLD_AES_KEY, REDIS_TEST_URL

    env = {k: v for k, v in os.environ.items() if k not in ("QZBOT_CONFIG", "QZBOT_NOW")}
    env.update({
        "QZBOT_WECHAT__APP_ID": APP_ID, "QZBOT_WECHAT__APP_SECRET": "test-secret",
        # `qzbot worker` refuses published secrets (the WeChat sample's token and key)
        "QZBOT_WECHAT__TOKEN": "qzbot-test-worker-token",
        "QZBOT_WECHAT__ENCODING_AES_KEY": OLD_AES_KEY,
        "QZBOT_WECHAT__API_BASE_URL": sim_url, "QZBOT_WECHAT__API_TIMEOUT_SECONDS": "2",
        "QZBOT_DATABASE__URL": db_url, "QZBOT_REDIS__URL": REDIS_TEST_URL,
        "QZBOT_SECURITY__SECRET_KEY": "test-worker-secret-key-of-at-least-32-bytes",
        "QZBOT_LOG__LEVEL": "INFO"})
    for key, value in push.items():
        if isinstance(value, dict):
            value = "{" + ", ".join(f'{k} = "{v}"' for k, v in value.items()) + "}"
        env[f"QZBOT_PUSH__{key.upper()}"] = str(value)
    return env


def start_worker(env: dict[str, str], log_path, burst: bool = False):
    """`qzbot worker` in its own process group (so a kill takes its horse and scheduler)."""
    import subprocess
    import sys
    from pathlib import Path

    qzbot = str(Path(sys.executable).parent / "qzbot")
    out = open(log_path, "wb")  # noqa: SIM115 - closed with the process by stop_worker
    proc = subprocess.Popen([qzbot, "worker", *(["--burst"] if burst else [])], env=env,
                            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    proc.log_file = out
    return proc


def kill_tree(pid: int) -> None:
    """SIGKILL a process and every descendant, as a crash of its machine would: RQ's work
    horse runs in a process group of its own, so killing the worker's group is not enough."""
    import psutil

    try:
        root = psutil.Process(pid)
        victims = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for victim in victims:
        try:
            victim.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(victims, timeout=10)


def stop_worker(proc, kill: bool = False, timeout: float = 20.0) -> None:
    """Stop a worker: SIGTERM to its process group (warm shutdown), or kill its whole tree."""
    import os
    import signal

    if kill:
        kill_tree(proc.pid)
    else:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    try:
        proc.wait(timeout=timeout)
    finally:
        proc.log_file.close()


def count_rows(rt, campaign_id: int, *statuses: str) -> int:
    """Rows of the campaign in any of `statuses`."""
    from sqlalchemy import func

    with rt.sessions() as s:
        return s.scalar(select(func.count()).select_from(Delivery).where(
            Delivery.campaign_id == campaign_id, Delivery.status.in_(statuses)))


def wait_for(predicate, timeout: float, what: str, interval: float = 0.02) -> None:
    """Poll until predicate() is true."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def push_runtime(db_url, redis_client, clock, sim, **push):
    """A runtime whose WeChat API is the simulator, with small batches and short leases."""
    from bot.runtime import build_runtime
    from tests.conftest import make_settings

    settings = make_settings(
        db_url, wechat={"api_base_url": sim.url, "api_timeout_seconds": 0.5},
        push={"batch_size": 7, "concurrency": 4, "lease_seconds": 3, "rate_limits": RATES,
              **push})
    rt = build_runtime(settings, redis_client=redis_client, clock=clock)
    rt.claim_process()  # not a forked work horse
    return rt
