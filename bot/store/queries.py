"""Queries. Visibility (only 主动公开, no expired notice) is enforced here, for every reader."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import (
    ColumnElement,
    DateTime,
    and_,
    bindparam,
    case,
    literal,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.clock import to_utc_naive
from bot.store.models import (
    Follower,
    Interaction,
    Meta,
    QuestionCount,
    Record,
    UnansweredQuery,
)

CONTENT_REVISION = "content_revision"


def _visible(now_param: ColumnElement) -> ColumnElement[bool]:
    return and_(Record.public.is_(True), Record.kind != "synonym",
                or_(Record.ends_at.is_(None), Record.ends_at > now_param))


def visible_clause(now: datetime) -> ColumnElement[bool]:
    """SQL condition for records a citizen may see at `now`."""
    return _visible(literal(to_utc_naive(now), DateTime()))


def visible_records(session: Session, now: datetime) -> list[Record]:
    """Every record a citizen may see at `now`."""
    return list(session.scalars(select(Record).where(visible_clause(now))))


# built once: answering a question runs it every time (row-value IN with expanding keys)
_VISIBLE_BY_KEYS = select(Record).where(
    tuple_(Record.kind, Record.rid).in_(bindparam("pairs", expanding=True)),
    _visible(bindparam("now", type_=DateTime())))


def visible_by_keys(session: Session, keys: Iterable[str], now: datetime) -> dict[str, Record]:
    """The visible records among `keys` ("kind:id"), re-checked at `now`."""
    pairs = [tuple(k.split(":", 1)) for k in keys if ":" in k]
    if not pairs:
        return {}
    rows = session.scalars(_VISIBLE_BY_KEYS, {"pairs": pairs, "now": to_utc_naive(now)})
    return {r.key: r for r in rows}


def synonym_groups(session: Session) -> list[list[str]]:
    """The pack's synonym groups."""
    rows = session.scalars(select(Record).where(Record.kind == "synonym"))
    return [list(r.data.get("words", [])) for r in rows]


def content_revision(session: Session) -> int:
    """A counter bumped by every content change (search indexes rebuild on change)."""
    value = session.scalar(select(Meta.value).where(Meta.key == CONTENT_REVISION))
    return int(value) if value else 0


def bump_content_revision(session: Session) -> int:
    """Increment the content revision in the caller's transaction."""
    row = session.get(Meta, CONTENT_REVISION)
    if row is None:
        row = Meta(key=CONTENT_REVISION, value="0")
        session.add(row)
    row.value = str(int(row.value) + 1)
    return int(row.value)


_DIALECT_INSERT = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def upsert_insert(session: Session, table):
    """The dialect's INSERT (with ON CONFLICT support) for the session's database."""
    dialect = session.get_bind().dialect.name
    if dialect not in _DIALECT_INSERT:
        raise NotImplementedError(f"no INSERT ... ON CONFLICT for {dialect}")
    return _DIALECT_INSERT[dialect](table)


def upsert_follower(session: Session, openid: str, now: datetime, **values) -> None:
    """Create or update a follower in one statement (race-free: INSERT .. ON CONFLICT).

    Only the given columns change on an existing row; a new row starts active.
    """
    values = {**values, "last_interaction_at": to_utc_naive(now)}
    stmt = upsert_insert(session, Follower).values(
        {"openid": openid, "active": True, "cs_sent": 0, **values})
    session.execute(stmt.on_conflict_do_update(
        index_elements=[Follower.openid], set_={k: stmt.excluded[k] for k in values}))


def upsert_followers_seen(session: Session, seen: dict[str, datetime]) -> None:
    """Mark citizens as having written at the given (naive UTC) times: window reopens.

    Ordered by event time, not write time (the writes are buffered): a citizen whose
    unfollow is later than the message stays inactive, and no time moves backwards.
    """
    rows = [{"openid": o, "active": True, "cs_sent": 0, "last_message_at": at,
             "last_interaction_at": at} for o, at in seen.items()]
    stmt = upsert_insert(session, Follower)
    new = stmt.excluded
    newer = or_(Follower.last_message_at.is_(None), Follower.last_message_at < new.last_message_at)
    session.execute(stmt.on_conflict_do_update(
        index_elements=[Follower.openid],
        set_={
            "active": case((or_(Follower.unfollowed_at.is_(None),
                                Follower.unfollowed_at < new.last_message_at), True),
                           else_=Follower.active),
            "cs_sent": case((newer, 0), else_=Follower.cs_sent),
            "last_message_at": case((newer, new.last_message_at),
                                    else_=Follower.last_message_at),
            "last_interaction_at": case(
                (or_(Follower.last_interaction_at.is_(None),
                     Follower.last_interaction_at < new.last_interaction_at),
                 new.last_interaction_at), else_=Follower.last_interaction_at),
        }), rows)


def record_interaction(session: Session, openid: str, kind: str, detail: dict,
                       now: datetime) -> None:
    """Store an event that needs no answer (VIEW, LOCATION, CLICK, SCAN)."""
    session.add(Interaction(openid=openid, kind=kind, detail=detail, at=to_utc_naive(now)))


def record_unanswered(session: Session, text: str, now: datetime, count: int = 1,
                      first: datetime | None = None) -> None:
    """Count an unanswered question (normalised text) for staff; never raises on races.

    `count` times, the first at `first` (default `now`) and the last at `now`: the webhook
    buffers them and writes a batch after answering (bot/presence.Unanswered)."""
    text = " ".join(text.split())[:200]
    if not text or count < 1:
        return
    stamp = to_utc_naive(now)
    bump = (update(UnansweredQuery).where(UnansweredQuery.text == text)
            .values(count=UnansweredQuery.count + count, last_at=stamp))
    if session.execute(bump).rowcount:
        return
    try:
        with session.begin_nested():
            session.add(UnansweredQuery(text=text, count=count, last_at=stamp,
                                        first_at=to_utc_naive(first or now)))
    except IntegrityError:  # a concurrent insert won the race: count on its row
        session.execute(bump)


def add_question_counts(session: Session, counts: dict[tuple[str, str], int]) -> None:
    """Add citizens' question outcomes per (Asia/Shanghai day, outcome) to question_counts.

    UPDATE count = count + n first (the row exists for all but the first batch of a day);
    when it does not, INSERT in a savepoint, and on a concurrent insert's unique-key
    violation add to its row: safe on both databases and across processes."""
    for (day, outcome), n in sorted(counts.items()):  # one lock order in every process
        if n < 1:
            continue
        bump = (update(QuestionCount)
                .where(QuestionCount.day == day, QuestionCount.outcome == outcome)
                .values(count=QuestionCount.count + n))
        if session.execute(bump).rowcount:
            continue
        try:
            with session.begin_nested():
                session.add(QuestionCount(day=day, outcome=outcome, count=n))
        except IntegrityError:  # another process inserted the day's row first
            session.execute(bump)


def unanswered_report(session: Session, limit: int = 50) -> list[UnansweredQuery]:
    """Unanswered questions, most frequent first."""
    stmt = (select(UnansweredQuery)
            .order_by(UnansweredQuery.count.desc(), UnansweredQuery.last_at.desc())
            .limit(limit))
    return list(session.scalars(stmt))
