"""The `qzbot` command (composition root): the root group and every command group, registered
explicitly here, one module per group.

The commands are thin adapters: they parse options, open the transaction, call the staff
service layer (push/actions.py) or a foundation function, commit, enqueue after the commit
and print. No SQL here. Errors become one line on stderr and an exit code (`main`).

Start-up: `main` turns the garbage collector off while the command's modules load (the
imports make hundreds of thousands of objects, none of them garbage, and the collections
they trigger cost `qzbot ask` 0.08 s); the group turns it back on before any command runs,
except `ask`, which answers one message and exits (issue 8 item 7: under a second).
"""

from __future__ import annotations

import gc
import logging

import click

from bot.cli.calendar import calendar
from bot.cli.cases import case
from bot.cli.common import Obj, fail
from bot.cli.console import console
from bot.cli.content import content
from bot.cli.db import db
from bot.cli.push import push
from bot.cli.report import report
from bot.cli.serve import ask, serve, simulator, worker
from bot.cli.staff import staff
from bot.errors import CampaignInvalid, ConfigError, PackInvalid, QzbotError, SchemaOutdated

__all__ = ["Obj", "cli", "fail", "main"]


@click.group()
@click.option("--config", "config", envvar="QZBOT_CONFIG", type=click.Path(dir_okay=False),
              help="TOML settings file (default: $QZBOT_CONFIG).")
@click.pass_context
def cli(ctx: click.Context, config: str | None) -> None:
    """qzbot — WeChat service of 泉州市交通运输局 (泉州交通运输)."""
    from bot.logs import setup_logging  # noqa: PLC0415 - keeps CLI start-up fast

    setup_logging(logging.WARNING)  # offset-stamped times, openids redacted
    if ctx.invoked_subcommand != "ask":  # see the module docstring
        gc.enable()
    ctx.obj = Obj(config)


for command in (db, content, report, serve, ask, worker, simulator, console, staff, push):
    cli.add_command(command)
cli.add_command(calendar)  # working-day calendar (issue 10)
cli.add_command(case)  # casework for scripts (issue 10)


def main() -> None:
    """Console-script entry point: clear one-line errors instead of tracebacks."""
    gc.disable()  # start-up only: the group turns it back on (see the module docstring)
    try:
        cli.main(standalone_mode=True)
    except ConfigError as exc:
        fail(str(exc), 2)
    except SchemaOutdated as exc:
        fail(str(exc), 3)
    except PackInvalid as exc:
        fail(str(exc), 4)
    except CampaignInvalid as exc:
        fail("refused:\n  - " + "\n  - ".join(exc.problems), 5)
    except QzbotError as exc:
        fail(str(exc))
