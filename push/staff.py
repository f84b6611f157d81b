"""Staff accounts and their authentication (a per-account key, stored only as a scrypt hash).

先审查后发布 needs two real people, so identities must be unambiguous: names are stored
NFKC-normalised and case-folded (lookups normalise too), so "ａｌｉｃｅ" and "Alice" are the
account "alice"; invisible or control characters are refused, as are the names the system
itself writes in the audit log (`system`, `bootstrap`, ...). The first account must be an
admin, and creating it is atomic: it inserts the unique Meta row `staff_bootstrap` in the same
transaction, so of two concurrent bootstraps exactly one commits. Accounts can be disabled
and keys rotated, both audited.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import unicodedata
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from bot.clock import to_utc_naive
from bot.errors import NotFound, PermissionDenied
from bot.store.models import Meta, Role, Staff
from push.audit import BOOTSTRAP, SYSTEM, audit

SCRYPT = {"n": 2**14, "r": 8, "p": 1}
# Actor names the system writes in the audit log, and words that would read like one.
RESERVED = frozenset({SYSTEM, BOOTSTRAP, "admin-bootstrap", "qzbot", "worker", "scheduler",
                      "planner", "sweep", "recovery", "import", "anonymous", "unknown",
                      "nobody", "root-bootstrap"})
BOOTSTRAP_META = "staff_bootstrap"
NAME_PUNCTUATION = frozenset("._-")


def _hash(key: str, salt: bytes) -> str:
    digest = hashlib.scrypt(key.encode(), salt=salt, dklen=32, **SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def _verify(key: str, stored: str) -> bool:
    try:
        _, salt, _ = stored.split("$")
        return hmac.compare_digest(_hash(key, bytes.fromhex(salt)), stored)
    except ValueError:
        return False


def normalise_name(name: str) -> str:
    """The canonical account name: NFKC, case-folded; PermissionDenied if unusable."""
    norm = unicodedata.normalize("NFKC", name.strip()).casefold()
    norm = unicodedata.normalize("NFKC", norm)  # casefold can denormalise (e.g. ß -> ss)
    if not norm or len(norm) > 64:
        raise PermissionDenied("staff name must be 1-64 characters")
    # letters and digits (any script, e.g. 王伟) plus . _ -; no spaces, controls, zero-width
    # or combining characters that would make two names look alike
    bad = [c for c in norm if c not in NAME_PUNCTUATION
           and unicodedata.category(c)[0] not in "LN"]
    if bad or unicodedata.category(norm[0])[0] not in "LN":
        raise PermissionDenied(f"staff name {name!r}: letters and digits, then . _ - only")
    return norm


def _find(session: Session, name: str) -> Staff | None:
    """The account whose normalised name is `name`'s (legacy unnormalised rows included)."""
    try:
        norm = normalise_name(name)
    except PermissionDenied:
        return None
    found = session.scalar(select(Staff).where(Staff.name == norm))
    if found is not None:
        return found
    # accounts created before names were normalised: the staff table is small
    return next((s for s in session.scalars(select(Staff))
                 if _normalised_or_none(s.name) == norm), None)


def _normalised_or_none(name: str) -> str | None:
    try:
        return normalise_name(name)
    except PermissionDenied:
        return None


def find_staff(session: Session, name: str) -> Staff | None:
    """The account named `name` (compared normalised), or None."""
    return _find(session, name)


def active_admins(session: Session) -> int:
    """How many active admin accounts exist (the last one is never disabled or demoted)."""
    return session.scalar(select(func.count()).select_from(Staff).where(
        Staff.role == Role.ADMIN.value, Staff.active.is_(True))) or 0


def staff_count(session: Session) -> int:
    """How many staff accounts exist (0: bootstrap, the first account needs no login)."""
    return session.scalar(select(func.count()).select_from(Staff)) or 0


def all_staff(session: Session) -> list[Staff]:
    """Every account, by name."""
    return list(session.scalars(select(Staff).order_by(Staff.name)))


def add_staff(session: Session, name: str, role: str, now: datetime,
              actor: str) -> tuple[Staff, str]:
    """Create an account; returns it and its key (shown once, stored hashed)."""
    if role not in {r.value for r in Role}:
        raise PermissionDenied(f"unknown role {role!r} (editor, reviewer, admin)")
    norm = normalise_name(name)
    if norm in RESERVED:
        raise PermissionDenied(f"staff name {norm!r} is reserved for the system")
    if _find(session, norm) is not None:
        raise PermissionDenied(f"staff account {norm!r} already exists (names are compared "
                               "NFKC-normalised and case-folded)")
    if not staff_count(session):
        _claim_bootstrap(session, role, now)
    key = secrets.token_urlsafe(24)
    staff = Staff(name=norm, role=role, key_hash=_hash(key, secrets.token_bytes(16)),
                  active=True, created_at=to_utc_naive(now))
    session.add(staff)
    audit(session, actor, "staff_add", now, object_type="staff", object_id=norm, name=norm,
          role=role)
    try:
        session.flush()
    except IntegrityError:
        raise PermissionDenied(f"staff account {norm!r} already exists") from None
    return staff, key


def _claim_bootstrap(session: Session, role: str, now: datetime) -> None:
    """The first account: an admin, claimed by a unique Meta row in this transaction."""
    if role != Role.ADMIN.value:
        raise PermissionDenied("the first staff account must be an admin (--role admin)")
    session.add(Meta(key=BOOTSTRAP_META, value=to_utc_naive(now).isoformat()))
    try:
        session.flush()  # PostgreSQL waits for a concurrent bootstrap, then conflicts
    except (IntegrityError, OperationalError):  # SQLite: locked / stale snapshot
        raise PermissionDenied("the first staff account was created concurrently; "
                               "log in with it (--as ADMIN)") from None


def authenticate(session: Session, name: str, key: str | None) -> Staff:
    """The active account `name` if `key` is its key; PermissionDenied otherwise."""
    staff = _find(session, name)
    if staff is None:
        raise NotFound(f"no staff account {name!r}")
    if not staff.active:
        raise PermissionDenied(f"staff account {staff.name!r} is disabled")
    if not key or not _verify(key, staff.key_hash):
        raise PermissionDenied(f"wrong or missing key for {staff.name!r} "
                               "(set QZBOT_STAFF_KEY or --key)")
    return staff


def disable_staff(session: Session, name: str, actor: Staff, now: datetime) -> Staff:
    """Disable an account (admins only); the last active admin cannot be disabled."""
    require_role(actor, Role.ADMIN)
    staff = _find(session, name)
    if staff is None:
        raise NotFound(f"no staff account {name!r}")
    if staff.role == Role.ADMIN.value and staff.active and active_admins(session) <= 1:
        raise PermissionDenied(f"{staff.name} is the last active admin")
    staff.active = False
    staff.session_epoch = (staff.session_epoch or 0) + 1  # its console sessions end
    audit(session, actor.name, "staff_disable", now, object_type="staff",
          object_id=staff.name, name=staff.name)
    return staff


def rotate_key(session: Session, name: str, actor: Staff, now: datetime) -> tuple[Staff, str]:
    """A new key for `name` (an admin, or the account itself); the old key stops working."""
    staff = _find(session, name)
    if staff is None:
        raise NotFound(f"no staff account {name!r}")
    if staff.id != actor.id:
        require_role(actor, Role.ADMIN)
    key = secrets.token_urlsafe(24)
    staff.key_hash = _hash(key, secrets.token_bytes(16))
    audit(session, actor.name, "staff_rotate_key", now, object_type="staff",
          object_id=staff.name, name=staff.name)
    return staff, key


def require_role(staff: Staff, *roles: Role) -> None:
    """PermissionDenied unless the account has one of `roles` (admin always passes)."""
    if staff.role != Role.ADMIN.value and staff.role not in {r.value for r in roles}:
        wanted = " or ".join(r.value for r in roles)
        raise PermissionDenied(f"{staff.name} is {staff.role}; this needs {wanted}")
