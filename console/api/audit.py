"""/api/v1/audit: the audit log, filtered and paged newest first (reviewers and admins), as
the audit page shows it (push/insights.py): openids masked unless the caller is an admin."""

from __future__ import annotations

import json

from flask_smorest import Blueprint

from bot.vocab import Role
from console.api.auth import caller, requires
from console.api.common import documented, install_errors
from console.api.errors import ApiError
from console.api.schemas import AuditPage, AuditQuery
from console.web import db
from push import insights

bp = Blueprint("api_audit", __name__, url_prefix="/api/v1/audit", description="审计日志")
install_errors(bp)


@bp.route("", methods=["GET"])
@requires(Role.REVIEWER)
@bp.arguments(AuditQuery, location="query")
@bp.response(200, AuditPage)
@documented(403, 422)
def audit_log(args: dict) -> dict:
    """Entries newest first, filtered by actor, action, object (type "campaign" + id filters
    by campaign) and days (Asia/Shanghai); `before` pages (next_before)."""
    raw = {k: (v.isoformat() if k in ("since", "until") else str(v))
           for k, v in args.items() if k not in ("before", "limit")}
    flt, errors = insights.parse_filter(raw)
    if errors:
        raise ApiError(422, "validation_error", "；".join(errors), {"problems": errors})
    rows, next_before = insights.audit_page(db(), caller(), flt, before=args.get("before"),
                                            per_page=args["limit"])
    return {"items": [{"id": r.id, "at": r.at, "actor": r.actor, "action": r.action,
                       "object_type": r.object_type, "object_id": r.object_id,
                       "detail": _detail(r.detail)} for r in rows],
            "next_before": next_before}


def _detail(text: str) -> dict:
    value = json.loads(text or "{}")
    return value if isinstance(value, dict) else {"value": value}
