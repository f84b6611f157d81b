"""WeChat request signatures: sha1 over the sorted parts, compared in constant time.

Hand-written rather than taken from wechatpy/WeRoBot because both compare signatures
with ``==``; the platform rule (wechat-platform.md, "Inbound messages") is
``sha1(sorted([token, timestamp, nonce(, Encrypt)]) joined)``, and we compare it with
``hmac.compare_digest``. This module imports nothing beyond the standard library.
"""

from __future__ import annotations

import hashlib
import hmac

from bot.errors import SignatureError

__all__ = ["make_signature", "check_signature"]


def make_signature(*parts: str) -> str:
    """Return the sha1 hex digest of the parts sorted and joined (WeChat's signature rule)."""
    joined = "".join(sorted(str(part) for part in parts))
    return hashlib.sha1(joined.encode("utf-8")).hexdigest()


def check_signature(expected: str | None, *parts: str) -> None:
    """Raise SignatureError unless `expected` is the signature of `parts` (constant time)."""
    if not expected:
        raise SignatureError("missing signature")
    # Platform rule: compare in constant time; hex digests are ASCII, so compare bytes and
    # let a non-ASCII `expected` simply fail instead of raising TypeError.
    given = expected.strip().lower().encode("utf-8", "replace")
    if not hmac.compare_digest(given, make_signature(*parts).encode("ascii")):
        raise SignatureError("signature mismatch")
