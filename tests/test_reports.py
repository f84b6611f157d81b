"""push/reports.py (delivery figures by GROUP BY) and push/explain.py (every errcode and reason
the engine can record has plain Chinese words)."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, insert, text

from bot.clock import to_utc_naive
from bot.errors import NotFound
from bot.store.models import Delivery
from bot.wechat.client import TOKEN_ERRCODES
from push import explain, reports
from push.channels import ERROR_CLASSES
from push.fanout import halt_reason
from push.recovery import HALTED
from push.sendcheck import STOP_REASONS, UNFOLLOWED, UNSUBSCRIBED
from tests.pushkit import make_campaign

PUSH = Path(__file__).resolve().parents[1] / "push"
BRIEF_CODES = {43004: "未关注", 43101: "拒绝接收", 45009: "频率", 40003: "openid 无效",
               45047: "48 小时", 47003: "模板参数不合法", 40037: "模板ID无效"}


def recorded_reasons() -> set[str]:
    """Every reason a delivery row can be given, read from the engine's code."""
    found = {reason for _, reason in ERROR_CLASSES.values()}
    for name in ("channels.py", "deliver.py", "fanout.py", "recovery.py", "jobs.py"):
        text = (PUSH / name).read_text(encoding="utf-8")
        found |= set(re.findall(r'reason(?:: str)? ?= ?"([a-z_]+)"', text))
        found |= set(re.findall(r'\(Action\.[A-Z_]+, "([a-z_]+)"\)', text))
    # channels.choose returns its skip reason as a bare string
    found |= set(re.findall(r'return "([a-z_]+)"', (PUSH / "channels.py").read_text()))
    found |= {*STOP_REASONS, UNFOLLOWED, UNSUBSCRIBED}
    found |= {halt_reason(status, None) for status in HALTED}
    return found


def test_the_scan_finds_the_reasons_the_engine_records():
    reasons = recorded_reasons()
    assert {"not_following", "no_channel", "too_many_attempts", "job_failed", "interrupted",
            "ambiguous", "campaign_cancelled", "record_expired", "unsubscribed"} <= reasons


def test_every_reason_and_errcode_is_explained_in_chinese():
    for reason in recorded_reasons():
        assert reason in explain.REASON_TEXT, f"no explanation for reason {reason!r}"
        assert re.search(r"[\u4e00-\u9fff]", explain.explain_reason(reason))
    for code in {*ERROR_CLASSES, *TOKEN_ERRCODES, *BRIEF_CODES}:
        assert code in explain.ERRCODE_TEXT, f"no explanation for errcode {code}"
    for code, words in BRIEF_CODES.items():
        assert words in explain.explain_errcode(code)
    assert "99999" in explain.explain_errcode(99999)  # unknown codes still say something
    assert explain.explain("api_error", 40003) == explain.ERRCODE_TEXT[40003]
    assert explain.explain("no_channel", None) == explain.REASON_TEXT["no_channel"]
    assert explain.explain_change("record notice:n1").startswith("所附信息 notice:n1")


def test_mask_openid():
    assert reports.mask_openid("oCitizen0000000000001234") == "oCit***1234"
    assert reports.mask_openid("short") == "***"


def seed(session, campaign_id: int, now, rows: list[tuple]) -> None:
    session.execute(insert(Delivery), [
        {"campaign_id": campaign_id, "openid": f"o{campaign_id}-{i:08d}", "batch": 1,
         "status": status, "channel": channel, "reason": reason, "errcode": errcode,
         "attempts": 1, "updated_at": to_utc_naive(now + timedelta(seconds=40 * i))}
        for i, (status, channel, reason, errcode) in enumerate(rows)])


def test_report_figures_match_the_rows(runtime):
    now = runtime.now()
    with runtime.sessions() as s:
        c = make_campaign(s, now, status="sending", audience_preview=9)
        other = make_campaign(s, now, status="sending")
        seed(s, c.id, now, [("sent", "bizsend", None, None)] * 3
             + [("failed", "bizsend", "consent_refused", 43101)] * 2
             + [("skipped", None, "no_channel", None)]
             + [("unknown", "custom", "ambiguous", None)]
             + [("sending", "custom", None, None), ("pending", None, None, None)])
        seed(s, other.id, now, [("sent", "template", None, None)] * 4)
        s.commit()
        report = reports.delivery_report(s, c.id)
        f = report.funnel
        assert (f.targeted, f.eligible, f.sent, f.failed, f.skipped, f.unknown, f.open) == (
            9, 8, 3, 2, 1, 1, 2)
        assert f.audience_preview == 9 and report.finished is False
        assert report.channels == {"bizsend": {"sent": 3, "failed": 2},
                                   "custom": {"unknown": 1, "sending": 1}}
        top = report.problems[0]
        assert (top.status, top.reason, top.errcode, top.count) == ("failed", "consent_refused",
                                                                    43101, 2)
        assert "拒绝接收" in top.explanation
        minutes = report.per_minute  # rows 40 s apart from 10:00 Shanghai (02:00 UTC)
        assert minutes[0]["minute"] == "2026-11-27T10:00+08:00"
        assert sum(p["sent"] + p["failed"] + p["unknown"] for p in minutes) == 6
        rows = list(reports.delivery_rows(s, c.id, page=4))  # keyset pages of 4
        assert len(rows) == 9 and len({r[0] for r in rows}) == 9
        assert all("***" in r[1] for r in rows)
        assert list(reports.delivery_rows(s, c.id, masked=False))[0][1].startswith(f"o{c.id}-")
        with pytest.raises(NotFound):
            reports.stats(s, c.id + 99)


def test_stats_stay_fast_and_never_load_rows_at_100k(runtime):
    """100 000 delivery rows: every figure is a GROUP BY returning a handful of rows."""
    now = runtime.now()
    with runtime.sessions() as s:
        c = make_campaign(s, now, status="done")
        # generated inside the database (one statement): 7 sent, 1 failed, 1 skipped,
        # 1 unknown in every 10 rows, answered over 5 minutes
        s.execute(text("""
            WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 99999)
            INSERT INTO deliveries (campaign_id, openid, batch, status, channel, reason,
                                    errcode, attempts, updated_at)
            SELECT :cid, 'oBulk' || CAST(i AS VARCHAR(10)), i / 1000,
                   CASE WHEN i % 10 < 7 THEN 'sent' WHEN i % 10 = 7 THEN 'failed'
                        WHEN i % 10 = 8 THEN 'skipped' ELSE 'unknown' END,
                   CASE WHEN i % 10 < 8 THEN 'bizsend' WHEN i % 10 = 9 THEN 'custom' END,
                   CASE WHEN i % 10 = 7 THEN 'not_following' WHEN i % 10 = 8 THEN 'no_channel'
                        WHEN i % 10 = 9 THEN 'ambiguous' END,
                   CASE WHEN i % 10 = 7 THEN 43004 END, 1,
                   CASE i % 5 WHEN 0 THEN :t0 WHEN 1 THEN :t1 WHEN 2 THEN :t2 WHEN 3 THEN :t3
                        ELSE :t4 END
            FROM n"""), {"cid": c.id, **{f"t{k}": to_utc_naive(now + timedelta(minutes=k))
                                         for k in range(5)}})
        s.commit()
        fetched = []
        engine = s.get_bind()

        def count_rows(conn, cursor, statement, parameters, context, executemany):
            fetched.append(statement)

        event.listen(engine, "after_cursor_execute", count_rows)
        try:
            started = time.perf_counter()
            data = reports.stats(s, c.id)
            elapsed = time.perf_counter() - started
        finally:
            event.remove(engine, "after_cursor_execute", count_rows)
    assert data["funnel"]["targeted"] == 100_000 and data["funnel"]["sent"] == 70_000
    assert data["finished"] is True
    assert len(fetched) <= 5  # the campaign, then one GROUP BY per figure
    assert [p["sent"] for p in data["per_minute"]] == [20_000, 20_000, 10_000, 10_000, 10_000]
    assert elapsed < 2.0, f"stats took {elapsed:.2f}s on 100 000 rows"
