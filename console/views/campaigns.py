"""Console pages: campaigns and their delivery (issue 9 items 4 and 5).

An adapter over push/actions.py exactly as the CLI (bot/cli/push.py) is: a page runs one
use-case in the request's session, commits, and only then enqueues the fan-out the result
asks for (push.jobs.enqueue_fanout), so a fast worker always finds the committed row.
Authorisation is the service layer's (editors write, another account reviews, ...); a refusal
is shown on the campaign's page with the HTTP status that says why (403 not allowed, 409 the
campaign is not in a state for it or changed, 400 the input is wrong).

Approval is pinned to what the reviewer saw: the page shows the review hash
(push.review.review_hash) and the approve form posts it back with the components it covers;
if the campaign changed meanwhile the approval is refused and the page names what changed.

The delivery page reads push/reports.py (GROUP BY figures, fast at 100 000 rows); its
progress fragment refreshes itself every 3 s (htmx) until the campaign has finished, and
console/static/campaigns.js draws the charts from stats.json. The CSV export masks openids
for everyone but admins; an admin's full export is audited before it starts.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import redis as redis_lib
from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)

from bot.clock import SHANGHAI
from bot.errors import CampaignInvalid, InvalidTransition, NotFound, PermissionDenied
from bot.vocab import NOTICE_KIND_LABEL, NOTICE_KINDS, TOPIC_ORDER, Role
from console.web import actor, cn_time, db, has_role, roles_required, rt
from push import actions, reports
from push.explain import (
    CAMPAIGN_STATUS_LABEL,
    CHANNEL_LABEL,
    DELIVERY_STATUS_LABEL,
    explain_change,
    explain_reason,
)
from push.jobs import enqueue_fanout

log = logging.getLogger("qzbot.console.campaigns")
bp = Blueprint("campaigns", __name__, url_prefix="/campaigns")
ALL_FOLLOWERS = "__all__"
EDITABLE = ("draft", "rejected", "submitted", "approved", "scheduled")
CANCELLABLE = ("draft", "submitted", "approved", "scheduled", "sending")


@bp.context_processor
def _labels() -> dict[str, Any]:
    return {"status_label": CAMPAIGN_STATUS_LABEL, "channel_label": CHANNEL_LABEL,
            "delivery_label": DELIVERY_STATUS_LABEL, "notice_kind_label": NOTICE_KIND_LABEL,
            "explain_reason": explain_reason}


# --- form parsing ------------------------------------------------------------------------


def _audience(form: Any) -> actions.Audience:
    topic = (form.get("topic") or "").strip()
    if topic == ALL_FOLLOWERS:
        return actions.Audience(all_followers=True)
    return actions.Audience(topic=topic or None,
                            district=(form.get("district") or "").strip() or None,
                            notice_kind=(form.get("notice_kind") or "").strip() or None)


def _overrides(text: str | None) -> tuple[dict[str, str], list[str]]:
    """"key=value" lines -> overrides, and the lines that are not of that form."""
    found: dict[str, str] = {}
    bad: list[str] = []
    for line in (text or "").splitlines():
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            bad.append(f"字段应写成 字段名=内容：{line.strip()}")
            continue
        found[key.strip()] = value.strip()
    return found, bad


def _send_at(value: str | None) -> tuple[datetime | None, list[str]]:
    """A datetime-local value read as Asia/Shanghai time."""
    value = (value or "").strip()
    if not value:
        return None, []
    try:
        return datetime.fromisoformat(value).replace(tzinfo=SHANGHAI), []
    except ValueError:
        return None, [f"发送时间格式不对：{value}"]


def _refs(form: Any) -> list[str]:
    return [r.strip() for r in form.getlist("records") if r.strip()]


def _compose_context(form: Any, problems: list[str] | None = None) -> dict[str, Any]:
    settings = rt().settings
    return {"form": form, "problems": problems or [], "topics": TOPIC_ORDER,
            "all_followers": ALL_FOLLOWERS, "districts": settings.bot.districts,
            "notice_kinds": NOTICE_KINDS,
            "fields": actions.template_fields(settings, form.get("topic")),
            "records": _record_choices(form)}


def _record_choices(form: Any) -> list[actions.RecordChoice]:
    """The records matching the search box, with the chosen ones first (kept checked)."""
    session, now = db(), rt().now()
    chosen = _refs(form)
    found = actions.pushable_records(session, actor(), now, form.get("q") or "")
    keep = [c for key in chosen for c in actions.pushable_records(session, actor(), now, key, 5)
            if c.key == key]
    seen = {c.key for c in keep}
    return keep + [c for c in found if c.key not in seen]


# --- list and compose ---------------------------------------------------------------------


@bp.get("/")
@roles_required()
def index() -> str:
    me = actor()
    status = request.args.get("status") or None
    if status is not None and status not in CAMPAIGN_STATUS_LABEL:
        status = None
    mine = request.args.get("mine") == "1"
    session = db()
    return render_template(
        "campaigns/index.html", campaigns=actions.find_campaigns(session, me, status=status,
                                                                 mine=mine),
        queue=actions.review_queue(session, me), status=status, mine=mine,
        can_compose=has_role(me, Role.EDITOR))


@bp.route("/new", methods=["GET", "POST"])
@roles_required(Role.EDITOR)
def compose() -> Any:
    if request.method == "GET":
        return render_template("campaigns/compose.html", **_compose_context(request.args))
    form = request.form
    overrides, problems = _overrides(form.get("fields"))
    send_at, bad_time = _send_at(form.get("send_at"))
    problems += bad_time
    if problems:
        return render_template("campaigns/compose.html",
                               **_compose_context(form, problems)), 400
    session = db()
    try:
        view = actions.create(session, rt().settings, actor(), rt().now(), refs=_refs(form),
                              audience=_audience(form), urgent=form.get("urgent") == "1",
                              title=(form.get("title") or "").strip() or None,
                              overrides=overrides, send_at=send_at)
        session.commit()
    except CampaignInvalid as exc:
        session.rollback()
        return render_template("campaigns/compose.html",
                               **_compose_context(form, exc.problems)), 400
    flash(f"已创建草稿：{view.title}（当前 {view.audience_preview} 位订阅者）", "success")
    return redirect(url_for("campaigns.detail", campaign_id=view.id))


@bp.get("/audience")
@roles_required()
def audience() -> str:
    """htmx fragment: the audience in words and its size now."""
    size = actions.audience_size(db(), rt().settings, actor(), _audience(request.args))
    return render_template("campaigns/_audience.html", size=size)


@bp.get("/preview")
@roles_required()
def preview() -> str:
    """htmx fragment: the message per channel as a phone shows it (nothing is stored)."""
    overrides, problems = _overrides(request.args.get("fields"))
    result = actions.preview(db(), rt().settings, actor(), rt().now(),
                             refs=_refs(request.args), audience=_audience(request.args),
                             title=(request.args.get("title") or "").strip() or None,
                             overrides=overrides)
    return render_template("campaigns/_preview.html", payload=result.payload,
                           title=result.title, problems=[*problems, *result.problems],
                           fields=result.template_fields, compose=True)


@bp.get("/records")
@roles_required()
def records() -> str:
    """htmx fragment: the records that may be pushed, matching the search box."""
    return render_template("campaigns/_records.html", records=_record_choices(request.args),
                           chosen=set(_refs(request.args)))


# --- one campaign ------------------------------------------------------------------------


def _detail(campaign_id: int, *, error: str | None = None, problems: list[str] | None = None,
            changed: list[str] | None = None, code: int = 200) -> tuple[str, int]:
    me = actor()
    try:
        detail = actions.campaign_detail(db(), me, campaign_id, page=True)
    except NotFound:
        abort(404)
    c = detail.campaign
    return render_template(
        "campaigns/detail.html", d=detail, c=c, me=me, error=error, problems=problems or [],
        changed=changed or [], components_json=json.dumps(detail.components, sort_keys=True,
                                                          ensure_ascii=False),
        can_edit=has_role(me, Role.EDITOR) and c.status in EDITABLE,
        can_submit=has_role(me, Role.EDITOR) and c.status in ("draft", "rejected"),
        can_review=has_role(me, Role.REVIEWER) and c.status == "submitted",
        contributor=detail.contributed,
        can_schedule=(c.status in ("draft", "submitted", "rejected")
                      and has_role(me, Role.EDITOR))
        or (c.status in ("approved", "scheduled") and has_role(me, Role.REVIEWER)),
        can_cancel=c.status in CANCELLABLE, fields=detail.payload.get("template") or {},
        can_audit=has_role(me, Role.REVIEWER),
    ), code


@bp.get("/<int:campaign_id>")
@roles_required()
def detail(campaign_id: int) -> tuple[str, int]:
    return _detail(campaign_id)


def _enqueue(result: actions.CampaignResult) -> None:
    """After the commit (never before): the fan-out the result asks for, as the CLI does."""
    fan_out = result.fan_out
    if fan_out is None:
        return
    try:
        enqueue_fanout(rt(), fan_out.campaign_id, at=fan_out.at)
    except redis_lib.RedisError as exc:  # committed: the worker's sweep finds it later
        log.error("campaign %s committed but not enqueued (%s); the sweep will plan it",
                  fan_out.campaign_id, exc)
        flash("已保存，但暂时无法加入发送队列；后台巡检会自动补上。", "error")


def _refused(campaign_id: int, exc: Exception) -> tuple[str, int]:
    """The campaign page saying why a use-case refused (404 when there is no campaign)."""
    if isinstance(exc, NotFound):
        abort(404)
    if isinstance(exc, PermissionDenied):
        return _detail(campaign_id, error=f"无权操作：{exc}", code=403)
    if isinstance(exc, InvalidTransition):
        return _detail(campaign_id, error=f"当前状态不允许此操作：{exc}", code=409)
    problems = exc.problems if isinstance(exc, CampaignInvalid) else [str(exc)]
    return _detail(campaign_id, error="无法完成：", problems=problems, code=400)


def _act(campaign_id: int, use_case: str, done: str, **kwargs: Any) -> Any:
    """Run `actions.<use_case>`, commit, enqueue; a refusal re-renders the page with why."""
    session = db()
    try:
        result = getattr(actions, use_case)(session, rt().settings, actor(), campaign_id,
                                            rt().now(), **kwargs)
        session.commit()
    except (NotFound, PermissionDenied, InvalidTransition, CampaignInvalid) as exc:
        session.rollback()
        return _refused(campaign_id, exc)
    _enqueue(result)
    flash(done.format(c=result.campaign,
                      status=CAMPAIGN_STATUS_LABEL.get(result.campaign.status, "")), "success")
    if result.moved_to is not None:
        flash(f"所选时间在免打扰时段内，已顺延到 {cn_time(result.moved_to)}（只有紧急出行通知"
              "可在免打扰时段发送）。", "info")
    return redirect(url_for("campaigns.detail", campaign_id=campaign_id))


@bp.post("/<int:campaign_id>/submit")
@roles_required(Role.EDITOR)
def submit(campaign_id: int) -> Any:
    return _act(campaign_id, "submit", "已提交审核：{c.title}")


@bp.post("/<int:campaign_id>/approve")
@roles_required(Role.REVIEWER)
def approve(campaign_id: int) -> Any:
    """Approve exactly what the reviewer saw: the posted review hash must still be current
    (push.campaigns.approve checks it under the campaign's lock); if it is not, the page
    names what changed since, from the components the form carried."""
    expect = (request.form.get("expect") or "").strip().lower()
    if len(expect) != 64:
        return _detail(campaign_id, error="批准须附上页面显示的审核哈希，请刷新页面后重试。",
                       code=400)
    session = db()
    try:
        result = actions.approve(session, rt().settings, actor(), campaign_id, rt().now(),
                                 expect=expect)
        session.commit()
    except CampaignInvalid as exc:
        session.rollback()
        try:
            current = actions.campaign_detail(session, actor(), campaign_id,
                                             page=True).review_hash
        except NotFound:
            abort(404)
        if current == expect:
            return _detail(campaign_id, error="无法批准：", problems=exc.problems, code=400)
        try:
            seen = json.loads(request.form.get("seen") or "null")
        except ValueError:
            seen = None
        changed = [explain_change(part)
                   for part in actions.changes_since(session, actor(), campaign_id, seen)]
        return _detail(campaign_id, code=409, changed=changed,
                       error="您查看之后此推送已被修改，未批准。请核对下方最新内容后再批准。")
    except (NotFound, PermissionDenied, InvalidTransition) as exc:
        session.rollback()
        return _refused(campaign_id, exc)
    _enqueue(result)
    c = result.campaign
    flash(f"已批准：{c.title}（{CAMPAIGN_STATUS_LABEL.get(c.status, c.status)}"
          + (f"，将于 {cn_time(c.send_at)} 发送" if c.status == "scheduled" else "，即将发送")
          + "）", "success")
    return redirect(url_for("campaigns.detail", campaign_id=campaign_id))


@bp.post("/<int:campaign_id>/reject")
@roles_required(Role.REVIEWER)
def reject(campaign_id: int) -> Any:
    reason = (request.form.get("reason") or "").strip()
    if not reason:
        return _detail(campaign_id, error="退回必须填写原因。", code=400)
    return _act(campaign_id, "reject", "已退回：{c.title}", reason=reason)


@bp.post("/<int:campaign_id>/schedule")
@roles_required()
def schedule(campaign_id: int) -> Any:
    at, problems = _send_at(request.form.get("send_at"))
    if at is None:
        return _detail(campaign_id, error="请填写发送时间。", problems=problems, code=400)
    return _act(campaign_id, "schedule", "发送时间已设为 " + cn_time(at) + "：{c.title}", at=at)


@bp.post("/<int:campaign_id>/cancel")
@roles_required()
def cancel(campaign_id: int) -> Any:
    return _act(campaign_id, "cancel", "已取消：{c.title}")


@bp.route("/<int:campaign_id>/edit", methods=["GET", "POST"])
@roles_required(Role.EDITOR)
def edit(campaign_id: int) -> Any:
    me = actor()
    try:
        d = actions.campaign_detail(db(), me, campaign_id, page=True)
    except NotFound:
        abort(404)
    if request.method == "GET":
        fields = "\n".join(f"{k}={v}" for k, v in d.overrides.items())
        return render_template("campaigns/edit.html", d=d, c=d.campaign, title=d.campaign.title,
                               fields_text=fields, problems=[])
    title = (request.form.get("title") or "").strip() or None
    overrides, bad = _overrides(request.form.get("fields"))
    if bad:
        return render_template("campaigns/edit.html", d=d, c=d.campaign, title=title or "",
                               fields_text=request.form.get("fields") or "", problems=bad), 400
    return _act(campaign_id, "edit", "已修改：{c.title}（{status}）", title=title,
                overrides=overrides)


# --- delivery ------------------------------------------------------------------------------


def _report(campaign_id: int) -> reports.DeliveryReport:
    """The funnel, channels and reasons; the per-minute series is stats.json's (the charts)."""
    try:
        return reports.delivery_report(db(), campaign_id, series=False)
    except NotFound:
        abort(404)


@bp.get("/<int:campaign_id>/delivery")
@roles_required()
def delivery(campaign_id: int) -> str:
    me = actor()
    try:
        d = actions.campaign_detail(db(), me, campaign_id, page=True)
    except NotFound:
        abort(404)
    return render_template("campaigns/delivery.html", c=d.campaign, d=d,
                           report=_report(campaign_id), full_export=me.role == "admin")


@bp.get("/<int:campaign_id>/progress")
@roles_required()
def progress(campaign_id: int) -> str:
    """htmx fragment: the funnel and reasons; it polls itself until the campaign finished."""
    return render_template("campaigns/_progress.html", report=_report(campaign_id),
                           campaign_id=campaign_id)


@bp.get("/<int:campaign_id>/stats.json")
@roles_required()
def stats(campaign_id: int) -> Response:
    """The delivery figures as JSON (push.reports.stats), for the charts."""
    try:
        return jsonify(reports.stats(db(), campaign_id))
    except NotFound:
        abort(404)


@bp.get("/<int:campaign_id>/deliveries.csv")
@roles_required()
def export_csv(campaign_id: int) -> Response:
    """Every delivery row as CSV, streamed; openids masked unless an admin (then audited)."""
    session = db()
    try:
        full = actions.authorize_delivery_export(session, actor(), campaign_id, rt().now())
    except NotFound:
        abort(404)
    session.commit()  # the audit entry exists before a single row leaves

    def lines() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        buffer.write("\ufeff")  # Excel opens UTF-8 CSV with a BOM correctly
        writer.writerow(reports.CSV_HEADER)
        for n, row in enumerate(reports.delivery_rows(db(), campaign_id, masked=not full), 1):
            writer.writerow(row)
            if n % 1000 == 0:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    name = f"campaign-{campaign_id}-deliveries.csv"
    return Response(stream_with_context(lines()), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})

