"""Follow/unfollow, QR scans, locations, link views and platform notifications."""

from __future__ import annotations

import logging
import math

from bot.clock import to_utc_naive
from bot.router import SUCCESS, Context, Reply
from bot.store.queries import record_interaction, upsert_follower
from bot.wechat.messages import Message

log = logging.getLogger("qzbot.events")

DEFAULT_WELCOME = (
    "欢迎关注“泉州交通运输”！您可以直接发文字或语音提问，例如：\n"
    "· 办事指南：“从业资格证怎么补办”“网约车驾驶员证怎么办”\n"
    "· 咨询投诉：“出租车投诉电话”“12328”\n"
    "· 出行资讯：“渡轮今天开不开”“哪里封路”\n"
    "· 政策与公开：“泉交办〔2020〕19号”“信息公开申请多久答复”\n"
    "· 重点项目进展：“某某大桥修到哪了”\n"
    "回复“订阅”可订阅出行资讯、项目进展、政务公开等消息推送。"
)


def scene_of(event_key: str) -> str | None:
    """The QR scene of a follow through a parametric QR code (EventKey qrscene_...)."""
    return event_key[len("qrscene_"):] if event_key.startswith("qrscene_") else None


def handle_subscribe(msg: Message, ctx: Context) -> Reply:
    """Follow: record the follower (and QR source), answer with what the account can do."""
    source = scene_of(msg.event_key)
    now = to_utc_naive(ctx.now)
    values = {"active": True, "followed_at": now, "unfollowed_at": None}
    if source:
        values["source"] = source[:128]
    upsert_follower(ctx.session, msg.from_user, ctx.now, **values)
    return Reply(text=ctx.settings.bot.welcome or DEFAULT_WELCOME)


def handle_unsubscribe(msg: Message, ctx: Context) -> Reply:
    """Unfollow: the follower becomes inactive; WeChat shows no reply, so `success`.

    Inactive followers are outside every audience (the audience query requires
    Follower.active), so this alone stops every push. Subscriptions and consent rows are
    kept on purpose: a citizen who follows again gets the subscriptions they chose back
    (and 全部退订 removes them); consent that WeChat no longer honours fails with 43101
    and is revoked then.
    """
    upsert_follower(ctx.session, msg.from_user, ctx.now, active=False,
                    unfollowed_at=to_utc_naive(ctx.now))
    ctx.notes["unfollowed"] = True
    return SUCCESS


def handle_scan(msg: Message, ctx: Context) -> Reply:
    """SCAN by an existing follower: record the scene."""
    record_interaction(ctx.session, msg.from_user, "scan", {"scene": msg.event_key}, ctx.now)
    upsert_follower(ctx.session, msg.from_user, ctx.now, active=True)
    return SUCCESS


LOCATION_RECEIVED = "已收到您的位置。请告诉我您想了解的出行信息，例如“附近有没有封路”。"


def coordinates(lat: str, lon: str) -> tuple[float, float] | None:
    """(latitude, longitude) when both are finite and on the globe; else None."""
    try:
        y, x = float(lat), float(lon)
    except ValueError:
        return None
    # nan/inf parse as floats but are no place (and JSON/PostgreSQL columns would refuse
    # or mangle them); neither are latitudes past the poles
    if not (math.isfinite(y) and math.isfinite(x) and -90 <= y <= 90 and -180 <= x <= 180):
        return None
    return y, x


def handle_location_event(msg: Message, ctx: Context) -> Reply:
    """Reported location (event or location message): store the latest valid position.

    Invalid coordinates are not stored, but the citizen still gets the normal reply.
    """
    reply = Reply(text=LOCATION_RECEIVED) if msg.msg_type == "location" else SUCCESS
    point = coordinates(msg.latitude or msg.location_x, msg.longitude or msg.location_y)
    if point is None:
        log.warning("location with invalid coordinates oh=%s: not stored", ctx.openid_hash)
        return reply
    values = {"latitude": point[0], "longitude": point[1], "location_at": to_utc_naive(ctx.now)}
    upsert_follower(ctx.session, msg.from_user, ctx.now, **values)
    record_interaction(ctx.session, msg.from_user, "location",
                       {"lat": point[0], "lon": point[1], "label": msg.label}, ctx.now)
    return reply


def handle_view(msg: Message, ctx: Context) -> Reply:
    """VIEW (menu link opened): record it."""
    record_interaction(ctx.session, msg.from_user, "view", {"url": msg.event_key[:500]},
                       ctx.now)
    return SUCCESS


def handle_platform_event(msg: Message, ctx: Context) -> Reply:
    """Send-job-finished notifications: record (consent events go to handlers.consent)."""
    detail = {"event": msg.event, "status": msg.raw.get("Status", "")}
    record_interaction(ctx.session, msg.from_user, msg.event[:32], detail, ctx.now)
    return SUCCESS


def handle_unknown_event(msg: Message, ctx: Context) -> Reply:
    """Events we do not know: log and answer `success` (never a 500)."""
    log.info("unknown event %r", msg.event[:40])
    return SUCCESS
