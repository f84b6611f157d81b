"""Staff accounts and their authentication (a per-account key, stored only as a scrypt hash)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.clock import to_utc_naive
from bot.errors import NotFound, PermissionDenied
from bot.store.models import Role, Staff
from push.audit import audit

SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def _hash(key: str, salt: bytes) -> str:
    digest = hashlib.scrypt(key.encode(), salt=salt, dklen=32, **SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def _verify(key: str, stored: str) -> bool:
    try:
        _, salt, _ = stored.split("$")
        return hmac.compare_digest(_hash(key, bytes.fromhex(salt)), stored)
    except ValueError:
        return False


def staff_count(session: Session) -> int:
    """How many staff accounts exist (0: bootstrap, the first account needs no login)."""
    return session.scalar(select(func.count()).select_from(Staff)) or 0


def add_staff(session: Session, name: str, role: str, now: datetime,
              actor: str) -> tuple[Staff, str]:
    """Create an account; returns it and its key (shown once, stored hashed)."""
    if role not in {r.value for r in Role}:
        raise PermissionDenied(f"unknown role {role!r} (editor, reviewer, admin)")
    name = name.strip()
    if not name or len(name) > 64:
        raise PermissionDenied("staff name must be 1-64 characters")
    if session.scalar(select(Staff).where(Staff.name == name)):
        raise PermissionDenied(f"staff account {name!r} already exists")
    key = secrets.token_urlsafe(24)
    staff = Staff(name=name, role=role, key_hash=_hash(key, secrets.token_bytes(16)),
                  active=True, created_at=to_utc_naive(now))
    session.add(staff)
    audit(session, actor, "staff_add", now, name=name, role=role)
    return staff, key


def authenticate(session: Session, name: str, key: str | None) -> Staff:
    """The active account `name` if `key` is its key; PermissionDenied otherwise."""
    staff = session.scalar(select(Staff).where(Staff.name == name))
    if staff is None:
        raise NotFound(f"no staff account {name!r}")
    if not staff.active:
        raise PermissionDenied(f"staff account {name!r} is disabled")
    if not key or not _verify(key, staff.key_hash):
        raise PermissionDenied(f"wrong or missing key for {name!r} (set QZBOT_STAFF_KEY or --key)")
    return staff


def require_role(staff: Staff, *roles: Role) -> None:
    """PermissionDenied unless the account has one of `roles` (admin always passes)."""
    if staff.role != Role.ADMIN.value and staff.role not in {r.value for r in roles}:
        wanted = " or ".join(r.value for r in roles)
        raise PermissionDenied(f"{staff.name} is {staff.role}; this needs {wanted}")
