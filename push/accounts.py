"""Console credentials: passwords (argon2id), the TOTP second factor, the login throttle.

The staff console (issue 9) logs people in with a name, a password and, for the roles in
[console] totp_required_roles, a TOTP code; scripts keep using the per-account CLI key
(push/staff.py), which this module does not touch.

- **Passwords** are hashed with argon2id (argon2-cffi's `PasswordHasher` with OWASP's
  recommended profile: 19 MiB, 2 passes, 1 lane), memory-hard so a stolen table is slow to
  crack on GPUs, yet a login costs ~50 ms of one core (argon2-cffi's default 64 MiB x 4
  lanes took ~0.5 s per login on a busy two-core server); a hash made with other
  parameters is re-hashed at the next successful login (`check_needs_rehash`). When the
  name is unknown a dummy hash is verified anyway, so the answer takes as long as for a
  real account (no enumeration by timing). Policy: at least 12 characters, not the account
  name, not all of one character class.
- **TOTP** (RFC 6238, 30 s steps, 6 digits; pyotp): a code is accepted one step either side
  (`valid_window=1`: phone clocks drift) and each time step only once per account: the last
  accepted step lives in Redis (a Lua compare-and-set, with a TTL a little longer than the
  window), so a code seen over a shoulder or in a proxy log cannot be replayed.
- **The TOTP secret is encrypted at rest** (AES-256-GCM, key derived with HKDF-SHA256 from
  [security] secret_key, the account id as associated data). Unlike a password it cannot be
  hashed: verifying a code needs the secret itself. Encrypted, a database dump or backup, or
  read access to the staff table alone, does not give away anyone's second factor; the key
  lives in the configuration (env QZBOT_SECURITY__SECRET_KEY), not in the database, and the
  account id binds each ciphertext to its row (it cannot be copied onto another account).
  Changing secret_key makes the stored secrets unreadable: those accounts need a TOTP reset.
- **Throttle** (`LoginThrottle`): failed logins (bad password, unknown name, bad TOTP code)
  are counted in Redis per account name (existing or not) and per client address; at
  [console] login_max_failures within lockout_minutes that name or address is refused for
  lockout_minutes. Counters and locks expire by themselves. Redis errors propagate: the
  console fails closed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import string
from dataclasses import dataclass
from datetime import datetime
from functools import cache

import pyotp
import redis
import segno
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from bot.errors import PermissionDenied

ISSUER = "泉州交通运输"
MIN_PASSWORD = 12
TOTP_STEP = 30
HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)  # argon2id
SECRET_VERSION = "v1"
TEMP_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789"  # no 0/O, 1/l/I
PREFIX = "qzbot:console:"


# --- passwords -----------------------------------------------------------------------


class PasswordRefused(PermissionDenied):
    """A new password the policy refuses; `problems` says why, in Chinese."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("密码不符合要求：" + "；".join(self.problems))


def hash_password(password: str) -> str:
    """The argon2id hash of `password` (salted, parameters encoded in the string)."""
    return HASHER.hash(password)


@cache
def _dummy_hash() -> str:
    return HASHER.hash(secrets.token_urlsafe(16))


def verify_password(stored: str | None, password: str) -> bool:
    """True if `password` matches `stored`. With no stored hash (unknown account, no console
    password yet) a dummy hash is verified so the answer takes as long (no timing oracle)."""
    try:
        HASHER.verify(stored or _dummy_hash(), password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return stored is not None


def needs_rehash(stored: str) -> bool:
    """True if `stored` was made with other parameters than today's (re-hash at login)."""
    try:
        return HASHER.check_needs_rehash(stored)
    except InvalidHashError:
        return True


def password_problems(password: str, name: str) -> list[str]:
    """Why `password` is refused for account `name` (empty: acceptable), in Chinese."""
    problems = []
    if len(password) < MIN_PASSWORD:
        problems.append(f"密码至少 {MIN_PASSWORD} 个字符")
    folded, own = password.casefold(), name.casefold()
    if own and (folded == own or (len(own) >= 3 and own in folded)):  # "li" may occur anywhere
        problems.append("密码不能包含账号名")
    classes = {_char_class(c) for c in password}
    if password and len(classes) < 2:
        problems.append("密码不能全是同一类字符（请混合字母、数字、符号或汉字）")
    if password != password.strip():
        problems.append("密码首尾不能是空格")
    return problems


def _char_class(c: str) -> str:
    if c in string.ascii_lowercase:
        return "lower"
    if c in string.ascii_uppercase:
        return "upper"
    if c.isdigit():
        return "digit"
    if c.isalpha():
        return "letter"  # 汉字 and other scripts
    return "symbol"


def temporary_password() -> str:
    """A one-time password an admin hands over (16 chars, unambiguous letters and digits;
    it always passes the policy, and its holder must change it at the first login)."""
    while True:
        pw = "".join(secrets.choice(TEMP_ALPHABET) for _ in range(16))
        if len({_char_class(c) for c in pw}) >= 3:
            return pw


# --- TOTP ------------------------------------------------------------------------------


def new_totp_secret() -> str:
    """A fresh base32 TOTP secret (160 bits, as RFC 4226 recommends)."""
    return pyotp.random_base32(32)


def _aead(secret_key: str) -> AESGCM:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"qzbot-console",
               info=b"totp-secret-at-rest").derive(secret_key.encode())
    return AESGCM(key)


def _aad(staff_id: int) -> bytes:
    return f"qzbot:staff:{staff_id}".encode()


def encrypt_secret(secret_key: str, staff_id: int, secret: str) -> str:
    """The TOTP secret as stored: "v1:" + base64url(nonce | AES-GCM ciphertext)."""
    nonce = secrets.token_bytes(12)
    sealed = _aead(secret_key).encrypt(nonce, secret.encode(), _aad(staff_id))
    return f"{SECRET_VERSION}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"


def decrypt_secret(secret_key: str, staff_id: int, stored: str | None) -> str | None:
    """The TOTP secret, or None when there is none or it cannot be read (other key, other
    row, tampered): then no code verifies, and an admin resets the account's TOTP."""
    if not stored or not stored.startswith(SECRET_VERSION + ":"):
        return None
    try:
        raw = base64.urlsafe_b64decode(stored[len(SECRET_VERSION) + 1:])
        return _aead(secret_key).decrypt(raw[:12], raw[12:], _aad(staff_id)).decode()
    except (ValueError, InvalidTag):
        return None


def provisioning_uri(secret: str, name: str) -> str:
    """The otpauth:// URI an authenticator app scans (issuer 泉州交通运输)."""
    return pyotp.TOTP(secret).provisioning_uri(name=name, issuer_name=ISSUER)


def qr_data_uri(uri: str) -> str:
    """`uri` as a QR code: an SVG data: URI (the CSP allows data: images only)."""
    return segno.make(uri, error="m").svg_data_uri(scale=5, border=2)


def totp_step(now: datetime) -> int:
    """The RFC 6238 time step of `now`."""
    return int(now.timestamp()) // TOTP_STEP


def matching_step(secret: str, code: str, now: datetime, window: int = 1) -> int | None:
    """The time step whose code `code` is, within `window` steps of `now`; None otherwise."""
    code = "".join(code.split())
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    step = totp_step(now)
    found = None
    for offset in range(-window, window + 1):  # compare all, constant-time each
        if hmac.compare_digest(totp.generate_otp(step + offset), code):
            found = step + offset
    return found


# KEYS[1] last accepted step; ARGV[1] the step, ARGV[2] ttl: 1 if newer (and stored), else 0
_ACCEPT_STEP = """
local last = redis.call('GET', KEYS[1])
if last and tonumber(last) >= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[2]))
return 1
"""


def accept_step(client: redis.Redis, staff_id: int, step: int) -> bool:
    """Record `step` as used by `staff_id`; False if it (or a later step) was used already.
    Atomic in Redis, so two concurrent logins with one code cannot both pass."""
    ttl = TOTP_STEP * 4  # longer than the window of steps a code can still be accepted in
    return bool(client.eval(_ACCEPT_STEP, 1, f"{PREFIX}totp:{staff_id}", step, ttl))


def verify_totp(client: redis.Redis, staff_id: int, secret: str | None, code: str,
                now: datetime) -> bool:
    """True if `code` is the account's current code (±1 step) and its step is not used yet."""
    if not secret:
        return False
    step = matching_step(secret, code, now)
    return step is not None and accept_step(client, staff_id, step)


@dataclass(frozen=True)
class TotpEnrolment:
    """What the enrolment page shows: the secret (for typing), its URI and its QR code."""

    secret: str
    uri: str
    qr: str  # data:image/svg+xml URI

    @classmethod
    def of(cls, secret: str, name: str) -> TotpEnrolment:
        uri = provisioning_uri(secret, name)
        return cls(secret=secret, uri=uri, qr=qr_data_uri(uri))


# --- login throttle ----------------------------------------------------------------------


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:24]


class LoginThrottle:
    """Failed-login counters and lockouts in Redis, per account name and per client address.

    Names are hashed in the keys (they may be anything a visitor typed); unknown names are
    counted like real ones, so a lockout tells nothing about which accounts exist.
    """

    def __init__(self, client: redis.Redis, max_failures: int, lockout_minutes: int):
        self.client = client
        self.max_failures = max(1, max_failures)
        self.seconds = max(1, lockout_minutes) * 60

    def _keys(self, kind: str, name: str, address: str) -> tuple[str, str]:
        return (f"{PREFIX}{kind}:name:{_digest(name.casefold())}",
                f"{PREFIX}{kind}:addr:{_digest(address)}")

    def locked(self, name: str, address: str) -> bool:
        """True while `name` or `address` is locked out."""
        return bool(self.client.exists(*self._keys("lock", name, address)))

    def failed(self, name: str, address: str) -> bool:
        """Count a failure for `name` and `address`; True if this one starts a lockout."""
        pipe = self.client.pipeline()
        for key in self._keys("fail", name, address):
            pipe.incr(key)
            pipe.expire(key, self.seconds, nx=True)
        counts = pipe.execute()[::2]
        started = False
        for key, count in zip(self._keys("lock", name, address), counts, strict=True):
            if count >= self.max_failures:
                started |= bool(self.client.set(key, "1", ex=self.seconds, nx=True))
        if started:
            self.client.delete(*[k for k, c in zip(self._keys("fail", name, address), counts,
                                                     strict=True) if c >= self.max_failures])
        return started

    def succeeded(self, name: str) -> None:
        """A successful login clears the account's failure count (not the address's: a
        valid account must not reset an address's count of guesses at others)."""
        self.client.delete(self._keys("fail", name, "")[0])
