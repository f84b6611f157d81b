"""Tracking numbers and 查询码 of cases.

Numbers run per kind and year: "YSQ-2026-000123" (依申请公开), "LY-2026-000045" (留言). The
counter is a Meta row ("case_seq:YSQ:2026") read FOR UPDATE, so two registrations in two
transactions wait for each other on PostgreSQL (SQLite serialises writers anyway); the
unique index on cases.number is the last guard.

The 查询码 is 6 characters from digits and capitals without look-alikes (0/O, 1/I/L), shown
once to the citizen and stored as sha256 over the number and the code, so the same code on
two cases hashes differently and a stolen table does not list codes.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.store.models import Meta
from bot.vocab import CaseKind

PREFIXES = {CaseKind.APPLICATION.value: "YSQ", CaseKind.MESSAGE.value: "LY"}
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 6


def next_number(session: Session, kind: str, year: int) -> str:
    """The next tracking number of `kind` in `year` (takes the counter row's lock)."""
    prefix = PREFIXES[kind]
    key = f"case_seq:{prefix}:{year}"
    row = session.scalar(select(Meta).where(Meta.key == key).with_for_update())
    if row is None:
        row = Meta(key=key, value="0")
        session.add(row)
    value = int(row.value) + 1
    row.value = str(value)
    session.flush()
    return f"{prefix}-{year}-{value:06d}"


def kind_of(number: str) -> str | None:
    """The kind a tracking number names, or None when it is not one of ours."""
    prefix = number.strip().upper().split("-", 1)[0]
    return next((k for k, p in PREFIXES.items() if p == prefix), None)


def normalise(number: str) -> str:
    """A number as typed ("ysq-2026-123", "YSQ 2026 000123") in stored form, or "" when it
    cannot be one."""
    parts = number.strip().upper().replace(" ", "-").replace("－", "-").split("-")
    parts = [p for p in parts if p]
    if len(parts) != 3 or parts[0] not in PREFIXES.values():
        return ""
    if not (parts[1].isdigit() and len(parts[1]) == 4 and parts[2].isdigit()
            and len(parts[2]) <= 6):
        return ""
    return f"{parts[0]}-{parts[1]}-{int(parts[2]):06d}"


def new_query_code() -> str:
    """A fresh 查询码 (about 30 bits)."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def hash_query_code(number: str, code: str) -> str:
    """What is stored for a case's 查询码."""
    return hashlib.sha256(f"{number}:{code.strip().upper()}".encode()).hexdigest()


def query_code_matches(number: str, code: str | None, stored: str) -> bool:
    """Does `code` open case `number` (constant-time)?"""
    if not code:
        return False
    return hmac.compare_digest(hash_query_code(number, code), stored)
