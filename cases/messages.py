"""网民留言: the workflow's rules (which state may go where), the intake check and the reply
limits per category ([cases] message_limits, working days from acceptance).

Like cases/applications.py, the service functions in cases/actions.py enforce these rules.
"""

from __future__ import annotations

from typing import Any

from bot.errors import CaseInvalid
from bot.settings import Settings
from bot.vocab import MESSAGE_CATEGORIES, RATINGS
from bot.vocab import MessageState as M

ALLOWED_FROM: dict[str, frozenset[str]] = {
    "accept_message": frozenset({M.SUBMITTED}),
    "reject_message": frozenset({M.SUBMITTED}),
    "convert_message_to_application": frozenset({M.SUBMITTED, M.ACCEPTED, M.RETURNED}),
    "transfer_message": frozenset({M.ACCEPTED, M.RETURNED}),
    "sign_message": frozenset({M.TRANSFERRED}),
    "return_message": frozenset({M.TRANSFERRED}),
    "draft_reply": frozenset({M.SIGNED, M.HANDLING, M.REDO}),
    "submit_reply": frozenset({M.HANDLING}),
    "review_reply": frozenset({M.REPLY_REVIEW}),
    "request_extension": frozenset({M.SIGNED, M.HANDLING, M.REDO}),
    "decide_extension": frozenset({M.SIGNED, M.HANDLING, M.REDO, M.REPLY_REVIEW}),
    "rate_case": frozenset({M.REPLIED}),
    "close_message": frozenset({M.REPLIED, M.VISITED}),
    "redo_message": frozenset({M.REPLIED, M.VISITED}),
}

CONTENT_MAX = 2000
CONTACT_FIELDS = {"name": 60, "phone": 30, "email": 120}


def check_message(settings: Settings, category: str, content: str,
                  contact: dict[str, Any] | None) -> tuple[str, dict[str, str]]:
    """The content (trimmed) and contact; raises CaseInvalid listing every problem."""
    problems = []
    text = (content or "").strip()
    if not text:
        problems.append("content: required")
    elif len(text) > CONTENT_MAX:
        problems.append(f"content: at most {CONTENT_MAX} characters")
    if category not in limits(settings):
        problems.append(f"category: one of {'、'.join(limits(settings))}")
    clean: dict[str, str] = {}
    for key, value in (contact or {}).items():
        if key not in CONTACT_FIELDS:
            problems.append(f"contact.{key}: unknown field")
            continue
        value = str(value or "").strip()
        if len(value) > CONTACT_FIELDS[key]:
            problems.append(f"contact.{key}: at most {CONTACT_FIELDS[key]} characters")
        elif value:
            clean[key] = value
    if problems:
        raise CaseInvalid(problems)
    return text, clean


def limits(settings: Settings) -> dict[str, int]:
    """Category -> working days to reply (config, defaults for categories it leaves out)."""
    defaults = {"咨询": 5, "建议": 10, "投诉举报": 15, "求助": 5}
    merged = {c: defaults[c] for c in MESSAGE_CATEGORIES}
    merged.update(settings.cases.message_limits)
    return merged


def reply_days(settings: Settings, category: str | None) -> int:
    """The reply limit of a category (the longest when unknown)."""
    table = limits(settings)
    return table.get(category or "", max(table.values()))


def check_rating(rating: str) -> str:
    """满意 / 基本满意 / 不满意 (also "1"/"2"/"3" as the chat offers them)."""
    word = (rating or "").strip()
    if word in ("1", "2", "3"):
        word = RATINGS[int(word) - 1]
    if word not in RATINGS:
        raise CaseInvalid([f"rating: one of {'、'.join(RATINGS)}"])
    return word
