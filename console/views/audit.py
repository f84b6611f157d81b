"""Console page: the audit log (issue 9 item 7), for reviewers and admins.

Filter by actor, action, object (type and id; "campaign" + id is a campaign's trail) and
an Asia/Shanghai date range; pages newest first by keyset (`before` = the last id shown),
fast on a log of 100 000 entries. The CSV export is a POST (CSRF-protected: it writes an
audit entry, "audit_export" with the filter, committed before the first row is sent).
Details are rendered escaped; openids in them are masked for everyone but admins.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from flask import Blueprint, Response, render_template, request

from bot.clock import SHANGHAI
from bot.runtime import Runtime
from console.web import actor, db, roles_required, rt
from push import insights

bp = Blueprint("audit", __name__, url_prefix="/audit")
FILTER_FIELDS = ("actor", "action", "object_type", "object_id", "since", "until")


def _before() -> int | None:
    value = request.args.get("before", "")
    return int(value) if value.isascii() and value.isdigit() and len(value) < 10 else None


@bp.get("/")
@roles_required("reviewer")
def index() -> str:
    session = db()
    flt, errors = insights.parse_filter(request.args)
    before = _before()
    rows, next_before = insights.audit_page(session, actor(), flt, before)
    args = {k: request.args.get(k, "") for k in FILTER_FIELDS}
    return render_template("audit/index.html", rows=rows, next_before=next_before,
                           before=before, errors=errors, args=args,
                           filter_args={k: v for k, v in args.items() if v},
                           object_types=insights.audit_object_types(session))


@bp.post("/export")
@roles_required("reviewer")
def export() -> Response:
    session = db()
    flt, _errors = insights.parse_filter(request.form)
    runtime = rt()
    done = insights.export_audit(session, actor(), flt, runtime.now())
    session.commit()  # the export's own audit entry, before any row leaves
    stamp = runtime.now().astimezone(SHANGHAI).strftime("%Y%m%d-%H%M%S")
    return Response(_csv(runtime, done), mimetype="text/csv",
                    headers={"Content-Disposition":
                             f'attachment; filename="audit-{stamp}.csv"'})


def _csv(runtime: Runtime, done: insights.AuditExport) -> Iterator[str]:
    """The CSV text in chunks, read in a session of its own (the request's is closed while
    the response streams), with a BOM so spreadsheet programs read it as UTF-8."""
    buf = io.StringIO()
    buf.write("\ufeff")
    writer = csv.writer(buf)
    with runtime.sessions() as session:
        for n, row in enumerate(insights.export_rows(session, done), 1):
            writer.writerow(row)
            if n % 500 == 0:
                yield buf.getvalue()
                buf.seek(0)
                buf.truncate()
    yield buf.getvalue()
