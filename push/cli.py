"""`qzbot staff ...` and `qzbot push ...`: the staff side of campaigns, authenticated and audited.

Identity: `--as NAME`; authentication: that account's key in $QZBOT_STAFF_KEY (or --key).
The very first account (`qzbot staff add NAME --role admin` on an empty staff table) needs none;
every other command, reading ones (`push status`, `push list`) included, needs a login.
`push status` and `push approve` show what the reviewer approves (push/review.py).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import click

from bot.cli import Obj, cli
from bot.clock import SHANGHAI, to_local_naive
from bot.errors import CampaignInvalid
from bot.store.db import require_current_schema, transaction


def _at(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO date-time (2026-11-28T08:00)") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=SHANGHAI)


def _login(session, name: str, key: str | None):
    from push.staff import authenticate

    return authenticate(session, name, key or os.environ.get("QZBOT_STAFF_KEY"))


as_option = click.option("--as", "as_name", required=True, help="Acting staff account.")
key_option = click.option("--key", default=None, help="Account key (default $QZBOT_STAFF_KEY).")


@cli.group()
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
    from push.staff import add_staff, require_role, staff_count

    rt = obj.runtime
    require_current_schema(rt.engine)
    from push.audit import BOOTSTRAP

    with transaction(rt.sessions) as session:
        actor = BOOTSTRAP
        if staff_count(session):
            if not as_name:
                raise click.UsageError("--as ADMIN is required once an account exists")
            admin = _login(session, as_name, key)
            from bot.store.models import Role
            require_role(admin, Role.ADMIN)
            actor = admin.name
        account, secret = add_staff(session, name, role, rt.now(), actor)
    click.echo(f"staff {account.name} ({account.role}) created. Key (shown once):")
    click.echo(secret)


@staff.command("disable")
@click.argument("name")
@as_option
@key_option
@click.pass_obj
def staff_disable(obj: Obj, name: str, as_name: str, key: str | None) -> None:
    """Disable a staff account (admins only; audited)."""
    from push.staff import disable_staff

    rt = obj.runtime
    require_current_schema(rt.engine)
    with transaction(rt.sessions) as session:
        account = disable_staff(session, name, _login(session, as_name, key), rt.now())
    click.echo(f"staff {account.name} disabled")


@staff.command("rotate-key")
@click.argument("name")
@as_option
@key_option
@click.pass_obj
def staff_rotate_key(obj: Obj, name: str, as_name: str, key: str | None) -> None:
    """Give an account a new key (an admin, or the account itself); prints it once."""
    from push.staff import rotate_key

    rt = obj.runtime
    require_current_schema(rt.engine)
    with transaction(rt.sessions) as session:
        account, secret = rotate_key(session, name, _login(session, as_name, key), rt.now())
    click.echo(f"staff {account.name}: new key (shown once; the old one no longer works):")
    click.echo(secret)


@staff.command("list")
@as_option
@key_option
@click.pass_obj
def staff_list(obj: Obj, as_name: str, key: str | None) -> None:
    """List staff accounts (any authenticated staff account: names are internal)."""
    from sqlalchemy import select

    from bot.store.models import Staff

    with obj.runtime.sessions() as session:
        _login(session, as_name, key)
        for s in session.scalars(select(Staff).order_by(Staff.name)):
            click.echo(f"{s.name}\t{s.role}\t{'active' if s.active else 'disabled'}")


@cli.group()
def push() -> None:
    """Campaigns: create, submit, approve/reject, schedule, cancel, status, list."""


@push.command("create")
@as_option
@key_option
@click.option("--topic", default=None, help="政务公开 | 项目进展 | 出行资讯 | 政策解读")
@click.option("--district", default=None)
@click.option("--kind", "notice_kind", default=None, help="notice kind (出行资讯 only)")
@click.option("--openids", type=click.Path(exists=True, dir_okay=False), default=None,
              help="File with one openid per line.")
@click.option("--all", "all_followers", is_flag=True, help="Every active follower.")
@click.option("--record", "records", multiple=True, help="kind:id or id (repeatable).")
@click.option("--urgent", is_flag=True, help="Urgent travel notice: ignores quiet hours.")
@click.option("--at", "at", default=None, help="Send at (ISO, Asia/Shanghai).")
@click.option("--title", default=None)
@click.option("--template", "template_id", default=None, help="Override the topic's template.")
@click.option("--field", "fields", multiple=True, help="KEY=VALUE template field override.")
@click.pass_obj
def push_create(obj: Obj, as_name, key, topic, district, notice_kind, openids, all_followers,
                records, urgent, at, title, template_id, fields) -> None:
    """Create a draft campaign; prints its id on the last line."""
    from push.campaigns import Audience, create_campaign

    rt = obj.runtime
    require_current_schema(rt.engine)
    overrides = dict(f.split("=", 1) for f in fields if "=" in f)
    ids = None
    if openids:
        ids = [ln.strip() for ln in Path(openids).read_text(encoding="utf-8").splitlines()
               if ln.strip() and not ln.startswith("#")]
    with transaction(rt.sessions) as session:
        author = _login(session, as_name, key)
        from bot.store.models import Role
        from push.staff import require_role
        require_role(author, Role.EDITOR)
        campaign = create_campaign(
            session, obj.settings, rt.now(), actor=author.name, refs=list(records),
            audience=Audience(topic=topic, district=district, notice_kind=notice_kind,
                              openids=ids, all_followers=all_followers),
            urgent=urgent, title=title, overrides=overrides, template_id=template_id,
            send_at=_at(at))
    click.echo(f"draft campaign “{campaign.title}”: audience now {campaign.audience_preview}")
    click.echo(campaign.id)


def _act(obj: Obj, campaign_id: int, as_name: str, key: str | None, action) -> None:
    """Load, authenticate, run `action(session, campaign, staff)`, commit, then enqueue."""
    from push.campaigns import get_campaign

    rt = obj.runtime
    require_current_schema(rt.engine)
    with transaction(rt.sessions) as session:
        actor = _login(session, as_name, key)
        campaign = get_campaign(session, campaign_id, lock=True)
        result = action(session, campaign, actor)
        status = campaign.status
    if result == "enqueue" or isinstance(result, datetime):
        from push.jobs import enqueue_fanout  # after commit: a fast worker must find the row

        enqueue_fanout(rt, campaign_id, at=result if isinstance(result, datetime) else None)
        when = "now" if result == "enqueue" else f"at {to_local_naive(result):%Y-%m-%d %H:%M}"
        click.echo(f"campaign {campaign_id}: {status}, sending {when}")
    else:
        click.echo(f"campaign {campaign_id}: {status}")


@push.command("submit")
@as_option
@key_option
@click.argument("campaign_id", type=int)
@click.pass_obj
def push_submit(obj, as_name, key, campaign_id) -> None:
    """Submit a draft for review."""
    from push.campaigns import submit

    _act(obj, campaign_id, as_name, key,
         lambda s, c, st: submit(s, c, st, obj.runtime.now(), obj.settings))


@push.command("approve")
@as_option
@key_option
@click.option("--expect", default=None,
              help="The review hash shown by `push status` (refused if it changed since).")
@click.argument("campaign_id", type=int)
@click.pass_obj
def push_approve(obj, as_name, key, expect, campaign_id) -> None:
    """Approve what will be sent (another account than author/submitter): now or when due."""
    from push.campaigns import approve
    from push.review import describe

    def action(s, c, st):
        due = approve(s, obj.settings, c, st, obj.runtime.now(), expect=expect)
        click.echo(f"approved campaign {c.id} “{c.title}”, exactly this:")
        for line in describe(s, c):
            click.echo(f"  {line}")
        return due or "enqueue"

    _act(obj, campaign_id, as_name, key, action)


@push.command("reject")
@as_option
@key_option
@click.option("--reason", required=True)
@click.argument("campaign_id", type=int)
@click.pass_obj
def push_reject(obj, as_name, key, reason, campaign_id) -> None:
    """Reject a submitted campaign with a reason."""
    from push.campaigns import reject

    _act(obj, campaign_id, as_name, key,
         lambda s, c, st: reject(s, c, st, reason, obj.runtime.now()))


@push.command("schedule")
@as_option
@key_option
@click.option("--at", "at", required=True, help="ISO date-time, Asia/Shanghai.")
@click.argument("campaign_id", type=int)
@click.pass_obj
def push_schedule(obj, as_name, key, at, campaign_id) -> None:
    """Set or change a campaign's send time."""
    from push.campaigns import schedule

    wanted = _at(at)

    def action(s, c, st):
        due = schedule(s, obj.settings, c, st, wanted, obj.runtime.now())
        moved = c.send_at.replace(tzinfo=UTC) if c.send_at else None
        if moved is not None and moved != wanted:
            click.echo(f"{wanted:%Y-%m-%d %H:%M} is in quiet hours ({obj.settings.push.quiet_start}"
                       f"–{obj.settings.push.quiet_end}); moved to the morning: "
                       f"{to_local_naive(moved):%Y-%m-%d %H:%M} (only urgent travel notices "
                       "go out in quiet hours)")
        return due if due is not None or c.status != "scheduled" else "enqueue"

    _act(obj, campaign_id, as_name, key, action)


@push.command("edit")
@as_option
@key_option
@click.option("--title", default=None)
@click.option("--field", "fields", multiple=True, help="KEY=VALUE template field override.")
@click.argument("campaign_id", type=int)
@click.pass_obj
def push_edit(obj, as_name, key, title, fields, campaign_id) -> None:
    """Change a campaign's title or fields; an approved one goes back to review."""
    from push.campaigns import edit

    overrides = dict(f.split("=", 1) for f in fields if "=" in f)
    if not title and not overrides and fields:
        raise click.BadParameter("--field takes KEY=VALUE")

    def action(s, c, st):
        changed = edit(s, obj.settings, c, st, obj.runtime.now(), title=title,
                       overrides=overrides)
        click.echo("changed: " + (", ".join(changed) or "nothing"))

    _act(obj, campaign_id, as_name, key, action)


@push.command("cancel")
@as_option
@key_option
@click.argument("campaign_id", type=int)
@click.pass_obj
def push_cancel(obj, as_name, key, campaign_id) -> None:
    """Cancel a campaign (one that is sending stops at its next group)."""
    from push.campaigns import cancel

    _act(obj, campaign_id, as_name, key, lambda s, c, st: cancel(s, c, st, obj.runtime.now()))


@push.command("status")
@as_option
@key_option
@click.argument("campaign_id", type=int)
@click.pass_obj
def push_status(obj, as_name, key, campaign_id) -> None:
    """A campaign's state, what is approved, the audit trail and per-status delivery counts."""
    from sqlalchemy import select

    from bot.store.models import AuditEntry
    from push.audit import shown_at
    from push.campaigns import get_campaign
    from push.fanout import campaign_counts
    from push.review import describe

    with obj.runtime.sessions() as session:
        _login(session, as_name, key)
        c = get_campaign(session, campaign_id)
        counts = campaign_counts(session, campaign_id)
        review = describe(session, c)
        trail = list(session.scalars(select(AuditEntry).where(AuditEntry.campaign_id == c.id)
                                     .order_by(AuditEntry.id)))
    click.echo(f"campaign {c.id} “{c.title}”: {c.status}"
               + (f" (reason: {c.reject_reason or c.stop_reason})"
                  if c.reject_reason or c.stop_reason else ""))
    click.echo(f"author {c.author}, submitter {c.submitter or '-'}, approver "
               f"{c.approver or '-'}, audience preview {c.audience_preview}, records "
               f"{', '.join(c.record_keys)}")
    if c.send_at:
        click.echo(f"send at {shown_at(c.send_at)}")
    click.echo("approved hash: " + (f"{c.approved_hash} at {shown_at(c.approved_at)}"
                                    if c.approved_hash and c.approved_at else "-"))
    for line in review:
        click.echo(f"  {line}")
    click.echo("audit (Asia/Shanghai):")
    for entry in trail:
        click.echo(f"  {shown_at(entry.at)} {entry.actor}: {entry.action}"
                   + _audit_note(entry.detail or {}))
    _echo_counts(counts)


def _audit_note(detail: dict) -> str:
    """The parts of an audit entry a reader needs: reasons and what changed."""
    notes = [f"{k} {detail[k]}" for k in ("reason", "moved_to") if detail.get(k)]
    if detail.get("changed"):
        notes.append("changed: " + ", ".join(map(str, detail["changed"])))
    return f" ({'; '.join(notes)})" if notes else ""


def _echo_counts(counts: dict) -> None:
    click.echo(f"deliveries: {counts['total']}")
    for name in ("pending", "sending", "sent", "failed", "skipped", "unknown"):
        click.echo(f"{name}: {counts['status'].get(name, 0)}")
    for group in ("channel", "reason", "errcode"):
        if counts[group]:
            click.echo(f"by {group}: " + ", ".join(f"{k} {n}" for k, n in
                                                  sorted(counts[group].items())))


@push.command("list")
@as_option
@key_option
@click.option("--status", default=None)
@click.pass_obj
def push_list(obj, as_name, key, status) -> None:
    """List campaigns, newest first."""
    from sqlalchemy import select

    from bot.store.models import Campaign

    with obj.runtime.sessions() as session:
        _login(session, as_name, key)
        stmt = select(Campaign).order_by(Campaign.id.desc()).limit(100)
        if status:
            stmt = stmt.where(Campaign.status == status)
        for c in session.scalars(stmt):
            click.echo(f"{c.id}\t{c.status}\t{c.topic or '-'}\t{c.author}\t{c.title}")


__all__ = ["CampaignInvalid"]
