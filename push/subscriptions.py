"""Citizens' topic subscriptions: data operations and the words citizens use for them.

A subscription is (openid, topic, district, notice_kind); "" means any district or kind.
A broader row covers a narrower one, so subscribing to what is already covered changes
nothing and subscribing more broadly replaces the narrower rows it covers: what a citizen
holds is always the smallest set of rows, and a reply can say exactly what changed.
全部退订 also opts the citizen out of every push, broadcasts (`--all`) and explicit lists
included (`opt_out`: Follower.opted_out_at); any later 订阅 opts them back in.
Domain functions never commit; the handler or view at the edge does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.clock import to_utc_naive
from bot.store.models import Follower, Subscription
from bot.store.queries import upsert_follower
from bot.vocab import (  # noqa: F401 - DISTRICT_TOPICS, KIND_TOPICS: re-exported for callers
    DISTRICT_SHORT_NAMES,
    DISTRICT_TOPICS,
    KIND_TOPICS,
    NOTICE_KIND_ALIASES,
    NOTICE_KIND_LABEL,
    TOPIC_ALIASES,
    TOPIC_ORDER,
)

# The words (topics, notice kinds, districts) are defined once in bot.vocab.
KIND_LABEL = NOTICE_KIND_LABEL
KIND_ALIASES = NOTICE_KIND_ALIASES
# Words that add nothing ("订阅全部出行的消息").
_FILLER = ("全市", "全部", "所有", "的", "消息", "信息", "通知", "推送", "一下", "请")
_SEPARATORS = frozenset(" \t\r\n\u3000,，、;；。.!！:：/+和与及")


# --- words -----------------------------------------------------------------------------


def district_aliases(districts: tuple[str, ...]) -> dict[str, str]:
    """Alias -> configured district: the full name, without 区/市/县, without 泉州."""
    out: dict[str, str] = {}
    for name in districts:
        names = {name, *DISTRICT_SHORT_NAMES.get(name, ())}
        for base in (name, name.removeprefix("泉州")):
            names.add(base)
            if base[-1:] in ("区", "市", "县") and len(base) >= 3:
                names.add(base[:-1])
        for alias in names:
            out.setdefault(alias, name)
    return out


@dataclass(frozen=True)
class Wanted:
    """What a citizen named after 订阅/退订: topics, districts, notice kinds, and the rest."""

    topics: tuple[str, ...] = ()
    districts: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        """True when nothing at all was named."""
        return not (self.topics or self.districts or self.kinds or self.unknown)


def _vocabulary(districts: tuple[str, ...]) -> dict[str, tuple[str, str]]:
    """alias (lowercase) -> (category, value); an alias naming two things is dropped."""
    entries: list[tuple[str, str, str]] = []
    for topic, aliases in TOPIC_ALIASES.items():
        entries += [(a, "topic", topic) for a in aliases]
    for kind, aliases in KIND_ALIASES.items():
        entries += [(a, "kind", kind) for a in (*aliases, kind)]
    entries += [(a, "district", d) for a, d in district_aliases(districts).items()]
    entries += [(a, "filler", "") for a in _FILLER]
    vocab: dict[str, tuple[str, str]] = {}
    ambiguous: set[str] = set()
    for alias, category, value in entries:
        key = alias.lower()
        if key in vocab and vocab[key] != (category, value):
            ambiguous.add(key)
        vocab.setdefault(key, (category, value))
    for key in ambiguous:
        del vocab[key]
    return vocab


def parse_wanted(text: str, districts: tuple[str, ...]) -> Wanted:
    """Read topics, districts and kinds from free text, longest alias first, spaces optional."""
    vocab = _vocabulary(districts)
    longest = max(map(len, vocab))
    found: dict[str, list[str]] = {"topic": [], "district": [], "kind": [], "filler": []}
    unknown: list[str] = []
    pending: list[str] = []  # characters matching nothing, since the last word

    def flush() -> None:
        if pending:
            unknown.append("".join(pending))
            pending.clear()

    lowered = text.lower()
    i = 0
    while i < len(lowered):
        if lowered[i] in _SEPARATORS:
            flush()
            i += 1
            continue
        hit, size = None, 0
        for size in range(min(longest, len(lowered) - i), 0, -1):
            hit = vocab.get(lowered[i:i + size])
            if hit:
                break
        if hit is None:
            pending.append(text[i])
            i += 1
            continue
        flush()
        i += size
        if hit[1] not in found[hit[0]]:
            found[hit[0]].append(hit[1])
    flush()
    return Wanted(tuple(found["topic"]), tuple(found["district"]), tuple(found["kind"]),
                  tuple(unknown))


def label(topic: str, district: str = "", notice_kind: str = "") -> str:
    """How a subscription reads to a citizen: 出行资讯（丰泽区·轮渡）."""
    parts = [p for p in (district, KIND_LABEL.get(notice_kind, notice_kind)) if p]
    return f"{topic}（{'·'.join(parts)}）" if parts else topic


def label_of(sub: Subscription) -> str:
    """`label` of a stored subscription."""
    return label(sub.topic, sub.district, sub.notice_kind)


# --- data --------------------------------------------------------------------------------


@dataclass
class Change:
    """The outcome of `subscribe`: what was added, what already covered it, what it replaced."""

    label: str
    added: bool
    covered_by: str = ""
    replaced: list[str] = field(default_factory=list)


def _covers(row: Subscription, district: str, notice_kind: str) -> bool:
    return row.district in ("", district) and row.notice_kind in ("", notice_kind)


def _rows(session: Session, openid: str, topic: str | None = None) -> list[Subscription]:
    stmt = select(Subscription).where(Subscription.openid == openid)
    if topic is not None:
        stmt = stmt.where(Subscription.topic == topic)
    return list(session.scalars(stmt.order_by(Subscription.id)))


def subscribe(session: Session, openid: str, topic: str, district: str = "",
              notice_kind: str = "", *, source: str = "message", now: datetime) -> Change:
    """Subscribe idempotently; a broader row replaces the narrower rows it covers."""
    if topic not in TOPIC_ORDER:
        raise ValueError(f"unknown topic {topic!r}")
    if notice_kind and notice_kind not in KIND_LABEL:
        raise ValueError(f"unknown notice kind {notice_kind!r}")
    wanted = label(topic, district, notice_kind)
    opt_in(session, openid)  # asking for a topic again ends a 全部退订
    rows = _rows(session, openid, topic)
    for row in rows:
        if _covers(row, district, notice_kind):
            return Change(wanted, added=False, covered_by=label_of(row))
    replaced = [row for row in rows
                if (not district or row.district == district)
                and (not notice_kind or row.notice_kind == notice_kind)]
    try:
        with session.begin_nested():
            for row in replaced:
                session.delete(row)
            session.add(Subscription(openid=openid, topic=topic, district=district,
                                     notice_kind=notice_kind, source=source[:32],
                                     created_at=to_utc_naive(now)))
    except IntegrityError:  # the same subscription arrived concurrently
        return Change(wanted, added=False, covered_by=wanted)
    return Change(wanted, added=True, replaced=[label_of(r) for r in replaced])


def unsubscribe(session: Session, openid: str, topic: str | None = None,
                district: str | None = None, notice_kind: str | None = None
                ) -> list[Subscription]:
    """Delete matching rows (None matches anything) and return them; topic None = all."""
    removed = [row for row in _rows(session, openid, topic)
               if (district is None or row.district == district)
               and (notice_kind is None or row.notice_kind == notice_kind)]
    for row in removed:
        session.delete(row)
    session.flush()
    return sorted(removed, key=_sort_key)


def opt_out(session: Session, openid: str, now: datetime) -> None:
    """全部退订: no push of any kind reaches the citizen until a later 订阅."""
    upsert_follower(session, openid, now, opted_out_at=to_utc_naive(now))


def opt_in(session: Session, openid: str) -> None:
    """Clear a 全部退订 (the citizen subscribed again)."""
    session.execute(update(Follower).where(Follower.openid == openid,
                                           Follower.opted_out_at.is_not(None))
                    .values(opted_out_at=None).execution_options(synchronize_session=False))


def _sort_key(row: Subscription) -> tuple:
    order = TOPIC_ORDER.index(row.topic) if row.topic in TOPIC_ORDER else len(TOPIC_ORDER)
    return order, row.district, row.notice_kind


def list_for(session: Session, openid: str) -> list[Subscription]:
    """A citizen's subscriptions in a stable, readable order."""
    return sorted(_rows(session, openid), key=_sort_key)


def covering(session: Session, openid: str, topic: str, district: str,
             notice_kind: str) -> Subscription | None:
    """A held subscription that covers (topic, district, kind), if any."""
    for row in _rows(session, openid, topic):
        if _covers(row, district, notice_kind):
            return row
    return None
