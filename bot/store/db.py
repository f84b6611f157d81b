"""Engine and session factory; schema version checks against Alembic's head.

PostgreSQL timeouts (issue 6 item 7, the 5-second rule): `connect_timeout` bounds opening a
connection, a server-side `statement_timeout` bounds every statement, `pool_timeout` bounds
the wait for a pooled connection, and inside `answer_deadline()` (the webhook's answer path)
every wait for the server is bounded client-side too, because a server that accepts and
never answers enforces no statement_timeout of its own.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from bot.errors import SchemaOutdated

MIGRATIONS = Path(__file__).with_name("migrations")


_deadline: ContextVar[float | None] = ContextVar("qzbot_db_deadline", default=None)


@contextmanager
def answer_deadline(seconds: float) -> Iterator[None]:
    """Bound every PostgreSQL wait inside the block to `seconds` in total (this thread)."""
    token = _deadline.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


def _deadline_connection_class() -> type:
    """psycopg's Connection whose waits honour `answer_deadline` (imported lazily)."""
    import psycopg  # noqa: PLC0415 - PostgreSQL driver, loaded only for a PostgreSQL URL
    from psycopg import errors as pg_errors  # noqa: PLC0415 - same

    class DeadlineConnection(psycopg.Connection):
        def wait(self, gen, *args, **kwargs):  # noqa: ANN001, ANN202 - psycopg's signature
            until = _deadline.get()
            if until is None or kwargs.get("timeout") is not None:
                return super().wait(gen, *args, **kwargs)
            kwargs["timeout"] = max(0.01, until - time.monotonic())
            try:
                return super().wait(gen, *args, **kwargs)
            except pg_errors._WaitTimeout:  # noqa: SLF001 - psycopg's own wait timeout
                self.pgconn.finish()  # mid-protocol: never reuse it (the pool discards it)
                raise psycopg.OperationalError(
                    "database did not answer within the answer deadline") from None

    return DeadlineConnection


def _postgres_engine(url: str, echo: bool, timeouts: Any) -> Engine:
    connect_args: dict[str, Any] = {}
    pool_timeout = 30.0
    if timeouts is not None:
        connect_args["connect_timeout"] = int(timeouts.connect_timeout_seconds)
        if timeouts.statement_timeout_seconds:
            ms = int(timeouts.statement_timeout_seconds * 1000)
            connect_args["options"] = f"-c statement_timeout={ms}"
        pool_timeout = timeouts.pool_timeout_seconds
    engine = create_engine(url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=10,
                           pool_timeout=pool_timeout, connect_args=connect_args)
    if engine.dialect.driver == "psycopg":
        connection_class = _deadline_connection_class()

        @event.listens_for(engine, "do_connect")
        def _connect(_dialect, _record, cargs, cparams):  # noqa: ANN001, ANN202 - hook
            return connection_class.connect(*cargs, **cparams)

    return engine


def make_engine(url: str, echo: bool = False, timeouts: Any = None) -> Engine:
    """Create the engine; SQLite gets WAL, foreign keys and a busy timeout; PostgreSQL gets
    the timeouts of `timeouts` (DatabaseSettings) when given."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, echo=echo, connect_args={"timeout": 30,
                                                             "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # noqa: ANN001 - DBAPI hook
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    return _postgres_engine(url, echo, timeouts)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Session factory; objects stay usable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]):
    """A session that commits on success and rolls back on error (for edges: CLI, jobs)."""
    with factory() as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def alembic_config(engine: Engine) -> Config:
    """Alembic config bound to this engine (no alembic.ini needed)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to `revision`."""
    from alembic import command  # noqa: PLC0415 - Alembic loads only to migrate

    command.upgrade(alembic_config(engine), revision)


def schema_status(engine: Engine) -> tuple[str | None, str]:
    """(current revision, head revision)."""
    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    return current, head or ""


def require_current_schema(engine: Engine) -> None:
    """Raise SchemaOutdated with the command to run when the schema is behind."""
    current, head = schema_status(engine)
    if current != head:
        raise SchemaOutdated(
            f"database schema is at {current or 'nothing (empty database)'}, code needs {head}: "
            f"run `qzbot db upgrade` (url {engine.url.render_as_string(hide_password=True)})")
