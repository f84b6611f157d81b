"""API tokens for /api/v1: per account, scoped ("read", "write"), revocable, hashed at rest.

A token is "qzt_" + 43 url-safe characters (32 random bytes), shown once when it is created.
Only its sha256 is stored: the secret has 256 bits of entropy, so a fast hash is enough (no
salt or KDF needed, unlike a password) and the lookup is by the hash itself, so checking a
token leaks nothing through timing about stored tokens. The first characters are kept as a
`prefix` so lists can tell tokens apart. A token acts as its account with the account's
role; "write" (which includes "read") is needed for anything but reading. A token stops
working when it is revoked, when it expires ([console] api_token_days; 0 = never) or when its
account is disabled. `last_used_at` is written at most once a minute, so a busy script does
not turn every read into a write. Creating and revoking are audited (object "api_token").
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.clock import to_utc_naive
from bot.errors import InvalidTransition, NotFound, PermissionDenied, QzbotError
from bot.store.models import ApiToken, Role, Staff
from push.audit import audit

TOKEN_PREFIX = "qzt_"
SCOPES = ("read", "write")
PREFIX_SHOWN = 10  # "qzt_" + 6 characters of the secret, kept for lists
TOUCH_EVERY = timedelta(minutes=1)  # last_used_at is written at most this often
OBJECT = "api_token"
MAX_NAME = 64
MAX_ACTIVE_PER_ACCOUNT = 20


class TokenInvalid(QzbotError):
    """A token request that cannot be met; `problems` lists every reason."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


@dataclass(frozen=True)
class ApiTokenView:
    """A token as lists show it (never the secret, never its hash); times are aware UTC."""

    id: int
    name: str
    owner: str
    prefix: str
    scopes: tuple[str, ...]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    state: str  # "active" | "expired" | "revoked"


@dataclass(frozen=True)
class NewApiToken:
    """A token just created and its secret (shown once: only the hash is stored)."""

    token: ApiTokenView
    secret: str


def _aware(at: datetime | None) -> datetime | None:
    return at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at


def hash_token(secret: str) -> str:
    """The stored form of a token: sha256 hex of its text."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def state_of(token: ApiToken, now: datetime) -> str:
    """"revoked", "expired" or "active"."""
    if token.revoked_at is not None:
        return "revoked"
    if token.expires_at is not None and token.expires_at <= to_utc_naive(now):
        return "expired"
    return "active"


def view(token: ApiToken, owner: str, now: datetime) -> ApiTokenView:
    """The list view of a loaded token."""
    return ApiTokenView(id=token.id, name=token.name, owner=owner, prefix=token.prefix,
                        scopes=tuple(token.scopes or ()), created_at=_aware(token.created_at),
                        expires_at=_aware(token.expires_at),
                        last_used_at=_aware(token.last_used_at),
                        revoked_at=_aware(token.revoked_at), state=state_of(token, now))


def normalise_scopes(scopes: list[str] | tuple[str, ...]) -> list[str]:
    """The scopes to store: known ones only, at least one; "write" includes "read"."""
    wanted = {str(s).strip().lower() for s in scopes}
    unknown = sorted(wanted - set(SCOPES))
    if unknown or not wanted:
        got = ", ".join(unknown) or "none"
        raise TokenInvalid([f"scopes: choose read and/or write (got {got})"])
    if "write" in wanted:
        wanted.add("read")
    return [s for s in SCOPES if s in wanted]


def _clean_name(name: str) -> str:
    name = unicodedata.normalize("NFKC", (name or "").strip())
    if not name or len(name) > MAX_NAME:
        raise TokenInvalid([f"name: 1-{MAX_NAME} characters"])
    if any(unicodedata.category(c)[0] == "C" for c in name):
        raise TokenInvalid(["name: no control or invisible characters"])
    return name


def create_token(session: Session, staff: Staff, name: str, scopes: list[str],
                 now: datetime, days: int) -> NewApiToken:
    """A new token for `staff` (the account acting for itself), valid `days` days (0 =
    never expires); returns the secret once. Audited."""
    clean, wanted = _clean_name(name), normalise_scopes(scopes)
    active = [t for t in session.scalars(select(ApiToken).where(
        ApiToken.staff_id == staff.id, ApiToken.revoked_at.is_(None)))
        if state_of(t, now) == "active"]
    if len(active) >= MAX_ACTIVE_PER_ACCOUNT:
        raise TokenInvalid([f"at most {MAX_ACTIVE_PER_ACCOUNT} active tokens per account: "
                               "revoke one first"])
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    at = to_utc_naive(now)
    token = ApiToken(staff_id=staff.id, name=clean, prefix=secret[:PREFIX_SHOWN],
                     token_hash=hash_token(secret), scopes=wanted, created_at=at,
                     expires_at=at + timedelta(days=days) if days > 0 else None)
    session.add(token)
    session.flush()
    audit(session, staff.name, "api_token_create", now, object_type=OBJECT,
          object_id=str(token.id), name=clean, scopes=wanted, prefix=token.prefix,
          expires_at=token.expires_at.isoformat() if token.expires_at else None)
    return NewApiToken(view(token, staff.name, now), secret)


def list_tokens(session: Session, staff: Staff, now: datetime,
                everyone: bool = False) -> list[ApiTokenView]:
    """`staff`'s own tokens, newest first; `everyone` (admins only): every account's."""
    stmt = select(ApiToken, Staff.name).join(Staff, Staff.id == ApiToken.staff_id)
    if everyone:
        require_admin(staff)
    else:
        stmt = stmt.where(ApiToken.staff_id == staff.id)
    return [view(t, owner, now) for t, owner in session.execute(stmt.order_by(ApiToken.id.desc()))]


def require_admin(staff: Staff) -> None:
    if staff.role != Role.ADMIN.value:
        raise PermissionDenied(f"{staff.name} is {staff.role}; this needs admin")


def revoke_all(session: Session, account: Staff, actor: str, now: datetime,
               why: str) -> int:
    """Revoke every active token of `account` (a password reset: a token minted with a stolen
    session must not outlive the reset); audited once with the count. Returns the count."""
    at = to_utc_naive(now)
    rows = list(session.scalars(select(ApiToken).where(ApiToken.staff_id == account.id,
                                                       ApiToken.revoked_at.is_(None))))
    for row in rows:
        row.revoked_at = at
    if rows:
        audit(session, actor, "api_token_revoke_all", now, object_type="staff",
              object_id=account.name, count=len(rows), why=why)
    return len(rows)


def revoke_token(session: Session, staff: Staff, token_id: int, now: datetime) -> ApiTokenView:
    """Revoke a token: one's own, or (admins) anyone's. Another account's token is NotFound
    for a non-admin (its existence is not revealed). Audited."""
    row = session.execute(select(ApiToken, Staff.name).join(Staff, Staff.id == ApiToken.staff_id)
                          .where(ApiToken.id == token_id).with_for_update(of=ApiToken)).first()
    if row is None or (row[0].staff_id != staff.id and staff.role != Role.ADMIN.value):
        raise NotFound(f"no API token {token_id}")
    token, owner = row
    if token.revoked_at is not None:
        raise InvalidTransition(f"API token {token_id} is already revoked")
    token.revoked_at = to_utc_naive(now)
    audit(session, staff.name, "api_token_revoke", now, object_type=OBJECT,
          object_id=str(token.id), name=token.name, prefix=token.prefix, owner=owner)
    return view(token, owner, now)


@dataclass(frozen=True)
class TokenCheck:
    """The outcome of presenting a token: the account and scopes, or why it was refused."""

    staff: Staff | None
    scopes: frozenset[str]
    refused: str | None = None  # "unknown" | "revoked" | "expired" | "inactive"


def authenticate(session: Session, secret: str, now: datetime) -> TokenCheck:
    """Who a presented token acts as. Looked up by its hash (the secret itself is never
    compared), then revoked / expired / account disabled are refused. Touches last_used_at
    at most once a minute (in the caller's transaction)."""
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        return TokenCheck(None, frozenset(), "unknown")
    digest = hash_token(secret)
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == digest))
    if token is None or not hmac.compare_digest(token.token_hash, digest):
        return TokenCheck(None, frozenset(), "unknown")
    state = state_of(token, now)
    if state != "active":
        return TokenCheck(None, frozenset(), state)
    staff = session.get(Staff, token.staff_id)
    if staff is None or not staff.active:
        return TokenCheck(None, frozenset(), "inactive")
    at = to_utc_naive(now)
    if token.last_used_at is None or at - token.last_used_at >= TOUCH_EVERY:
        token.last_used_at = at
    return TokenCheck(staff, frozenset(token.scopes or ()))
