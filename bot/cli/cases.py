"""`qzbot case list | show | do | steps | departments | roles`: casework for scripts (issue 10).

The same use-cases as the console's 办件 pages and /api/v1/cases (cases/actions.py), with the
same permissions: `--as NAME` and that account's key ($QZBOT_STAFF_KEY or --key). A step is
`qzbot case do NUMBER STEP key=value ...` with the fields `qzbot case steps` lists; it
commits, then queues the citizen notices it produced (cases.notify). `--json` prints what the
API returns, for scripts. Personal data is masked as on the pages.
"""

from __future__ import annotations

import json
from dataclasses import asdict, is_dataclass, replace
from datetime import date, datetime
from typing import Any

import click

from bot.cli.common import Obj, as_option, fail, key_option, staff_key


@click.group("case")
def case() -> None:
    """Casework: 依申请公开 applications and 网民留言."""


def _plain(value: Any) -> Any:
    if is_dataclass(value):
        return _plain(asdict(value))
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, date | datetime):
        return value.isoformat()
    return value


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(_plain(value), ensure_ascii=False, indent=2))


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


@case.command("list")
@click.option("--view", default="open", show_default=True,
              type=click.Choice(["open", "overdue", "t0", "t2", "t5", "mine", "department"]),
              help="Queue: open, overdue, due within 0/2/5 working days, mine, my department.")
@click.option("--kind", type=click.Choice(["application", "message"]), default=None)
@click.option("--state", default=None, help="Only cases in this state (e.g. handling).")
@click.option("--limit", default=200, show_default=True, type=click.IntRange(1, 1000))
@json_option
@as_option
@key_option
@click.pass_obj
def case_list(obj: Obj, view: str, kind: str | None, state: str | None, limit: int,
              as_json: bool, as_name: str, key: str | None) -> None:
    """Open cases by due date (handlers: their department's)."""
    from console.views.cases import find_queue  # noqa: PLC0415 - keeps CLI start-up fast
    from push import actions as push_actions  # noqa: PLC0415 - keeps CLI start-up fast

    with obj.transaction() as session:
        staff = push_actions.login(session, as_name, staff_key(key))
        rows = find_queue(session, obj.runtime, staff, view, kind=kind, state=state,
                          limit=limit)
    if as_json:
        _echo_json([{**asdict(r), "level": level} for r, level in rows])
        return
    for r, level in rows:
        due = (r.due_on.isoformat() + (" provisional" if r.due_provisional else "")
               if r.due_on else "-")
        click.echo(f"{r.number}\t{r.state}\t{due}\t{level or '-'}\t{r.department or '-'}"
                   f"\t{r.handler or '-'}\t{r.subject[:40]}")
    click.echo(f"{len(rows)} case(s)", err=True)


@case.command("show")
@click.argument("number")
@json_option
@as_option
@key_option
@click.pass_obj
def case_show(obj: Obj, number: str, as_json: bool, as_name: str, key: str | None) -> None:
    """A case with its clocks and timeline (applicant masked unless your role needs it)."""
    from cases import actions  # noqa: PLC0415 - keeps CLI start-up fast
    from console.views.cases import reader  # noqa: PLC0415 - keeps CLI start-up fast
    from push import actions as push_actions  # noqa: PLC0415 - keeps CLI start-up fast

    with obj.transaction() as session:
        staff = push_actions.login(session, as_name, staff_key(key))
        who = reader(staff)
        view = actions.case_detail(session, who, number)
        timeline = actions.case_timeline(session, who, number)
        if who is not staff:
            view = replace(view, allowed=())  # an admin without casework roles only reads
    if as_json:
        _echo_json({"case": view, "timeline": timeline})
        return
    due = (view.due_on.isoformat() + (" provisional" if view.due_provisional else "")
           if view.due_on else "-")
    click.echo(f"{view.number} {view.kind} {view.state} ({view.state_label}) due {due}")
    click.echo(f"subject: {view.subject}")
    click.echo(f"department: {view.department or '-'}  handler: {view.handler or '-'}")
    click.echo("applicant: " + ", ".join(f"{k}={v}" for k, v in view.applicant.items()))
    for c in view.clocks:
        click.echo(f"clock {c.kind}: {c.started_on} +{c.working_days} (+{c.paused_days} "
                   f"paused) -> {c.due_on}{' provisional' if c.provisional else ''} "
                   f"[{c.status}]")
    for e in timeline:
        click.echo(f"{e.at.isoformat(timespec='seconds')} {e.actor}: {e.action}"
                   f"{' -> ' + e.to_state if e.to_state != e.from_state else ''}")
    click.echo("allowed: " + (" ".join(view.allowed) or "-"))


@case.command("steps")
def case_steps() -> None:
    """Every step and its fields (for `qzbot case do`)."""
    from console.views.cases import STEPS  # noqa: PLC0415 - keeps CLI start-up fast

    for name, step in STEPS.items():
        fields = " ".join(f"{f.name}{'' if f.required or f.kind == 'approve' else '?'}"
                          f"={f.kind}" for f in step.fields)
        click.echo(f"{name}\t{step.label}\t{fields}")


@case.command("do")
@click.argument("number")
@click.argument("step")
@click.argument("fields", nargs=-1)
@json_option
@as_option
@key_option
@click.pass_obj
def case_do(obj: Obj, number: str, step: str, fields: tuple[str, ...], as_json: bool,
            as_name: str, key: str | None) -> None:
    """Take STEP on case NUMBER with key=value FIELDS (see `qzbot case steps`)."""
    from cases import notify  # noqa: PLC0415 - keeps CLI start-up fast
    from console.views.cases import STEPS, parse_step, run_step  # noqa: PLC0415 - start-up
    from push import actions as push_actions  # noqa: PLC0415 - keeps CLI start-up fast

    spec = STEPS.get(step)
    if spec is None:
        fail(f"unknown step {step} (see `qzbot case steps`)")
    raw: dict[str, str] = {}
    for item in fields:
        name, sep, value = item.partition("=")
        if not sep or name not in {f.name for f in spec.fields}:
            fail(f"{step} takes {' '.join(f.name + '=' for f in spec.fields) or 'no fields'}"
                 f"; not {item!r}")
        raw[name] = value
    kwargs, problems = parse_step(spec, raw)
    if problems:
        fail("refused:\n  - " + "\n  - ".join(problems), 5)
    with obj.transaction() as session:
        staff = push_actions.login(session, as_name, staff_key(key))
        result = run_step(obj.runtime, session, staff, number, step, kwargs)
    if result.notices:
        notify.enqueue_notices(obj.runtime, list(result.notices))
    if as_json:
        _echo_json({"case": result.case, "notices": len(result.notices),
                    "query_code": result.query_code})
        return
    due = result.case.due_on.isoformat() if result.case.due_on else "-"
    click.echo(f"{result.case.number}: {step} done; state {result.case.state} "
               f"({result.case.state_label}); due {due}; notices {len(result.notices)}")
    if result.query_code:
        click.echo(f"query code (shown once): {result.query_code}")


@case.command("departments")
@click.option("--add", "add_name", default=None, help="Add a department (admins).")
@as_option
@key_option
@click.pass_obj
def case_departments(obj: Obj, add_name: str | None, as_name: str, key: str | None) -> None:
    """List departments (id, name, active, open cases); --add NAME adds one."""
    from cases import actions  # noqa: PLC0415 - keeps CLI start-up fast
    from push import actions as push_actions  # noqa: PLC0415 - keeps CLI start-up fast

    with obj.transaction() as session:
        staff = push_actions.login(session, as_name, staff_key(key))
        if add_name:
            actions.add_department(session, staff, add_name, obj.runtime.now())
        departments = actions.list_departments(session, staff)
    for d in departments:
        click.echo(f"{d.id}\t{d.name}\t{'active' if d.active else 'retired'}\t{d.open_cases}")


@case.command("roles")
@click.argument("name")
@click.option("--role", "roles", multiple=True,
              type=click.Choice(["registrar", "handler", "office_head"]),
              help="A casework role (repeat; none = remove every casework role).")
@click.option("--department", "department_id", type=int, default=None,
              help="Department id (required for handlers).")
@as_option
@key_option
@click.pass_obj
def case_roles(obj: Obj, name: str, roles: tuple[str, ...], department_id: int | None,
               as_name: str, key: str | None) -> None:
    """Set an account's casework roles and department (admins; audited)."""
    from cases import actions  # noqa: PLC0415 - keeps CLI start-up fast
    from push import actions as push_actions  # noqa: PLC0415 - keeps CLI start-up fast

    with obj.transaction() as session:
        staff = push_actions.login(session, as_name, staff_key(key))
        chosen = actions.set_case_roles(session, staff, name, roles, department_id,
                                        obj.runtime.now())
    click.echo(f"{name}: {' '.join(chosen) or 'no casework roles'}"
               f"{f' (department {department_id})' if department_id else ''}")
