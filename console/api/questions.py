"""/api/v1/questions: citizens' questions as the questions page shows them (push/insights.py):
today's and this week's outcomes, subscribers per topic and district, consent-ledger figures,
and the unanswered questions by frequency. Any logged-in account (no openids here)."""

from __future__ import annotations

from flask_smorest import Blueprint

from console.api.auth import requires
from console.api.common import documented, install_errors
from console.api.schemas import Paging, QuestionSummary, UnansweredPage
from console.web import db, rt
from push import insights

bp = Blueprint("api_questions", __name__, url_prefix="/api/v1/questions",
               description="群众提问与订阅统计")
install_errors(bp)


@bp.route("/summary", methods=["GET"])
@requires()
@bp.response(200, QuestionSummary)
@documented(403)
def summary() -> dict:
    """Question outcomes today and this week (Asia/Shanghai), subscribers and consent."""
    session, runtime = db(), rt()
    today, week = insights.question_periods(session, runtime.now())
    return {"today": today, "week": week,
            "subscribers": [{"topic": t.topic, "citizens": t.citizens,
                             "reachable": t.reachable,
                             "districts": [{"district": d, "reachable": n}
                                           for d, n in t.districts]}
                            for t in insights.subscriber_figures(session)],
            "consent": insights.consent_figures(session, runtime.settings)}


@bp.route("/unanswered", methods=["GET"])
@requires()
@bp.arguments(Paging, location="query")
@bp.response(200, UnansweredPage)
@documented(403, 422)
def unanswered(args: dict) -> dict:
    """Unanswered questions, most frequent first."""
    rows, has_next = insights.unanswered_page(db(), args["page"], args["per_page"])
    return {"items": rows, "page": args["page"], "has_next": has_next}
