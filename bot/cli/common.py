"""What every command group shares: the lazily built settings/runtime, options, input parsing.

Rule: nothing heavy at import time (`qzbot --help` loads no database driver, no Flask, no
feature package); commands import what they use when they run.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING

import click

from bot.clock import SHANGHAI
from bot.settings import Settings, load_settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from bot.runtime import Runtime

STAFF_KEY_ENV = "QZBOT_STAFF_KEY"


class Obj:
    """Lazily built settings/runtime shared by subcommands."""

    def __init__(self, config: str | None):
        self.config = config
        self._settings: Settings | None = None
        self._runtime: Runtime | None = None

    @property
    def settings(self) -> Settings:
        """Settings from --config / QZBOT_CONFIG and env."""
        if self._settings is None:
            self._settings = load_settings(self.config)
        return self._settings

    def override(self, **sections: dict) -> None:
        """Replace some settings (a command's flags, e.g. `serve --sim-port`); only before
        the runtime is built from them."""
        if self._runtime is not None:
            raise RuntimeError("settings overridden after the runtime was built")
        self._settings = self.settings.replace(**sections)

    @property
    def runtime(self) -> Runtime:
        """The process runtime (engine, redis, clock)."""
        if self._runtime is None:
            from bot.runtime import build_runtime  # noqa: PLC0415 - keeps CLI start-up fast

            self._runtime = build_runtime(self.settings)
        return self._runtime

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session on a current schema that commits when the block ends without error."""
        from bot.store.db import require_current_schema, transaction  # noqa: PLC0415 - start-up

        require_current_schema(self.runtime.engine)
        with transaction(self.runtime.sessions) as session:
            yield session


def fail(message: str, code: int = 1) -> None:
    """Print a clear error to stderr and exit non-zero."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def port_in_use(host: str, port: int) -> bool:
    """Whether something already listens on (host, port): bind a probe socket and let it go.
    SO_REUSEADDR as the servers set it, so a port in TIME_WAIT counts as free."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def staff_key(key: str | None) -> str | None:
    """The acting account's key: --key, else $QZBOT_STAFF_KEY."""
    return key or os.environ.get(STAFF_KEY_ENV)


def parse_at(value: str | None) -> datetime | None:
    """An ISO date-time option (Asia/Shanghai unless it carries an offset)."""
    if not value:
        return None
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO date-time (2026-11-28T08:00)") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=SHANGHAI)


def parse_fields(fields: tuple[str, ...]) -> dict[str, str]:
    """`--field KEY=VALUE` options as a dict (entries without `=` are ignored)."""
    return dict(f.split("=", 1) for f in fields if "=" in f)


as_option = click.option("--as", "as_name", required=True, help="Acting staff account.")
key_option = click.option("--key", default=None, help="Account key (default $QZBOT_STAFF_KEY).")
