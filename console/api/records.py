"""/api/v1/records: content records and their drafts (editorial/actions.py): list, read,
draft, submit, publish (approve) or reject, withdraw. Editors write drafts, reviewers
decide (never on a draft they wrote or edited), admins both; anyone logged in reads."""

from __future__ import annotations

from flask_smorest import Blueprint

from bot.vocab import Role
from console.api.auth import caller, requires
from console.api.common import documented, install_errors
from console.api.schemas import (
    DraftApproveIn,
    DraftCreate,
    DraftUpdate,
    PublishOut,
    RecordOut,
    RecordPageOut,
    RecordQuery,
    RejectIn,
    RevisionDetailOut,
    RevisionList,
    RevisionOut,
)
from console.web import db, rt
from editorial import actions as editorial

bp = Blueprint("api_records", __name__, url_prefix="/api/v1/records",
               description="内容记录：草稿 → 审核 → 发布")
install_errors(bp)


@bp.route("", methods=["GET"])
@requires()
@bp.arguments(RecordQuery, location="query")
@bp.response(200, RecordPageOut)
@documented(403, 422)
def list_records(args: dict) -> dict:
    """Records (or open drafts, by status), newest change first, filtered and paged."""
    filters = editorial.RecordFilters(**{k: args.get(k, "") for k in
                                         ("kind", "disclosure", "district", "status", "q")})
    page = editorial.list_records(db(), caller(), filters, args["page"], args["per_page"])
    return {"items": list(page.rows), "page": page.page, "per_page": page.per_page,
            "total": page.total}


@bp.route("/drafts", methods=["GET"])
@requires()
@bp.response(200, RevisionList)
@documented(403)
def review_queue() -> dict:
    """Drafts in review the caller may decide (not written or edited by them)."""
    return {"items": editorial.review_queue(db(), caller())}


@bp.route("/drafts", methods=["POST"])
@requires(Role.EDITOR)
@bp.arguments(DraftCreate)
@bp.response(201, RevisionOut)
@documented(403, 404, 409, 422)
def create_draft(args: dict) -> object:
    """A new draft (editors): a new record, or an edit of the live record with that id."""
    session = db()
    view = editorial.create_draft(session, caller(), args["kind"], args["data"], rt().now(),
                                  from_unanswered=args["from_unanswered"])
    session.commit()
    return view


@bp.route("/drafts/<int(max=2147483647):revision_id>", methods=["GET"])
@requires()
@bp.response(200, RevisionDetailOut)
@documented(403, 404)
def get_draft(revision_id: int) -> object:
    """A revision, every validation problem, whether it is stale, and the live version."""
    return editorial.get_revision(db(), caller(), revision_id, rt().settings.bot.districts)


@bp.route("/drafts/<int(max=2147483647):revision_id>", methods=["PUT"])
@requires(Role.EDITOR)
@bp.arguments(DraftUpdate)
@bp.response(200, RevisionOut)
@documented(403, 404, 409, 422)
def update_draft(args: dict, revision_id: int) -> object:
    """Replace a draft's fields (editors; the id stays)."""
    return _commit(editorial.update_draft(db(), caller(), revision_id, args["data"],
                                          rt().now()))


@bp.route("/drafts/<int(max=2147483647):revision_id>/submit", methods=["POST"])
@requires(Role.EDITOR)
@bp.response(200, RevisionOut)
@documented(403, 404, 409, 422)
def submit_draft(revision_id: int) -> object:
    """Hand a valid draft to review (editors); every validation problem is listed."""
    runtime = rt()
    return _commit(editorial.submit(db(), caller(), revision_id, runtime.now(),
                                    runtime.settings.bot.districts))


@bp.route("/drafts/<int(max=2147483647):revision_id>/approve", methods=["POST"])
@requires(Role.REVIEWER)
@bp.arguments(DraftApproveIn)
@bp.response(200, PublishOut)
@documented(403, 404, 409, 422)
def approve_draft(args: dict, revision_id: int) -> object:
    """Publish a draft in review (reviewers; not one they wrote or edited), pinned to the
    `digest` the reviewer read (409 if the draft changed since): citizens' answers change
    within content_check_seconds."""
    runtime = rt()
    return _commit(editorial.approve(db(), runtime.settings, caller(), revision_id,
                                     runtime.now(), expect=args["expect"]))


@bp.route("/drafts/<int(max=2147483647):revision_id>/reject", methods=["POST"])
@requires(Role.REVIEWER)
@bp.arguments(RejectIn)
@bp.response(200, RevisionOut)
@documented(403, 404, 409, 422)
def reject_draft(args: dict, revision_id: int) -> object:
    """Send a draft in review back with a reason (reviewers)."""
    return _commit(editorial.reject(db(), caller(), revision_id, rt().now(), args["reason"]))


@bp.route("/drafts/<int(max=2147483647):revision_id>/withdraw", methods=["POST"])
@requires()
@bp.response(200, RevisionOut)
@documented(403, 404, 409)
def withdraw_draft(revision_id: int) -> object:
    """Pull an open draft back (its author or an admin)."""
    return _commit(editorial.withdraw(db(), caller(), revision_id, rt().now()))


@bp.route("/<kind>/<rid>", methods=["GET"])
@requires()
@bp.response(200, RecordOut)
@documented(403, 404)
def get_record(kind: str, rid: str) -> object:
    """A live record: fields, source (pack or console edit), open draft, history."""
    return editorial.get_record(db(), caller(), kind, rid)


def _commit(result: object) -> object:
    db().commit()
    return result
