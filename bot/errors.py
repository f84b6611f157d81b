"""The whole qzbot exception hierarchy. Exceptions carry data (errcode, field, problems)."""

from __future__ import annotations


class QzbotError(Exception):
    """Base of every error qzbot raises on purpose."""


class ConfigError(QzbotError):
    """Settings are missing or invalid; start-up stops with this message."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("invalid configuration:\n  - " + "\n  - ".join(self.problems))


class SchemaOutdated(QzbotError):
    """The database schema is older than the code."""


# --- inbound WeChat protocol -------------------------------------------------


class RequestRejected(QzbotError):
    """A webhook request that must be refused with a 4xx. `reason` is a short log-safe code."""

    status = 400
    reason = "bad_request"

    def __init__(self, detail: str = ""):
        self.detail = detail
        super().__init__(f"{self.reason}: {detail}" if detail else self.reason)


class SignatureError(RequestRejected):
    """Signature or msg_signature missing or wrong."""

    status = 403
    reason = "bad_signature"


class StaleTimestamp(RequestRejected):
    """Timestamp outside the freshness window (replay protection)."""

    status = 403
    reason = "stale_timestamp"


class CryptoError(RequestRejected):
    """Ciphertext cannot be decrypted: bad base64, length, padding, or tampered."""

    reason = "bad_ciphertext"


class AppIdMismatch(CryptoError):
    """Decrypted message carries another account's appid."""

    reason = "wrong_appid"


class MalformedMessage(RequestRejected):
    """Body is not a well-formed, safe WeChat XML message."""

    reason = "malformed_xml"


class PlaintextRefused(RequestRejected):
    """Safe mode is required but the POST was not encrypted."""

    status = 403
    reason = "plaintext_refused"


class ReplayedRequest(RequestRejected):
    """A (timestamp, nonce) pair already used for another message (a captured URL re-used)."""

    status = 403
    reason = "replayed"


class BodyTooLarge(RequestRejected):
    """Body over the configured limit."""

    status = 413
    reason = "body_too_large"


# --- content packs -------------------------------------------------------------


class PackInvalid(QzbotError):
    """A content pack failed validation; nothing was imported. `problems` lists every one."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = list(problems)
        lines = "\n  - ".join(self.problems)
        super().__init__(
            f"{source}: {len(self.problems)} problem(s), nothing imported:\n  - {lines}")


# --- outbound WeChat API -------------------------------------------------------


class WeChatAPIError(QzbotError):
    """WeChat answered a call with a non-zero errcode."""

    def __init__(self, errcode: int, errmsg: str = "", api: str = ""):
        self.errcode = int(errcode)
        self.errmsg = errmsg
        self.api = api
        super().__init__(f"{api or 'wechat'} errcode={self.errcode} {errmsg}".strip())


class AmbiguousSend(QzbotError):
    """A send whose outcome is unknown (timeout, connection dropped after the request)."""

    def __init__(self, api: str, detail: str = ""):
        self.api = api
        self.detail = detail
        super().__init__(f"{api}: outcome unknown ({detail})")


class TransportError(QzbotError):
    """The request surely did not reach WeChat (connect refused, DNS): safe to retry."""


# --- staff / push ----------------------------------------------------------------


class PermissionDenied(QzbotError):
    """A staff action that the acting account may not perform."""


class InvalidTransition(QzbotError):
    """A campaign state change that is not allowed from its current state."""


class CampaignInvalid(QzbotError):
    """A campaign that cannot be created or approved; `problems` lists every reason."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


class NotFound(QzbotError):
    """A referenced object (campaign, record, staff account, template) does not exist."""


class CaseInvalid(QzbotError):
    """Casework input that cannot be accepted (missing art.-29 fields, a wrong-type or
    oversized upload, an unknown answer reason); `problems` lists every reason."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))
