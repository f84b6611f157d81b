"""`qzbot push ...`: the staff side of campaigns, an adapter over push/actions.py.

Every command logs in (`--as NAME`, key in $QZBOT_STAFF_KEY or --key), reading ones
(`push status`, `push list`) included. A changing command runs its use-case in one
transaction, commits, and only then enqueues the fan-out the result asks for (a fast worker
must find the committed row). `push status` and `push approve` show what the reviewer
approves (push/review.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from bot.cli.common import Obj, as_option, key_option, parse_at, parse_fields, staff_key
from bot.clock import to_local_naive

if TYPE_CHECKING:
    from push.actions import CampaignResult, CampaignView


@click.group()
def push() -> None:
    """Campaigns: create, submit, approve/reject, schedule, cancel, status, list."""


@push.command("create")
@as_option
@key_option
@click.option("--topic", default=None,
              help="出行资讯 | 项目进展 | 政务公开 | 政策解读 | 市场监管动态 | 便民惠企措施 "
                   "(or travel, project, gov, policy, market, benefit)")
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
    from push import actions  # noqa: PLC0415 - keeps CLI start-up fast

    rt = obj.runtime
    ids = None
    if openids:
        ids = [ln.strip() for ln in Path(openids).read_text(encoding="utf-8").splitlines()
               if ln.strip() and not ln.startswith("#")]
    audience = actions.Audience(topic=topic, district=district, notice_kind=notice_kind,
                                openids=ids, all_followers=all_followers)
    with obj.transaction() as session:
        actor = actions.login(session, as_name, staff_key(key))
        campaign = actions.create(session, obj.settings, actor, rt.now(), refs=list(records),
                                  audience=audience, urgent=urgent, title=title,
                                  overrides=parse_fields(fields), template_id=template_id,
                                  send_at=parse_at(at))
    click.echo(f"draft campaign “{campaign.title}” for {campaign.audience} "
               f"({campaign.audience_preview} now)")
    click.echo(campaign.id)


def _act(obj: Obj, as_name: str, key: str | None, use_case: str, campaign_id: int,
         **kwargs: Any) -> CampaignResult:
    """Log in and run the use-case `actions.<use_case>` in one transaction (committed);
    `_finish` then enqueues what the result asks for."""
    from push import actions  # noqa: PLC0415 - keeps CLI start-up fast

    with obj.transaction() as session:
        actor = actions.login(session, as_name, staff_key(key))
        return getattr(actions, use_case)(session, obj.settings, actor, campaign_id,
                                          obj.runtime.now(), **kwargs)


def _finish(obj: Obj, result: CampaignResult) -> None:
    """After the commit: enqueue the fan-out if the result asks for one, print the state."""
    c, fan_out = result.campaign, result.fan_out
    if fan_out is None:
        click.echo(f"campaign {c.id}: {c.status}")
        return
    from push.jobs import enqueue_fanout  # noqa: PLC0415 - keeps CLI start-up fast

    # only now, after the commit: a fast worker must find the approved row
    enqueue_fanout(obj.runtime, fan_out.campaign_id, at=fan_out.at)
    when = "now" if fan_out.at is None else f"at {to_local_naive(fan_out.at):%Y-%m-%d %H:%M}"
    click.echo(f"campaign {c.id}: {c.status}, sending {when}")


@push.command("submit")
@as_option
@key_option
@click.argument("campaign_id", type=int)
@click.pass_obj
def push_submit(obj, as_name, key, campaign_id) -> None:
    """Submit a draft for review."""
    _finish(obj, _act(obj, as_name, key, "submit", campaign_id))


@push.command("approve")
@as_option
@key_option
@click.option("--expect", default=None,
              help="The review hash shown by `push status` (refused if it changed since).")
@click.argument("campaign_id", type=int)
@click.pass_obj
def push_approve(obj, as_name, key, expect, campaign_id) -> None:
    """Approve what will be sent (another account than author/submitter): now or when due."""
    result = _act(obj, as_name, key, "approve", campaign_id, expect=expect)
    c = result.campaign
    click.echo(f"approved campaign {c.id} “{c.title}”, exactly this:")
    for line in result.review:
        click.echo(f"  {line}")
    _finish(obj, result)


@push.command("reject")
@as_option
@key_option
@click.option("--reason", required=True)
@click.argument("campaign_id", type=int)
@click.pass_obj
def push_reject(obj, as_name, key, reason, campaign_id) -> None:
    """Reject a submitted campaign with a reason."""
    _finish(obj, _act(obj, as_name, key, "reject", campaign_id, reason=reason))


@push.command("schedule")
@as_option
@key_option
@click.option("--at", "at", required=True, help="ISO date-time, Asia/Shanghai.")
@click.argument("campaign_id", type=int)
@click.pass_obj
def push_schedule(obj, as_name, key, at, campaign_id) -> None:
    """Set or change a campaign's send time."""
    wanted = parse_at(at)
    result = _act(obj, as_name, key, "schedule", campaign_id, at=wanted)
    if result.moved_to is not None:
        push_settings = obj.settings.push
        click.echo(f"{wanted:%Y-%m-%d %H:%M} is in quiet hours ({push_settings.quiet_start}"
                   f"–{push_settings.quiet_end}); moved to the morning: "
                   f"{to_local_naive(result.moved_to):%Y-%m-%d %H:%M} (only urgent travel "
                   "notices go out in quiet hours)")
    _finish(obj, result)


@push.command("edit")
@as_option
@key_option
@click.option("--title", default=None)
@click.option("--field", "fields", multiple=True, help="KEY=VALUE template field override.")
@click.argument("campaign_id", type=int)
@click.pass_obj
def push_edit(obj, as_name, key, title, fields, campaign_id) -> None:
    """Change a campaign's title or fields; an approved one goes back to review."""
    overrides = parse_fields(fields)
    if not title and not overrides and fields:
        raise click.BadParameter("--field takes KEY=VALUE")
    result = _act(obj, as_name, key, "edit", campaign_id, title=title, overrides=overrides)
    click.echo("changed: " + (", ".join(result.changed) or "nothing"))
    _finish(obj, result)


@push.command("cancel")
@as_option
@key_option
@click.argument("campaign_id", type=int)
@click.pass_obj
def push_cancel(obj, as_name, key, campaign_id) -> None:
    """Cancel a campaign (one that is sending stops at its next group)."""
    _finish(obj, _act(obj, as_name, key, "cancel", campaign_id))


@push.command("status")
@as_option
@key_option
@click.argument("campaign_id", type=int)
@click.pass_obj
def push_status(obj, as_name, key, campaign_id) -> None:
    """A campaign's state, what is approved, the audit trail and per-status delivery counts."""
    from push import actions  # noqa: PLC0415 - keeps CLI start-up fast
    from push.audit import shown_at  # noqa: PLC0415 - keeps CLI start-up fast

    with obj.runtime.sessions() as session:
        actor = actions.login(session, as_name, staff_key(key))
        view = actions.status(session, actor, campaign_id)
    c = view.campaign
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
    for line in view.review:
        click.echo(f"  {line}")
    click.echo("audit (Asia/Shanghai):")
    for entry in view.trail:
        click.echo(f"  {shown_at(entry.at)} {entry.actor}: {entry.action}"
                   + _audit_note(entry.detail))
    _echo_counts(view.counts)


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
    from push import actions  # noqa: PLC0415 - keeps CLI start-up fast

    with obj.runtime.sessions() as session:
        actor = actions.login(session, as_name, staff_key(key))
        campaigns: list[CampaignView] = actions.list_campaigns(session, actor, status)
    for c in campaigns:
        click.echo(f"{c.id}\t{c.status}\t{c.topic or '-'}\t{c.author}\t{c.title}")
