"""WeChat safe-mode (AES) message encryption, with key rotation.

Hand-written rather than wechatpy's PrpCrypto because its PKCS#7 unpadding silently
returns empty bytes on a bad pad byte instead of failing (wechat-platform.md, "AES"), it
knows only one EncodingAESKey while operators rotate keys, and its callers commonly check
``signature`` instead of ``msg_signature``. Uses `cryptography` for the raw AES-256-CBC.

Platform rule: key = b64decode(EncodingAESKey + "="), IV = key[:16]; plaintext =
16 random bytes + 4-byte big-endian length + message + appid, PKCS#7-padded to 32 bytes.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import re
import struct
from xml.sax.saxutils import escape

from cryptography.hazmat.primitives.ciphers import Cipher as _AESCipher
from cryptography.hazmat.primitives.ciphers import algorithms, modes

from bot.errors import AppIdMismatch, CryptoError, MalformedMessage
from bot.wechat.messages import parse_xml_dict
from bot.wechat.signature import check_signature, make_signature

__all__ = ["Cipher", "MessageCrypto", "PAD_BLOCK"]

PAD_BLOCK = 32  # WeChat pads to 32 bytes, not AES's 16: a pad byte is 1..32.
_HEADER = 20  # 16 random bytes + 4-byte length


def _pad(data: bytes) -> bytes:
    """PKCS#7-pad to a multiple of 32 bytes (always at least one pad byte)."""
    amount = PAD_BLOCK - len(data) % PAD_BLOCK
    return data + bytes([amount]) * amount


def _unpad(data: bytes) -> bytes:
    """Strip PKCS#7 padding; CryptoError on a pad byte outside 1..32 or unequal pad bytes."""
    if not data:
        raise CryptoError("empty plaintext")
    amount = data[-1]
    if not 1 <= amount <= PAD_BLOCK or amount > len(data):
        raise CryptoError("bad padding")
    if data[-amount:] != bytes([amount]) * amount:
        raise CryptoError("bad padding")
    return data[:-amount]


class Cipher:
    """AES-256-CBC codec for one EncodingAESKey and one appid."""

    def __init__(self, encoding_aes_key: str, app_id: str) -> None:
        if not isinstance(encoding_aes_key, str) or len(encoding_aes_key) != 43:
            raise ValueError("EncodingAESKey must be 43 characters")
        try:
            key = base64.b64decode(encoding_aes_key + "=", validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError("EncodingAESKey is not valid base64") from exc
        if len(key) != 32:
            raise ValueError("EncodingAESKey must decode to 32 bytes")
        if not app_id:
            raise ValueError("app_id is required")
        self._key = key
        self._app_id = app_id.encode("utf-8")
        # built once per key: each message only opens an encryptor/decryptor context on it
        self._cipher = _AESCipher(algorithms.AES(key), modes.CBC(key[:16]))

    def _aes(self) -> _AESCipher:
        """The AES-256-CBC cipher object of this key, IV = key[:16] (immutable, shared)."""
        return self._cipher

    def encrypt(self, plaintext: str, random16: bytes | None = None) -> str:
        """Encrypt a message for WeChat and return it base64-encoded."""
        if random16 is None:
            random16 = os.urandom(16)
        if len(random16) != 16:
            raise ValueError("random16 must be 16 bytes")
        message = plaintext.encode("utf-8")
        body = _pad(random16 + struct.pack(">I", len(message)) + message + self._app_id)
        encryptor = self._aes().encryptor()
        return base64.b64encode(encryptor.update(body) + encryptor.finalize()).decode("ascii")

    def decrypt(self, b64: str) -> str:
        """Decrypt a base64 ciphertext; CryptoError if it is damaged, AppIdMismatch if not ours."""
        try:
            data = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError, TypeError) as exc:
            raise CryptoError("ciphertext is not base64") from exc
        if not data or len(data) % 16:
            raise CryptoError("ciphertext length is not a multiple of the AES block")
        decryptor = self._aes().decryptor()
        plain = _unpad(decryptor.update(data) + decryptor.finalize())
        if len(plain) < _HEADER:
            raise CryptoError("plaintext too short")
        (length,) = struct.unpack(">I", plain[16:_HEADER])
        if length > len(plain) - _HEADER:
            raise CryptoError("length field out of range")
        message, app_id = plain[_HEADER : _HEADER + length], plain[_HEADER + length :]
        if not hmac.compare_digest(app_id, self._app_id):
            raise AppIdMismatch("decrypted message carries another appid")
        try:
            return message.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CryptoError("message is not UTF-8") from exc


# The envelope WeChat sends: <xml><ToUserName>..</ToUserName><Encrypt>BASE64</Encrypt></xml>.
# Its one value is base64 and is covered by msg_signature, so the common shape is read with
# a strict pattern (no entity processing at all); anything else takes the safe XML parser.
_ENVELOPE = re.compile(
    rb"\A\s*(?:<\?xml[^>]{0,100}\?>\s*)?<xml>\s*(?:<ToUserName>(?:<!\[CDATA\[[^\]<>&]{0,64}\]\]>"
    rb"|[^<>&]{0,64})</ToUserName>\s*)?<Encrypt>(?:<!\[CDATA\[([A-Za-z0-9+/=]{1,60000})\]\]>"
    rb"|([A-Za-z0-9+/=]{1,60000}))</Encrypt>\s*(?:<AgentID>[^<>&]{0,64}</AgentID>\s*)?</xml>\s*\Z")


def _envelope_encrypt(body: bytes | str) -> object:
    """The Encrypt value of a safe-mode envelope (fast path for the usual shape)."""
    raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    match = _ENVELOPE.match(raw)
    if match:
        return (match.group(1) or match.group(2)).decode("ascii")
    return parse_xml_dict(body).get("Encrypt")


class MessageCrypto:
    """Safe-mode envelope handling: msg_signature check, decrypt with current/previous key."""

    def __init__(self, token: str, encoding_aes_keys: list[str], app_id: str) -> None:
        if not token:
            raise ValueError("token is required")
        keys = [key for key in encoding_aes_keys if key]
        if not keys:
            raise ValueError("at least one EncodingAESKey is required")
        self.token = token
        self.app_id = app_id
        # Current key first: replies always use it; decryption also tries the previous one.
        self._ciphers = [Cipher(key, app_id) for key in keys]

    @property
    def cipher(self) -> Cipher:
        """The Cipher of the current key, the one replies are encrypted with."""
        return self._ciphers[0]

    def decrypt_message(
        self, body: bytes | str, msg_signature: str | None, timestamp: str, nonce: str
    ) -> str:
        """Verify msg_signature over the envelope's Encrypt and return the inner XML."""
        encrypted = _envelope_encrypt(body)
        if not isinstance(encrypted, str) or not encrypted.strip():
            raise MalformedMessage("envelope has no Encrypt element")
        encrypted = encrypted.strip()
        # Platform rule: safe mode is checked with msg_signature over (token, timestamp,
        # nonce, Encrypt) -- not the plain `signature` -- and before any decryption.
        check_signature(msg_signature, self.token, timestamp, nonce, encrypted)
        errors: list[CryptoError] = []
        for cipher in self._ciphers:
            try:
                return cipher.decrypt(encrypted)
            except CryptoError as exc:
                errors.append(exc)
        # A wrong key almost never yields valid padding and length, so an AppIdMismatch
        # from any key means the message really is for another account.
        for exc in errors:
            if isinstance(exc, AppIdMismatch):
                raise exc
        raise errors[0]

    def encrypt_reply(self, xml: str, timestamp: str, nonce: str) -> str:
        """Encrypt a reply with the current key and wrap it in a signed envelope."""
        encrypted = self.cipher.encrypt(xml)
        signature = make_signature(self.token, timestamp, nonce, encrypted)
        return (
            "<xml>"
            f"<Encrypt><![CDATA[{encrypted}]]></Encrypt>"
            f"<MsgSignature><![CDATA[{signature}]]></MsgSignature>"
            f"<TimeStamp>{escape(str(timestamp))}</TimeStamp>"
            f"<Nonce>{escape(str(nonce))}</Nonce>"
            "</xml>"
        )
