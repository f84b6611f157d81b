"""Console page: citizens' questions (issue 9 item 6).

Today's and this week's questions by outcome (answered, list, fallback, ...) with shares,
the unanswered questions by frequency with "据此新建问答" (a prefilled draft record through
review: the content blueprint's `content.new`, linked only while it exists), subscriber
counts per topic and district, and the consent ledger per template. Figures come from
push.insights (read-only); no openid appears on this page.
"""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request

from bot.vocab import OUTCOME_LABELS
from console.web import db, roles_required, rt
from push import insights

bp = Blueprint("questions", __name__, url_prefix="/questions")


def _page() -> int:
    value = request.args.get("page", "1")
    return max(1, min(int(value), 10_000)) if value.isascii() and value.isdigit() else 1


@bp.get("/")
@roles_required()
def index() -> str:
    session = db()
    page = _page()
    today, week = insights.question_periods(session, rt().now())
    unanswered, more = insights.unanswered_page(session, page)
    return render_template(
        "questions/index.html", periods=(today, week), unanswered=unanswered, page=page,
        more=more, topics=insights.subscriber_figures(session),
        consents=insights.consent_figures(session, rt().settings),
        can_create="content.new" in current_app.view_functions, labels=OUTCOME_LABELS)
