"""SQLAlchemy 2.x models. Times are naive UTC; openids are personal data (never logged whole)."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """Declarative base of every table."""


class Kind(str, Enum):
    """Content-pack record kinds."""

    HOTLINE = "hotline"
    GUIDE = "guide"
    POLICY = "policy"
    DISCLOSURE = "disclosure"
    PROJECT = "project"
    NOTICE = "notice"
    FAQ = "faq"
    SYNONYM = "synonym"


PUBLIC = "主动公开"
DISCLOSURE_VALUES = (PUBLIC, "依申请公开", "不予公开")


class Record(Base):
    """One content-pack record; `data` holds its pack fields, the columns what queries need."""

    __tablename__ = "records"
    __table_args__ = (UniqueConstraint("kind", "rid", name="uq_records_kind_rid"),
                      Index("ix_records_visible", "public", "kind"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    rid: Mapped[str] = mapped_column(String(128))
    title: Mapped[str] = mapped_column(Text)
    disclosure: Mapped[str | None] = mapped_column(String(16))
    # public is derived at import: kinds without a disclosure field are public by nature
    public: Mapped[bool] = mapped_column(Boolean)
    district: Mapped[str | None] = mapped_column(String(32))
    notice_kind: Mapped[str | None] = mapped_column(String(16))
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    starts_at: Mapped[datetime | None] = mapped_column(DateTime)
    ends_at: Mapped[datetime | None] = mapped_column(DateTime)
    data: Mapped[dict] = mapped_column(JSON)
    digest: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)

    @property
    def key(self) -> str:
        """The search key "kind:id"."""
        return f"{self.kind}:{self.rid}"


class Meta(Base):
    """Small key/value facts, e.g. the content revision that invalidates search indexes."""

    __tablename__ = "meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Follower(Base):
    """A citizen who follows (or followed) the account."""

    __tablename__ = "followers"

    openid: Mapped[str] = mapped_column(String(64), primary_key=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    source: Mapped[str | None] = mapped_column(String(128))
    followed_at: Mapped[datetime | None] = mapped_column(DateTime)
    unfollowed_at: Mapped[datetime | None] = mapped_column(DateTime)
    # customer-service window: WeChat allows custom messages 48 h after a citizen message
    last_message_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_interaction_at: Mapped[datetime | None] = mapped_column(DateTime)
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    location_at: Mapped[datetime | None] = mapped_column(DateTime)


class Interaction(Base):
    """A recorded citizen event that needs no answer (VIEW, LOCATION, SCAN, CLICK...)."""

    __tablename__ = "interactions"
    __table_args__ = (Index("ix_interactions_openid_at", "openid", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    openid: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    detail: Mapped[dict] = mapped_column(JSON)
    at: Mapped[datetime] = mapped_column(DateTime)


class UnansweredQuery(Base):
    """A question the bot could not answer, aggregated by normalised text, for staff."""

    __tablename__ = "unanswered_queries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    text: Mapped[str] = mapped_column(String(200), unique=True)
    count: Mapped[int] = mapped_column(Integer, default=1)
    first_at: Mapped[datetime] = mapped_column(DateTime)
    last_at: Mapped[datetime] = mapped_column(DateTime)
