"""Per-citizen pending choices ("reply 1..5"), kept in Redis for the context TTL (10 min)."""

from __future__ import annotations

import json
import logging

import redis

from bot.router import Context

log = logging.getLogger("qzbot.choices")
DIGITS = {str(i): i for i in range(1, 10)} | {chr(0xFF10 + i): i for i in range(1, 10)}


def _key(ctx: Context) -> str:
    return f"qzbot:ctx:{ctx.openid_hash}"


def remember(ctx: Context, keys: list[str]) -> None:
    """Store the listed record keys for this citizen."""
    try:
        ctx.redis.set(_key(ctx), json.dumps(keys), ex=ctx.settings.bot.context_ttl_seconds)
    except redis.RedisError as exc:
        log.warning("choice context not stored: %s", type(exc).__name__)


def pick(ctx: Context, number: int) -> str | None:
    """The record key the citizen picked, or None when no list is pending or out of range."""
    try:
        raw = ctx.redis.get(_key(ctx))
    except redis.RedisError as exc:
        log.warning("choice context unavailable: %s", type(exc).__name__)
        return None
    if not raw:
        return None
    keys = json.loads(raw)
    return keys[number - 1] if 1 <= number <= len(keys) else None


def as_choice(text: str) -> int | None:
    """The number when the text is just a choice digit (half- or full-width), else None."""
    text = text.strip().rstrip("。.")
    return DIGITS.get(text) if len(text) == 1 else None
