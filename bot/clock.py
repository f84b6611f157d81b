"""The one clock. QZBOT_NOW (ISO date-time, Asia/Shanghai when naive) pins it."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


def parse_pinned(value: str) -> datetime:
    """Parse a QZBOT_NOW value; naive values are Asia/Shanghai local time."""
    dt = datetime.fromisoformat(value.strip())
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=SHANGHAI)
    return dt.astimezone(UTC)


def make_clock(env: dict[str, str] | None = None) -> Callable[[], datetime]:
    """Return a function giving the current aware UTC time (pinned when QZBOT_NOW is set)."""
    value = (os.environ if env is None else env).get("QZBOT_NOW", "").strip()
    if value:
        pinned = parse_pinned(value)
        return lambda: pinned
    return lambda: datetime.now(UTC)


def to_utc_naive(dt: datetime) -> datetime:
    """Store form: naive UTC. Naive input is taken as Asia/Shanghai local time."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=SHANGHAI)
    return dt.astimezone(UTC).replace(tzinfo=None)


def to_local_naive(dt: datetime) -> datetime:
    """Pack/display form: naive Asia/Shanghai from stored naive UTC (or aware)."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(SHANGHAI).replace(tzinfo=None)
