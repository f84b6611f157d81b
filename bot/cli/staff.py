"""`qzbot staff add | disable | rotate-key | set-password | list`: staff accounts (push/actions.py).

Identity: `--as NAME`; authentication: that account's key in $QZBOT_STAFF_KEY (or --key).
The very first account (`qzbot staff add NAME --role admin` on an empty staff table) needs
none; every other command, `staff list` included, needs a login.
"""

from __future__ import annotations

import click

from bot.cli.common import Obj, as_option, key_option, staff_key


@click.group()
def staff() -> None:
    """Staff accounts."""


@staff.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(["editor", "reviewer", "admin"]), required=True)
@click.option("--as", "as_name", default=None, help="Acting admin (not needed for the first).")
@key_option
@click.pass_obj
def staff_add(obj: Obj, name: str, role: str, as_name: str | None, key: str | None) -> None:
    """Create a staff account and print its key (shown once)."""
    from push import actions  # noqa: PLC0415 - keeps CLI start-up fast

    rt = obj.runtime
    with obj.transaction() as session:
        admin = None
        if actions.needs_login(session):
            if not as_name:
                raise click.UsageError("--as ADMIN is required once an account exists")
            admin = actions.login(session, as_name, staff_key(key))
        created = actions.add_staff(session, admin, name, role, rt.now())
    click.echo(f"staff {created.account.name} ({created.account.role}) created. "
               "Key (shown once):")
    click.echo(created.key)


@staff.command("disable")
@click.argument("name")
@as_option
@key_option
@click.pass_obj
def staff_disable(obj: Obj, name: str, as_name: str, key: str | None) -> None:
    """Disable a staff account (admins only; audited)."""
    from push import actions  # noqa: PLC0415 - keeps CLI start-up fast

    rt = obj.runtime
    with obj.transaction() as session:
        actor = actions.login(session, as_name, staff_key(key))
        account = actions.disable_staff(session, actor, name, rt.now())
    click.echo(f"staff {account.name} disabled")


@staff.command("rotate-key")
@click.argument("name")
@as_option
@key_option
@click.pass_obj
def staff_rotate_key(obj: Obj, name: str, as_name: str, key: str | None) -> None:
    """Give an account a new key (an admin, or the account itself); prints it once."""
    from push import actions  # noqa: PLC0415 - keeps CLI start-up fast

    rt = obj.runtime
    with obj.transaction() as session:
        actor = actions.login(session, as_name, staff_key(key))
        rotated = actions.rotate_key(session, actor, name, rt.now())
    click.echo(f"staff {rotated.account.name}: new key (shown once; the old one no longer works):")
    click.echo(rotated.key)


@staff.command("set-password")
@click.argument("name")
@click.option("--as", "as_name", default=None,
              help="Acting account (default NAME itself; an admin for someone else's).")
@key_option
@click.option("--password-stdin", is_flag=True, help="Read the new password from stdin.")
@click.pass_obj
def staff_set_password(obj: Obj, name: str, as_name: str | None, key: str | None,
                       password_stdin: bool) -> None:
    """Set NAME's staff console password (so the first admin can log in to the console).

    Authenticated by the acting account's key ($QZBOT_STAFF_KEY or --key). Set by an admin
    for someone else, it must be changed at that account's first console login.
    """
    from push import actions  # noqa: PLC0415 - keeps CLI start-up fast

    if password_stdin:
        password = click.get_text_stream("stdin").readline().rstrip("\r\n")
    else:
        password = click.prompt("New console password (12+ characters)", hide_input=True,
                                confirmation_prompt=True)
    rt = obj.runtime
    with obj.transaction() as session:
        actor = actions.login(session, as_name or name, staff_key(key))
        account = actions.set_password(session, actor, name, password, rt.now())
    click.echo(f"staff {account.name}: console password set"
               + ("; it must be changed at the first login" if account.must_change_password
                  else "") + ". Sessions of this account have ended.")


@staff.command("list")
@as_option
@key_option
@click.pass_obj
def staff_list(obj: Obj, as_name: str, key: str | None) -> None:
    """List staff accounts (any authenticated staff account: names are internal)."""
    from push import actions  # noqa: PLC0415 - keeps CLI start-up fast

    with obj.runtime.sessions() as session:
        actor = actions.login(session, as_name, staff_key(key))
        accounts = actions.list_staff(session, actor)
    for s in accounts:
        click.echo(f"{s.name}\t{s.role}\t{'active' if s.active else 'disabled'}")
