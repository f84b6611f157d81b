"""/api/v1/campaigns: the campaign use-cases of push/actions.py over JSON.

Each endpoint runs one service function in the request's session, commits, and only then
enqueues the fan-out the result asks for (as the CLI does: a fast worker must find the row).
Roles as on the pages: editors create, submit and schedule drafts; reviewers approve, reject
and reschedule; both cancel; anyone logged in reads. Approval names the review hash the
reviewer saw (GET /campaigns/{id} -> review_hash), so it is pinned to exactly that content.
"""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from bot.vocab import Role
from console.api.auth import caller, requires
from console.api.common import documented, install_errors
from console.api.schemas import (
    ApproveIn,
    CampaignCreate,
    CampaignDetail,
    CampaignFilter,
    CampaignList,
    CampaignResultOut,
    DeliveryFilter,
    DeliveryPage,
    RejectIn,
    ScheduleIn,
    StatsOut,
)
from console.web import db, rt
from push import actions, reports
from push.jobs import enqueue_fanout

bp = Blueprint("api_campaigns", __name__, url_prefix="/api/v1/campaigns",
               description="推送活动：创建、提交、审核（按审核哈希）、排期、取消")
install_errors(bp)


def _finish(result: actions.CampaignResult) -> dict[str, Any]:
    """Commit, then enqueue what the result asks for; the answer body."""
    db().commit()
    sending = None
    if result.fan_out is not None:
        enqueue_fanout(rt(), result.fan_out.campaign_id, at=result.fan_out.at)
        sending = "now" if result.fan_out.at is None else result.fan_out.at.isoformat()
    return {"campaign": result.campaign, "review": list(result.review),
            "changed": list(result.changed), "moved_to": result.moved_to, "sending": sending}


@bp.route("", methods=["GET"])
@requires()
@bp.arguments(CampaignFilter, location="query")
@bp.response(200, CampaignList)
@documented(401, 403, 422)
def list_campaigns(args: dict) -> dict:
    """The newest campaigns (at most 100), optionally in one status."""
    return {"items": actions.list_campaigns(db(), caller(), status=args.get("status"))}


@bp.route("/review-queue", methods=["GET"])
@requires()
@bp.response(200, CampaignList)
@documented(403)
def review_queue() -> dict:
    """Submitted campaigns the caller may review (not written, edited or submitted by them;
    empty for editors)."""
    return {"items": actions.review_queue(db(), caller())}


@bp.route("", methods=["POST"])
@requires(Role.EDITOR)
@bp.arguments(CampaignCreate)
@bp.response(201, CampaignDetail)
@documented(401, 403, 422)
def create_campaign(args: dict) -> dict:
    """Create a draft (editors): records by "kind:id", an audience (topic with district and
    notice kind, an explicit openid list, or every follower)."""
    session, runtime = db(), rt()
    audience = actions.Audience(topic=args["topic"], district=args["district"],
                                notice_kind=args["notice_kind"], openids=args["openids"],
                                all_followers=args["all_followers"])
    view = actions.create(session, runtime.settings, caller(), runtime.now(),
                          refs=args["records"], audience=audience, urgent=args["urgent"],
                          title=args["title"], overrides=args["overrides"],
                          template_id=args["template_id"], send_at=args["send_at"])
    session.commit()
    return _detail(view.id)


def _detail(campaign_id: int) -> dict:
    d = actions.campaign_detail(db(), caller(), campaign_id, trail_limit=actions.TRAIL_SHOWN)
    return {"campaign": d.campaign, "review": list(d.review), "review_hash": d.review_hash,
            "trail": list(d.trail), "trail_total": d.trail_total, "counts": d.counts}


@bp.route("/<int(max=2147483647):campaign_id>", methods=["GET"])
@requires()
@bp.response(200, CampaignDetail)
@documented(401, 403, 404)
def get_campaign(campaign_id: int) -> dict:
    """A campaign, what its reviewer approves (and the review hash), its audit trail and its
    delivery counts."""
    return _detail(campaign_id)


@bp.route("/<int(max=2147483647):campaign_id>/submit", methods=["POST"])
@requires(Role.EDITOR)
@bp.response(200, CampaignResultOut)
@documented(401, 403, 404, 409, 422)
def submit_campaign(campaign_id: int) -> dict:
    """Hand a draft (or a rejected campaign) to review (editors)."""
    runtime = rt()
    return _finish(actions.submit(db(), runtime.settings, caller(), campaign_id, runtime.now()))


@bp.route("/<int(max=2147483647):campaign_id>/approve", methods=["POST"])
@requires(Role.REVIEWER)
@bp.arguments(ApproveIn)
@bp.response(200, CampaignResultOut)
@documented(401, 403, 404, 409, 422)
def approve_campaign(args: dict, campaign_id: int) -> dict:
    """Approve exactly what `hash` names (reviewers; not the author, submitter or an editor of
    it); the fan-out is queued for now or the send time."""
    runtime = rt()
    return _finish(actions.approve(db(), runtime.settings, caller(), campaign_id,
                                   runtime.now(), expect=args["hash"]))


@bp.route("/<int(max=2147483647):campaign_id>/reject", methods=["POST"])
@requires(Role.REVIEWER)
@bp.arguments(RejectIn)
@bp.response(200, CampaignResultOut)
@documented(401, 403, 404, 409, 422)
def reject_campaign(args: dict, campaign_id: int) -> dict:
    """Send a submitted campaign back to its author with a reason (reviewers)."""
    runtime = rt()
    return _finish(actions.reject(db(), runtime.settings, caller(), campaign_id,
                                  runtime.now(), reason=args["reason"]))


@bp.route("/<int(max=2147483647):campaign_id>/schedule", methods=["POST"])
@requires(Role.EDITOR, Role.REVIEWER)
@bp.arguments(ScheduleIn)
@bp.response(200, CampaignResultOut)
@documented(401, 403, 404, 409, 422)
def schedule_campaign(args: dict, campaign_id: int) -> dict:
    """Set the send time (editors before approval, reviewers after; quiet hours move a
    non-urgent time to the morning: see moved_to)."""
    runtime = rt()
    return _finish(actions.schedule(db(), runtime.settings, caller(), campaign_id,
                                    runtime.now(), at=args["at"]))


@bp.route("/<int(max=2147483647):campaign_id>/cancel", methods=["POST"])
@requires(Role.EDITOR, Role.REVIEWER)
@bp.response(200, CampaignResultOut)
@documented(401, 403, 404, 409)
def cancel_campaign(campaign_id: int) -> dict:
    """Cancel a campaign (one that is sending stops at its next batch group)."""
    runtime = rt()
    return _finish(actions.cancel(db(), runtime.settings, caller(), campaign_id, runtime.now()))


@bp.route("/<int(max=2147483647):campaign_id>/stats", methods=["GET"])
@requires()
@bp.response(200, StatsOut)
@documented(403, 404)
def campaign_stats(campaign_id: int) -> dict:
    """Delivery figures (push/reports.py, as the delivery page): the funnel targeted ->
    eligible -> sent / failed / unknown / open, per channel, failures and skips by reason
    with the errcode explained, sends per minute (Asia/Shanghai)."""
    return reports.stats(db(), campaign_id)


@bp.route("/<int(max=2147483647):campaign_id>/deliveries", methods=["GET"])
@requires()
@bp.arguments(DeliveryFilter, location="query")
@bp.response(200, DeliveryPage)
@documented(403, 404, 422)
def campaign_deliveries(args: dict, campaign_id: int) -> dict:
    """The campaign's delivery rows in id order, `limit` at a time after row `after` (the
    answer's next_after; null on the last page). Openids are masked unless you are an admin;
    an admin's read of full openids is audited (delivery_read_full, once per 10 minutes and
    campaign)."""
    session = db()
    rows, next_after = actions.delivery_page(session, caller(), campaign_id, rt().now(),
                                             rt().redis, after=args["after"],
                                             limit=args["limit"], status=args.get("status"))
    session.commit()  # the audit entry of a full-openid read
    return {"items": rows, "next_after": next_after}
