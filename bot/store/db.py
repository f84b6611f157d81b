"""Engine and session factory; schema version checks against Alembic's head.

PostgreSQL timeouts (issue 6 item 7, the 5-second rule): `connect_timeout` bounds opening a
connection, a server-side `statement_timeout` bounds every statement, `pool_timeout` bounds
the wait for a pooled connection, and inside `answer_deadline()` (the webhook's answer path)
every wait for the server is bounded client-side too, because a server that accepts and
never answers enforces no statement_timeout of its own.

Start-up (issue 8 item 7, `qzbot ask` under a second): Alembic takes 0.1 s to import, and
every process that serves checks the schema. `require_current_schema` first compares the
database's recorded revision with the head the migration files declare (their `revision`
and `down_revision` lines, read without importing them); only when that is not a plain
match (a linear history whose head the database is at) does Alembic decide, and its
modules are imported then (and for `qzbot db`).
"""

from __future__ import annotations

import ast
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from bot.errors import SchemaOutdated

if TYPE_CHECKING:
    from alembic.config import Config

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
    from alembic.config import Config  # noqa: PLC0415 - Alembic loads only when needed

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to `revision`."""
    from alembic import command  # noqa: PLC0415 - Alembic loads only to migrate

    command.upgrade(alembic_config(engine), revision)


def schema_status(engine: Engine) -> tuple[str | None, str]:
    """(current revision, head revision), as Alembic sees them."""
    from alembic.runtime.migration import MigrationContext  # noqa: PLC0415 - see module doc
    from alembic.script import ScriptDirectory  # noqa: PLC0415 - see module doc

    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    return current, head or ""


def declared_head() -> str | None:
    """The head revision the migration files declare, read without importing them; None
    unless the history is one plain line (then Alembic must decide)."""
    revisions: dict[str, object] = {}
    for path in sorted((MIGRATIONS / "versions").glob("*.py")):
        names = {"revision": None, "down_revision": None, "branch_labels": None,
                 "depends_on": None}
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if (isinstance(node, ast.Assign) and len(node.targets) == 1
                    and isinstance(node.targets[0], ast.Name)
                    and node.targets[0].id in names):
                try:
                    names[node.targets[0].id] = ast.literal_eval(node.value)
                except ValueError:
                    return None
        revision, down = names["revision"], names["down_revision"]
        if (not isinstance(revision, str) or not (down is None or isinstance(down, str))
                or names["branch_labels"] or names["depends_on"] or revision in revisions):
            return None
        revisions[revision] = down
    downs = list(revisions.values())
    heads = [r for r in revisions if r not in downs]
    if len(heads) != 1 or downs.count(None) != 1 or len(set(downs)) != len(downs):
        return None
    return heads[0]


def _recorded_revision(engine: Engine) -> str | None:
    """The one revision in alembic_version, or None (no table, no row, several rows)."""
    try:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql("SELECT version_num FROM alembic_version").all()
    except Exception:  # noqa: BLE001 - no table yet: Alembic reports it properly
        return None
    return str(rows[0][0]) if len(rows) == 1 else None


def require_current_schema(engine: Engine) -> None:
    """Raise SchemaOutdated with the command to run when the schema is behind."""
    recorded = _recorded_revision(engine)
    if recorded is not None and recorded == declared_head():
        return  # the plain case, decided without Alembic (see the module docstring)
    current, head = schema_status(engine)
    if current != head:
        raise SchemaOutdated(
            f"database schema is at {current or 'nothing (empty database)'}, code needs {head}: "
            f"run `qzbot db upgrade` (url {engine.url.render_as_string(hide_password=True)})")
