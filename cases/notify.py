"""Progress pushes to the citizen (issue 10 item 4), through push's channels, recorded per notice.

A transition the citizen cares about is a CaseEvent with `detail["notify"]` (a
bot.vocab.CaseNotice value; cases/actions.py writes it and lists the ids in
CaseResult.notices). The edge commits, then calls `enqueue_notices(rt, ids)`; the job
`send_notice(event_id)` delivers one notice:

1. the customer-service window (a citizen message within 48 h, fewer than 5 texts since):
   a text (push.channels rule 2, the slot reserved atomically);
2. else a subscribe notification under an available consent for the progress template
   (the one-time consent the H5 receipt page and the chat ask for: cases/links.consent_url),
   consumed atomically (push.channels rule 1); or a template message when the template's
   channel is "template" (rule 3);
3. else nothing: recorded `skipped` with the reason (no_openid, unfollowed, no_channel).

The progress template is the one configured for the 政务公开 topic ([push.templates."政务公开"]):
a case's progress is 政府信息公开 business. A one-time grant from /h5/consent subscribes the
citizen to no topic, so it is used by a case notice unless he also follows 政务公开.

Record ("like a delivery"): one CaseEvent per notice, action "notified", actor "system",
detail {notice_event, notice, status, channel, msgid, errcode, reason, attempts}. Exactly
once, as push/deliver.py: the record is committed `sending` (with the channel reserved)
before the send; a run that finds a `sending` record left by a dead worker marks it
`unknown` and never resends (no idempotency key on the platform: never blind-retry). A send
that surely did not go out (transport, token, quota) frees its reservation and is retried
by a later job, at most MAX_ATTEMPTS times. A consent consumed for a case notice carries
`used_by = -event_id` (negative: never a campaign delivery's id, which push.channels.resume
looks up). Notices the citizen saw at once (the chat reply, the H5 receipt) are recorded
`shown` by `mark_shown` in the edge's transaction and never pushed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import redis as redis_lib
from rq import Queue
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.clock import SHANGHAI, to_utc_naive
from bot.jobs import job_runtime
from bot.runtime import Runtime, openid_hash
from bot.settings import Settings
from bot.store.db import transaction
from bot.store.models import Case, CaseEvent, Follower
from bot.vocab import (
    ANSWER_REASON_LABELS,
    CASE_KIND_LABELS,
    CASE_NOTICE_LABELS,
    CaseKind,
    CaseNotice,
    Topic,
)
from bot.wechat.replies import split_text
from push import channels
from push.channels import Action, Send
from push.consent import topic_template
from push.jobs import PUSH_QUEUE
from push.ratelimit import Paused, runtime_limiter
from push.render import LIMITS, field_type

log = logging.getLogger("qzbot.cases.notify")

NOTIFY_TOPIC = Topic.GOV.value  # whose configured template carries case progress
ACTION = "notified"
SYSTEM = "system"
FINAL = frozenset({"sent", "failed", "unknown", "skipped", "shown"})
MAX_ATTEMPTS = 3
RETRY_DELAYS = (30, 300)  # seconds before the 2nd and 3rd try of a send that did not go out
LOCK_TTL = 300
TEXT_LIMIT = 1800  # bytes of a notice text (customer-service text; the passive limit is 2048)
ONCE_TITLE = "办件进度通知"  # legacy one-time message title, <= 15 characters


@dataclass(frozen=True)
class NoticeOutcome:
    """What became of one notice: status sent | failed | unknown | skipped | shown | retry |
    busy (another run holds it) | missing (no such notice event)."""

    event_id: int
    status: str
    channel: str | None = None
    reason: str | None = None
    errcode: int | None = None
    msgid: str | None = None


# --- what the citizen reads -------------------------------------------------------------------


def notice_template(settings: Settings) -> dict[str, Any] | None:
    """The configured progress template ({template_id, channel, long_term, fields}) or None."""
    return topic_template(settings, NOTIFY_TOPIC)


def _cn_date(value: str | None) -> str:
    if not value:
        return ""
    year, month, day = value[:10].split("-")
    return f"{int(year)}年{int(month)}月{int(day)}日"


def notice_text(case: Case, event: CaseEvent) -> str:
    """The text of a notice (Chinese), at most TEXT_LIMIT bytes."""
    d = event.detail or {}
    kind = d.get("notify")
    what = "政府信息公开申请" if case.kind == CaseKind.APPLICATION else "留言"
    head = f"【办件进度】您的{what}（编号 {case.number}）"
    due = _cn_date(d.get("due_on"))
    provisional = "（预计，节假日安排待正式公布）" if case.due_provisional and due else ""
    if kind == CaseNotice.RECEIVED:
        body = "已收到。"
        if case.kind == CaseKind.APPLICATION:
            body = f"已收到，收到申请之日为{_cn_date(d.get('received_on'))}。"
            if due:
                body += f"我们将在{due}前答复{provisional}。"
    elif kind == CaseNotice.ACCEPTED:
        body = f"已受理（{case.category or '留言'}）。"
        if due:
            body += f"我们将在{due}前答复{provisional}。"
    elif kind == CaseNotice.REJECTED:
        body = f"不予受理。理由：{d.get('reason', '')}"
    elif kind == CaseNotice.CORRECTION:
        body = f"需要补正：{d.get('what', '')}"
        if due:
            body += f"\n请在{due}前提交补正材料，逾期未补正的，视为放弃申请。"
    elif kind == CaseNotice.EXTENDED:
        body = f"答复期限延长{d.get('days', '')}个工作日，新的答复期限为{due}{provisional}。"
    elif kind == CaseNotice.ANSWERED:
        if case.kind == CaseKind.APPLICATION:
            body = f"已答复（{case.answer_type or ''}），送达方式：{d.get('how', '')}。"
            if d.get("how") == "微信" and case.answer_text:
                body += "\n答复内容：\n" + case.answer_text
        else:
            body = "已答复：\n" + (case.answer_text or "")
    elif kind == CaseNotice.CLOSED:
        reason = ANSWER_REASON_LABELS.get(d.get("reason") or "", d.get("reason") or "")
        body = f"已终止处理（其他处理：{reason}）。"
    elif kind == CaseNotice.VISIT:
        body = "已答复。请对答复作出评价：回复“满意”“基本满意”或“不满意”。"
    else:
        body = CASE_NOTICE_LABELS.get(kind or "", "有新进展") + "。"
    tail = f"\n回复“查询 {case.number}”可查看办理进度。"
    text = head + body + tail
    if len(text.encode()) > TEXT_LIMIT:
        room = TEXT_LIMIT - len(tail.encode()) - len("…".encode())
        text = split_text(head + body, room)[0] + "…" + tail
    return text


def _fit(key: str, value: str) -> str:
    limit = LIMITS.get(field_type(key))
    if limit is not None and len(value) > limit:
        return value[: limit - 1] + "…"
    return value


def notice_payload(settings: Settings, case: Case, event: CaseEvent,
                   now: datetime) -> dict[str, Any]:
    """The payload for push.channels: text, template (if configured) and the legacy "once"."""
    text = notice_text(case, event)
    label = CASE_NOTICE_LABELS.get((event.detail or {}).get("notify") or "", "进展")
    today = now.astimezone(SHANGHAI)
    sources = {"title": f"{label}：{case.number}", "summary": text.split("\n", 1)[0][:60],
               "date": today.date().isoformat(), "time": today.strftime("%Y-%m-%d %H:%M"),
               "district": "全市", "kind": CASE_KIND_LABELS.get(case.kind, ""),
               "category": CASE_KIND_LABELS.get(case.kind, ""), "url": "", "count": "1"}
    payload: dict[str, Any] = {"text": text, "template": None,
                               "once": {"title": ONCE_TITLE, "content": text[:200]}}
    spec = notice_template(settings)
    if spec:
        data = {}
        for key, source in (spec.get("fields") or {}).items():
            kind = field_type(key)
            value = sources.get(str(source), str(source))
            if kind in ("date", "time"):
                value = sources[kind]
            data[key] = {"value": _fit(key, value)}
        payload["template"] = {"template_id": spec["template_id"],
                               "channel": spec.get("channel", "subscribe"),
                               "long_term": bool(spec.get("long_term", False)),
                               "data": data, "url": ""}
    return payload


# --- records -------------------------------------------------------------------------------


def _records(session: Session, notice: CaseEvent) -> list[CaseEvent]:
    rows = session.scalars(select(CaseEvent).where(CaseEvent.case_id == notice.case_id,
                                                   CaseEvent.action == ACTION)
                           .order_by(CaseEvent.id))
    return [r for r in rows if (r.detail or {}).get("notice_event") == notice.id]


def _new_record(session: Session, case: Case, notice: CaseEvent, now: datetime,
                **detail: Any) -> CaseEvent:
    record = CaseEvent(case_id=case.id, at=to_utc_naive(now), actor=SYSTEM, action=ACTION,
                       from_state=None, to_state=None,
                       detail={"notice_event": notice.id,
                               "notice": (notice.detail or {}).get("notify"), **detail})
    session.add(record)
    session.flush()
    return record


def _update(record: CaseEvent, now: datetime, **detail: Any) -> None:
    record.detail = {**(record.detail or {}), **{k: v for k, v in detail.items()}}
    record.at = to_utc_naive(now)


def mark_shown(session: Session, event_ids: tuple[int, ...] | list[int], how: str,
               now: datetime) -> None:
    """Record notices the citizen saw at once (`how`: "chat_reply", "h5_receipt"); they are
    never pushed. In the edge's transaction."""
    for event_id in event_ids:
        notice = session.get(CaseEvent, event_id)
        case = session.get(Case, notice.case_id) if notice is not None else None
        if case is None or _records(session, notice):
            continue
        _new_record(session, case, notice, now, status="shown", channel=how, attempts=0)


def unsent_notices(session: Session, limit: int = 500) -> list[int]:
    """Notice events with no final record (a lost enqueue, a retry due): for a sweep."""
    notices = session.scalars(select(CaseEvent).where(CaseEvent.detail.is_not(None))
                              .order_by(CaseEvent.id.desc()).limit(limit * 20))
    wanted = [e for e in notices if (e.detail or {}).get("notify")]
    done = {(r.detail or {}).get("notice_event") for r in session.scalars(
        select(CaseEvent).where(CaseEvent.action == ACTION,
                                CaseEvent.case_id.in_({e.case_id for e in wanted} or {0})))
        if (r.detail or {}).get("status") in FINAL}
    return sorted(e.id for e in wanted if e.id not in done)[:limit]


# --- sending ---------------------------------------------------------------------------------


def _choose(session: Session, delivery_id: int, follower: Follower | None,
            payload: dict[str, Any], now: datetime, attempts: int,
            window: bool = True) -> Send | str:
    """The customer-service window first (it spends no consent), then push's rules."""
    if window:
        first = channels.choose(session, delivery_id, follower, {"text": payload["text"]}, now,
                                attempts)
        if not isinstance(first, str) or first == "unfollowed":
            return first
    return channels.choose(session, delivery_id, follower, payload, now, attempts)


def _claim(rt: Runtime, event_id: int, window: bool) -> tuple[NoticeOutcome | None,
                                                              tuple | None]:
    """In one committed transaction: decide the channel, reserve it, record `sending`."""
    now = rt.now()
    with transaction(rt.sessions) as session:
        notice = session.get(CaseEvent, event_id)
        if notice is None or not (notice.detail or {}).get("notify"):
            return NoticeOutcome(event_id, "missing"), None
        case = session.get(Case, notice.case_id)
        found = _records(session, notice)
        record = found[-1] if found else None
        state = (record.detail or {}).get("status") if record else None
        if state in FINAL:
            d = record.detail
            return NoticeOutcome(event_id, state, d.get("channel"), d.get("reason"),
                                 d.get("errcode"), d.get("msgid")), None
        if state == "sending":  # a worker died mid-send: it may have gone out
            _update(record, now, status="unknown", reason="worker_lost")
            return NoticeOutcome(event_id, "unknown", record.detail.get("channel"),
                                 "worker_lost"), None
        attempts = int((record.detail or {}).get("attempts", 0)) + 1 if record else 1
        if record is None:
            record = _new_record(session, case, notice, now, status="pending", attempts=0)
        if not case.openid:
            _update(record, now, status="skipped", reason="no_openid", attempts=attempts)
            return NoticeOutcome(event_id, "skipped", reason="no_openid"), None
        follower = session.get(Follower, case.openid)
        payload = notice_payload(rt.settings, case, notice, now)
        choice = _choose(session, -notice.id, follower, payload, now, attempts, window)
        if isinstance(choice, str):
            _update(record, now, status="skipped", reason=choice, attempts=attempts)
            log.info("case notice %s oh=%s skipped: %s", event_id, openid_hash(case.openid),
                     choice)
            return NoticeOutcome(event_id, "skipped", reason=choice), None
        _update(record, now, status="sending", channel=choice.channel.value, attempts=attempts)
        return None, (choice, payload, record.id)


def _finish(rt: Runtime, record_id: int, send: Send, payload: dict[str, Any],
            outcome: Any) -> tuple[NoticeOutcome, bool]:
    """Record the send's outcome; (outcome, try the next channel)."""
    now = rt.now()
    event_id = -send.delivery_id
    if isinstance(outcome, (Paused, redis_lib.RedisError)):
        verdict = channels.Verdict(Action.QUOTA, reason="paused")
    else:
        verdict = channels.judge(outcome)
    with transaction(rt.sessions) as session:
        record = session.get(CaseEvent, record_id)
        common = {"channel": send.channel.value, "errcode": verdict.errcode,
                  "reason": verdict.reason}
        if verdict.action == Action.SENT:
            _update(record, now, status="sent", msgid=verdict.msgid, **common)
            return NoticeOutcome(event_id, "sent", send.channel.value, msgid=verdict.msgid), False
        if verdict.action == Action.FAILED:
            channels.after_failure(session, send, verdict.errcode, payload, now)
            _update(record, now, status="failed", **common)
            return NoticeOutcome(event_id, "failed", send.channel.value, verdict.reason,
                                 verdict.errcode), False
        if verdict.action == Action.UNKNOWN:
            _update(record, now, status="unknown", **common)
            return NoticeOutcome(event_id, "unknown", send.channel.value, verdict.reason,
                                 verdict.errcode), False
        channels.release(session, send)  # surely not sent: the reservation is free again
        if verdict.action == Action.NEXT_CHANNEL:
            channels.close_window(session, send.openid)
            _update(record, now, status="pending", **common)
            return NoticeOutcome(event_id, "pending", send.channel.value, verdict.reason,
                                 verdict.errcode), True
        if verdict.action == Action.STOP or send.attempts >= MAX_ATTEMPTS:
            _update(record, now, status="failed", **common)
            return NoticeOutcome(event_id, "failed", send.channel.value, verdict.reason,
                                 verdict.errcode), False
        if verdict.action == Action.QUOTA and verdict.errcode:  # 45009/45011: pause everyone
            runtime_limiter(rt).pause(send.channel.value)
        _update(record, now, status="retry", **common)
        return NoticeOutcome(event_id, "retry", send.channel.value, verdict.reason,
                             verdict.errcode), False


def _perform(rt: Runtime, send: Send, payload: dict[str, Any]) -> Any:
    """Wait for the channel's rate-limit slot and call WeChat; never raises."""
    try:
        runtime_limiter(rt).acquire(send.channel.value)
        return channels.perform(channels.push_client(rt), send, payload)
    except Exception as exc:  # classified by _finish
        return exc


def deliver_notice(rt: Runtime, event_id: int) -> NoticeOutcome:
    """Send one notice (see the module docstring); safe to call again for the same id."""
    lock = f"qzbot:cases:notice:{event_id}"
    if not rt.redis.set(lock, "1", nx=True, ex=LOCK_TTL):
        return NoticeOutcome(event_id, "busy")
    try:
        window = True
        for _ in range(2):  # a closed window (45015/45047) falls back to the consent once
            done, claimed = _claim(rt, event_id, window)
            if done is not None:
                return done
            send, payload, record_id = claimed
            outcome, next_channel = _finish(rt, record_id, send, payload,
                                            _perform(rt, send, payload))
            log.info("case notice %s oh=%s %s via %s%s", event_id, openid_hash(send.openid),
                     outcome.status, outcome.channel,
                     f" errcode={outcome.errcode}" if outcome.errcode else "")
            if not next_channel:
                return outcome
            window = False
        return outcome
    finally:
        rt.redis.delete(lock)


# --- jobs ----------------------------------------------------------------------------------


def send_notice(event_id: int, attempt: int = 1) -> str:
    """RQ job: deliver one notice; a send that surely did not go out is tried again later."""
    rt = job_runtime()
    outcome = deliver_notice(rt, event_id)
    if outcome.status == "retry" and attempt < MAX_ATTEMPTS:
        delay = RETRY_DELAYS[min(attempt, len(RETRY_DELAYS)) - 1]
        Queue(PUSH_QUEUE, connection=rt.redis).enqueue_in(
            timedelta(seconds=delay), send_notice, event_id, attempt + 1,
            description=f"case notice {event_id} try {attempt + 1}")
    return outcome.status


def enqueue_notices(rt: Runtime, event_ids: tuple[int, ...] | list[int]) -> int:
    """Queue the notices of a committed use-case (CaseResult.notices); returns how many.
    Redis down: logged; `unsent_notices` finds them again for a sweep."""
    queued = 0
    try:
        queue = Queue(PUSH_QUEUE, connection=rt.redis)
        for event_id in event_ids:
            queue.enqueue(send_notice, int(event_id), job_id=f"qzbot-case-notice-{event_id}",
                          description=f"case notice {event_id}", failure_ttl=7 * 86400)
            queued += 1
    except redis_lib.RedisError:
        log.error("could not queue %d case notice(s)", len(event_ids) - queued)
    return queued


__all__ = ["NoticeOutcome", "deliver_notice", "enqueue_notices", "mark_shown", "notice_payload",
           "notice_template", "notice_text", "send_notice", "unsent_notices", "NOTIFY_TOPIC"]
