"""依申请公开 applications: the workflow's rules (which state may go where), the article-29
intake check, and uploaded files (type and size checked, stored outside the web root).

The service functions in cases/actions.py load, authorise and record; this module says what
is allowed, so the console can show the same rules (ALLOWED_FROM) the service enforces.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.errors import CaseInvalid
from bot.settings import Settings
from bot.store.models import CaseFile
from bot.vocab import (
    ANSWER_REASONS,
    ANSWER_TYPES,
    APPLICANT_TYPES,
    DELIVERY_FORMS,
    DELIVERY_WAYS,
)
from bot.vocab import ApplicationState as A

# use-case -> the states it may start from
ALLOWED_FROM: dict[str, frozenset[str]] = {
    "confirm_receipt": frozenset({A.REGISTERED}),
    "request_correction": frozenset({A.REVIEWING}),
    "submit_correction": frozenset({A.CORRECTION}),
    "receive_correction": frozenset({A.CORRECTION}),
    "assign": frozenset({A.REVIEWING, A.HANDLING}),
    "start_consultation": frozenset({A.HANDLING}),
    "end_consultation": frozenset({A.CONSULTATION}),
    "request_extension": frozenset({A.HANDLING, A.CONSULTATION, A.ANSWER_DRAFTED}),
    "decide_extension": frozenset({A.HANDLING, A.CONSULTATION, A.ANSWER_DRAFTED,
                                   A.ANSWER_REVIEW}),
    "draft_answer": frozenset({A.HANDLING, A.ANSWER_DRAFTED}),
    "submit_answer": frozenset({A.ANSWER_DRAFTED}),
    "review_answer": frozenset({A.ANSWER_REVIEW}),
    "record_delivery": frozenset({A.DELIVERING}),
    "archive": frozenset({A.DELIVERING}),
    "close_application": frozenset({A.REGISTERED, A.REVIEWING, A.CORRECTION, A.HANDLING,
                                    A.CONSULTATION, A.ANSWER_DRAFTED, A.ANSWER_REVIEW}),
}

# the applicant's fields (art. 29); `name` is a person's name or an organisation's
REQUIRED_APPLICANT = ("name", "id_type", "id_number", "phone")
OPTIONAL_APPLICANT = ("address", "email", "organisation_code", "contact_person")
LIMITS = {"name": 60, "id_type": 20, "id_number": 40, "phone": 30, "address": 200,
          "email": 120, "organisation_code": 40, "contact_person": 60}
SUBJECT_MAX = 2000

# accepted uploads: content type -> (file signatures, extension)
FILE_TYPES: dict[str, tuple[tuple[bytes, ...], str]] = {
    "image/jpeg": ((b"\xff\xd8\xff",), ".jpg"),
    "image/png": ((b"\x89PNG\r\n\x1a\n",), ".png"),
    "application/pdf": ((b"%PDF-",), ".pdf"),
}
FILE_PURPOSES = ("identity_proof", "correction", "answer", "other")


def check_intake(applicant: dict[str, Any], applicant_type: str, subject: str,
                 document_no: str | None, delivery_form: str,
                 delivery_way: str) -> dict[str, str]:
    """The art.-29 fields, trimmed; raises CaseInvalid listing every problem."""
    problems: list[str] = []
    clean: dict[str, str] = {}
    for key in REQUIRED_APPLICANT + OPTIONAL_APPLICANT:
        value = str(applicant.get(key) or "").strip()
        if key in REQUIRED_APPLICANT and not value:
            problems.append(f"applicant.{key}: required")
        elif len(value) > LIMITS[key]:
            problems.append(f"applicant.{key}: at most {LIMITS[key]} characters")
        if value:
            clean[key] = value
    unknown = set(applicant) - set(LIMITS)
    if unknown:
        problems.append(f"applicant: unknown fields {', '.join(sorted(unknown))}")
    if applicant_type not in APPLICANT_TYPES:
        problems.append(f"applicant_type: one of {'、'.join(APPLICANT_TYPES)}")
    if not (subject or "").strip() and not (document_no or "").strip():
        problems.append("subject: describe the information or give its 文号")
    if len(subject or "") > SUBJECT_MAX or len(document_no or "") > 64:
        problems.append(f"subject: at most {SUBJECT_MAX} characters; document_no at most 64")
    if delivery_form not in DELIVERY_FORMS:
        problems.append(f"delivery_form: one of {'、'.join(DELIVERY_FORMS)}")
    if delivery_way not in DELIVERY_WAYS:
        problems.append(f"delivery_way: one of {'、'.join(DELIVERY_WAYS)}")
    if delivery_way == "邮寄" and not clean.get("address"):
        problems.append("applicant.address: required for delivery by post")
    if delivery_way == "电子邮件" and not clean.get("email"):
        problems.append("applicant.email: required for delivery by e-mail")
    if problems:
        raise CaseInvalid(problems)
    return clean


def check_answer(answer_type: str, reason: str | None) -> None:
    """An answer type of the report, with one of its reasons where it has any."""
    if answer_type not in ANSWER_TYPES:
        raise CaseInvalid([f"answer_type: one of {'、'.join(ANSWER_TYPES)}"])
    reasons = ANSWER_REASONS[answer_type]
    if reasons and reason not in reasons:
        raise CaseInvalid([f"reason: one of {'、'.join(reasons)}"])
    if not reasons and reason:
        raise CaseInvalid([f"reason: {answer_type} takes no reason"])


def check_upload(settings: Settings, filename: str, content_type: str, data: bytes,
                 purpose: str) -> list[str]:
    """Problems with one upload: purpose, size, declared type and the bytes' signature."""
    problems = []
    limit = settings.cases.max_upload_mb * 1024 * 1024
    if purpose not in FILE_PURPOSES:
        problems.append(f"{filename}: unknown purpose {purpose}")
    if not data:
        problems.append(f"{filename}: empty file")
    elif len(data) > limit:
        problems.append(f"{filename}: larger than {settings.cases.max_upload_mb} MB")
    spec = FILE_TYPES.get(content_type)
    if spec is None:
        problems.append(f"{filename}: only JPEG, PNG or PDF files")
    elif data and not data.startswith(spec[0]):
        problems.append(f"{filename}: content is not {content_type}")
    if len(filename) > 200:
        problems.append("filename: at most 200 characters")
    return problems


def store_upload(settings: Settings, case_id: int | None, filename: str, content_type: str,
                 data: bytes, purpose: str, now: datetime) -> CaseFile:
    """Write a checked upload under [cases] upload_dir with a random name (never the
    uploader's) and return its row (not yet added to a session)."""
    problems = check_upload(settings, filename, content_type, data, purpose)
    if problems:
        raise CaseInvalid(problems)
    folder = Path(settings.cases.upload_dir)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    stored = secrets.token_hex(16) + FILE_TYPES[content_type][1]
    (folder / stored).write_bytes(data)
    # display only: no folders, no control characters (a newline would break the download's
    # Content-Disposition header)
    safe_name = "".join(c for c in Path(filename.replace("\\", "/")).name
                        if c.isprintable()).strip() or "upload"
    return CaseFile(case_id=case_id, purpose=purpose, filename=safe_name[:200],
                    stored_name=stored, content_type=content_type, size=len(data),
                    sha256=hashlib.sha256(data).hexdigest(),
                    created_at=now.astimezone(UTC).replace(tzinfo=None))


def load_upload(settings: Settings, stored_name: str) -> bytes:
    """An upload's bytes (the stored name is ours: random hex and an extension)."""
    if "/" in stored_name or "\\" in stored_name or stored_name.startswith("."):
        raise CaseInvalid(["bad stored name"])
    return (Path(settings.cases.upload_dir) / stored_name).read_bytes()
