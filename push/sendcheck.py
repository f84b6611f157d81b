"""Send-time truth: what a campaign was approved to send must still be true as it goes out.

Rules (README, "Only information marked 主动公开 is ever shown or pushed, and notices past
their end are never answered"; the visibility rule itself lives in bot/store/queries.py):
a campaign is approved once, but records are re-imported (不予公开, 依申请公开) or deleted,
notices end, and citizens unfollow or send 退订 / 全部退订 after the rows were planned.
So the engine checks again when a campaign starts, when each chunk of rows is planned,
at the start of every batch and while a batch runs (push.fanout.send_time_check):

- `record_problem`: an attached record that is no longer visible stops the campaign
  (`stopped`, reason record_not_public / record_expired, audited; the rows not yet sent
  are skipped with that reason);
- then push.review.recheck: what would be sent must be what the reviewer approved, or
  the campaign goes back to review and sends nothing more;
- `row_skip`: per claimed row, the recipient must still be in the campaign's audience
  (push.audience.still_in: following, subscribed, not opted out), else the row is
  skipped `unfollowed` / `unsubscribed` and nothing is sent to them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.store.models import Campaign, Follower, Record
from bot.store.queries import visible_by_keys

RECORD_NOT_PUBLIC, RECORD_EXPIRED = "record_not_public", "record_expired"
STOP_REASONS = (RECORD_NOT_PUBLIC, RECORD_EXPIRED)
UNFOLLOWED, UNSUBSCRIBED = "unfollowed", "unsubscribed"


def record_problem(session: Session, campaign: Campaign,
                   now: datetime) -> tuple[str, str] | None:
    """(reason, record key) of the first attached record no longer visible at `now`."""
    keys = [str(k) for k in campaign.record_keys or []]
    visible = visible_by_keys(session, keys, now)  # the one visibility rule
    for key in keys:
        if key in visible:
            continue
        kind, _, rid = key.partition(":")
        record = session.scalar(select(Record).where(Record.kind == kind, Record.rid == rid))
        # only names the reason for staff: a public record that is not visible has ended
        public = record is not None and record.public and record.kind != "synonym"
        return (RECORD_EXPIRED if public else RECORD_NOT_PUBLIC), key
    return None


def row_skip(openid: str, still_in: set[str], follower: Follower | None) -> str | None:
    """Why a planned row must not be sent now (None: the recipient is still in the audience)."""
    if openid in still_in:
        return None
    if follower is None or not follower.active:
        return UNFOLLOWED
    return UNSUBSCRIBED  # a topic 退订, a 全部退订, or an explicit list's opt-out
