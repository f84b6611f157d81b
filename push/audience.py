"""Who receives a campaign: active followers chosen by explicit list, everyone, or topic.

The audience is a SELECT of distinct openids in openid order, so the planner can walk it
with keyset pagination (`audience_page`) and never hold 100 000 openids at once.
Unfollowed citizens (Follower.active false) and citizens who sent 全部退订
(Follower.opted_out_at set, cleared by a later 订阅) are never part of any audience, an
explicit list or `--all` included. The same definition decides at send time who is still
in it (`still_in`): rows planned for a citizen who left since are skipped, not sent.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import ColumnElement, Select, false, func, or_, select
from sqlalchemy.orm import Session

from bot.store.models import Campaign, Follower, Subscription

# Explicit lists are bound as one IN (...) parameter each: SQLite allows 32 766 bound
# parameters per statement and psycopg 65 535, so explicit lists are for targeted sends.
EXPLICIT_MAX = 30_000


def _matches(column: ColumnElement, wanted: str | None) -> ColumnElement[bool] | None:
    """A subscription's "" means any value; a campaign without a value takes everyone."""
    if not wanted:
        return None
    return or_(column == "", column == wanted)


def _reachable() -> ColumnElement[bool]:
    """A push may reach this follower: following, and not opted out of everything."""
    return Follower.active.is_(True) & Follower.opted_out_at.is_(None)


def audience_select(campaign: Campaign, only: Collection[str] | None = None) -> Select:
    """The campaign's recipients (among `only`, if given): distinct openids, in order."""
    active = _reachable()
    if campaign.openids:
        if len(campaign.openids) > EXPLICIT_MAX:
            raise ValueError(f"explicit audience over {EXPLICIT_MAX} openids; use a topic")
        wanted = {str(o) for o in campaign.openids}
        if only is not None:
            wanted &= set(only)
        return (select(Follower.openid).where(active, Follower.openid.in_(sorted(wanted)))
                .order_by(Follower.openid))
    restrict = [] if only is None else [Follower.openid.in_(sorted(set(only)))]
    if campaign.all_followers:
        return select(Follower.openid).where(active, *restrict).order_by(Follower.openid)
    if not campaign.topic:
        return select(Follower.openid).where(false())
    conditions = [active, Subscription.topic == campaign.topic, *restrict]
    for column, wanted_value in ((Subscription.district, campaign.district),
                                 (Subscription.notice_kind, campaign.notice_kind)):
        condition = _matches(column, wanted_value)
        if condition is not None:
            conditions.append(condition)
    return (select(Subscription.openid)
            .join(Follower, Follower.openid == Subscription.openid)
            .where(*conditions).distinct().order_by(Subscription.openid))


def still_in(session: Session, campaign: Campaign, openids: Collection[str]) -> set[str]:
    """Those of `openids` the campaign's audience holds right now (one query)."""
    if not openids:
        return set()
    return set(session.scalars(audience_select(campaign, only=openids)))


def audience_page(session: Session, campaign: Campaign, after: str | None,
                  limit: int) -> list[str]:
    """The next `limit` recipients after openid `after` (keyset pagination)."""
    stmt = audience_select(campaign)
    column = stmt.selected_columns[0]
    if after is not None:
        stmt = stmt.where(column > after)
    return list(session.scalars(stmt.limit(limit)))


def preview(session: Session, campaign: Campaign) -> int:
    """How many citizens the campaign would reach now."""
    inner = audience_select(campaign).order_by(None).subquery()
    return int(session.scalar(select(func.count()).select_from(inner)) or 0)
