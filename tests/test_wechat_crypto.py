"""Signatures and safe-mode crypto: the official sample, round trips, rotation, bad input."""

from __future__ import annotations

import base64
import struct
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher as AES
from cryptography.hazmat.primitives.ciphers import algorithms, modes

from bot.errors import AppIdMismatch, CryptoError, MalformedMessage, SignatureError
from bot.wechat.crypto import Cipher, MessageCrypto
from bot.wechat.messages import parse, parse_xml_dict
from bot.wechat.signature import check_signature, make_signature

DATA = Path(__file__).parent / "data"

# The official sample (wechat-platform.md, "Official sample for the crypto").
KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
TOKEN = "spamtest"
APPID = "wx2c2769f8efd9abc2"
TIMESTAMP = "1409735669"
NONCE = "1320562132"
MSG_SIGNATURE = "5d197aaffba7e9b25a30732f161a50dee96bd5fa"
PLAIN_SIGNATURE = "16120ec1b8dbb870f510d87ce6bc2463eae6ca1a"
ENVELOPE = (DATA / "encrypted_official.xml").read_bytes()
ENCRYPT = parse_xml_dict(ENVELOPE)["Encrypt"]
SAMPLE_RANDOM16 = b"89465c840c5f116f"  # the sample's first 16 plaintext bytes
SAMPLE_XML = (
    "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName>\n"
    "<FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName>\n"
    "<CreateTime>1409735668</CreateTime>\n"
    "<MsgType><![CDATA[text]]></MsgType>\n"
    "<Content><![CDATA[abcdteT]]></Content>\n"
    "<MsgId>6054768590064713728</MsgId>\n"
    "</xml>"
)

OLD_KEY = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"
OTHER_KEY = "ZYXWVUTSRQPONMLKJIHGFEDCBAzyxwvutsrqponmlkj"
R16 = b"R" * 16


def raw_encrypt(plaintext: bytes, key: str = KEY) -> str:
    """Encrypt already-padded bytes with no checks, to forge bad paddings and fields."""
    k = base64.b64decode(key + "=")
    enc = AES(algorithms.AES(k), modes.CBC(k[:16])).encryptor()
    return base64.b64encode(enc.update(plaintext) + enc.finalize()).decode()


def frame(message: bytes, appid: bytes = APPID.encode(), length: int | None = None) -> bytes:
    """Unpadded WeChat plaintext: random16 + length + message + appid."""
    size = len(message) if length is None else length
    return R16 + struct.pack(">I", size) + message + appid


def pad_to(data: bytes, amount: int, fill: int | None = None) -> bytes:
    """Append `amount` bytes of value `fill` (default: amount)."""
    return data + bytes([amount if fill is None else fill]) * amount


# --- signatures -------------------------------------------------------------------


def test_official_plain_signature() -> None:
    assert make_signature(TOKEN, TIMESTAMP, NONCE) == PLAIN_SIGNATURE
    check_signature(PLAIN_SIGNATURE, TOKEN, TIMESTAMP, NONCE)


def test_official_msg_signature() -> None:
    assert make_signature(TOKEN, TIMESTAMP, NONCE, ENCRYPT) == MSG_SIGNATURE


def test_signature_is_order_independent() -> None:
    assert make_signature(NONCE, TOKEN, TIMESTAMP) == make_signature(TOKEN, TIMESTAMP, NONCE)


@pytest.mark.parametrize(
    "given",
    [None, "", "0" * 40, PLAIN_SIGNATURE[:-1], PLAIN_SIGNATURE + "0", "签名" * 20, MSG_SIGNATURE],
)
def test_check_signature_refuses(given: str | None) -> None:
    with pytest.raises(SignatureError):
        check_signature(given, TOKEN, TIMESTAMP, NONCE)


# --- Cipher -------------------------------------------------------------------------


def test_official_sample_decrypts_exactly() -> None:
    xml = Cipher(KEY, APPID).decrypt(ENCRYPT)
    assert xml == SAMPLE_XML
    msg = parse(xml)
    assert (msg.content, msg.msg_id) == ("abcdteT", "6054768590064713728")
    assert msg.create_time == 1409735668
    assert (msg.from_user, msg.to_user) == ("oyORnuP8q7ou2gfYjqLzSIWZf0rs", "gh_10f6c3c3ac5a")


def test_encrypt_reproduces_official_ciphertext() -> None:
    assert Cipher(KEY, APPID).encrypt(SAMPLE_XML, SAMPLE_RANDOM16) == ENCRYPT


@pytest.mark.parametrize(
    "text", ["", "a", "x" * 11, "泉州交通运输 🚌", SAMPLE_XML, "长文本" * 4000, "]]>\x00"]
)
def test_round_trip(text: str) -> None:
    cipher = Cipher(KEY, APPID)
    encrypted = cipher.encrypt(text)
    assert len(base64.b64decode(encrypted)) % 32 == 0
    assert cipher.decrypt(encrypted) == text


def test_encrypt_uses_fresh_random_prefix() -> None:
    cipher = Cipher(KEY, APPID)
    assert cipher.encrypt("same") != cipher.encrypt("same")


@pytest.mark.parametrize("key", ["", KEY[:-1], KEY + "A", "!" * 43, "泉" * 43, KEY[:-1] + " "])
def test_bad_key_refused(key: str) -> None:
    with pytest.raises(ValueError):
        Cipher(key, APPID)


@pytest.mark.parametrize("random16", [b"", b"x" * 15, b"x" * 17])
def test_bad_random_prefix_refused(random16: bytes) -> None:
    with pytest.raises(ValueError):
        Cipher(KEY, APPID).encrypt("hi", random16)


def test_forged_helpers_are_sound() -> None:
    """Control case: the forging helpers build a plaintext that decrypts fine."""
    body = frame(b"hello")
    assert Cipher(KEY, APPID).decrypt(raw_encrypt(pad_to(body, 32 - len(body) % 32))) == "hello"


def _bad_padding_cases() -> list[bytes]:
    body = frame(b"hello")  # 43 bytes -> proper pad 21
    inconsistent = bytearray(pad_to(body, 21))
    inconsistent[-5] = 20
    return [
        pad_to(body, 21, fill=0),  # pad byte 0
        pad_to(body, 53, fill=33),  # pad byte 33 (> block size 32)
        bytes(inconsistent),  # pad bytes not all equal
        pad_to(body + b"xxxx", 1, fill=0xFF),  # pad byte 255
        bytes(15) + b"\x20",  # pad 32 longer than the 16-byte plaintext
    ]


@pytest.mark.parametrize("plaintext", _bad_padding_cases(), ids=["0", "33", "uneq", "255", "long"])
def test_bad_padding_refused(plaintext: bytes) -> None:
    assert len(plaintext) % 16 == 0
    with pytest.raises(CryptoError) as info:
        Cipher(KEY, APPID).decrypt(raw_encrypt(plaintext))
    assert "padding" in str(info.value)
    assert not isinstance(info.value, AppIdMismatch)


@pytest.mark.parametrize(
    "body",
    [
        frame(b"hello", length=0xFFFFFFFF),  # length field out of range
        frame(b"hello", length=len(b"hello" + APPID.encode()) + 1),  # one past the end
        R16 + b"\x00\x00",  # shorter than random16 + length
        frame(b"\xff\xfe bad utf-8"),  # message not UTF-8
    ],
    ids=["huge-length", "length+1", "short", "not-utf8"],
)
def test_bad_fields_refused(body: bytes) -> None:
    with pytest.raises(CryptoError) as info:
        Cipher(KEY, APPID).decrypt(raw_encrypt(pad_to(body, 32 - len(body) % 32)))
    assert not isinstance(info.value, AppIdMismatch)


@pytest.mark.parametrize("position", [0, -1, -17], ids=["length", "pad", "pad-prev-block"])
def test_tampered_ciphertext_refused(position: int) -> None:
    data = bytearray(base64.b64decode(ENCRYPT))
    data[position] ^= 0x01
    with pytest.raises(CryptoError):
        Cipher(KEY, APPID).decrypt(base64.b64encode(bytes(data)).decode())


def test_truncated_ciphertext_refused() -> None:
    data = base64.b64decode(ENCRYPT)[:-16]
    with pytest.raises(CryptoError):
        Cipher(KEY, APPID).decrypt(base64.b64encode(data).decode())


@pytest.mark.parametrize(
    "b64",
    [
        "",
        "not base64!!",
        "abc",
        "QUJD",
        ENCRYPT[:-4],
        ENCRYPT[:40] + "\n" + ENCRYPT[40:],
        "密文" * 10,
    ],
)
def test_bad_base64_refused(b64: str) -> None:
    with pytest.raises(CryptoError):
        Cipher(KEY, APPID).decrypt(b64)


@pytest.mark.parametrize(
    "other", ["wx0000000000000000", APPID[:-1], APPID + "x", "WX2C2769F8EFD9ABC2"]
)
def test_wrong_appid_refused(other: str) -> None:
    encrypted = Cipher(KEY, other).encrypt(SAMPLE_XML)
    with pytest.raises(AppIdMismatch):
        Cipher(KEY, APPID).decrypt(encrypted)


# --- MessageCrypto --------------------------------------------------------------------


def envelope(encrypted: str) -> str:
    """The safe-mode POST body WeChat sends."""
    return (
        "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName>"
        f"<Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
    )


def signed(encrypted: str, token: str = TOKEN) -> str:
    """msg_signature for an Encrypt value under the sample timestamp and nonce."""
    return make_signature(token, TIMESTAMP, NONCE, encrypted)


@pytest.mark.parametrize("body", [ENVELOPE, ENVELOPE.decode()], ids=["bytes", "str"])
def test_official_envelope_decrypts(body: bytes | str) -> None:
    crypto = MessageCrypto(TOKEN, [KEY], APPID)
    assert crypto.decrypt_message(body, MSG_SIGNATURE, TIMESTAMP, NONCE) == SAMPLE_XML


@pytest.mark.parametrize(
    "msg_signature", [None, "", PLAIN_SIGNATURE, "0" * 40, MSG_SIGNATURE.upper()[:-1] + "0"]
)
def test_wrong_or_missing_msg_signature(msg_signature: str | None) -> None:
    crypto = MessageCrypto(TOKEN, [KEY], APPID)
    with pytest.raises(SignatureError):
        crypto.decrypt_message(ENVELOPE, msg_signature, TIMESTAMP, NONCE)


@pytest.mark.parametrize("timestamp,nonce", [("1409735670", NONCE), (TIMESTAMP, "1")])
def test_msg_signature_covers_timestamp_and_nonce(timestamp: str, nonce: str) -> None:
    crypto = MessageCrypto(TOKEN, [KEY], APPID)
    with pytest.raises(SignatureError):
        crypto.decrypt_message(ENVELOPE, MSG_SIGNATURE, timestamp, nonce)


def test_signature_checked_before_decryption() -> None:
    """Garbage Encrypt with a wrong signature is a SignatureError, not a CryptoError."""
    crypto = MessageCrypto(TOKEN, [KEY], APPID)
    with pytest.raises(SignatureError):
        crypto.decrypt_message(envelope("@@garbage@@"), MSG_SIGNATURE, TIMESTAMP, NONCE)


def test_tampered_envelope_fails_signature() -> None:
    tampered = ("A" if ENCRYPT[0] != "A" else "B") + ENCRYPT[1:]
    crypto = MessageCrypto(TOKEN, [KEY], APPID)
    with pytest.raises(SignatureError):
        crypto.decrypt_message(envelope(tampered), MSG_SIGNATURE, TIMESTAMP, NONCE)


def test_signed_garbage_is_crypto_error() -> None:
    crypto = MessageCrypto(TOKEN, [KEY], APPID)
    with pytest.raises(CryptoError):
        crypto.decrypt_message(envelope("QUJD"), signed("QUJD"), TIMESTAMP, NONCE)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<xml><ToUserName>gh</ToUserName></xml>",
        b"<xml><Encrypt></Encrypt></xml>",
        b"<xml><Encrypt><a>b</a></Encrypt></xml>",
        b"<envelope><Encrypt>QUJD</Encrypt></envelope>",
        b"<xml><Encrypt>QUJD</Encrypt>",
        b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml><Encrypt>&e;</Encrypt></xml>',
    ],
)
def test_bad_envelope_is_malformed(body: bytes) -> None:
    crypto = MessageCrypto(TOKEN, [KEY], APPID)
    with pytest.raises(MalformedMessage):
        crypto.decrypt_message(body, MSG_SIGNATURE, TIMESTAMP, NONCE)


def test_reply_envelope_round_trip() -> None:
    crypto = MessageCrypto(TOKEN, [KEY], APPID)
    inner_xml = "<xml><Content><![CDATA[你好]]></Content></xml>"
    reply = crypto.encrypt_reply(inner_xml, "1700000000", "42")
    fields = parse_xml_dict(reply)
    assert set(fields) == {"Encrypt", "MsgSignature", "TimeStamp", "Nonce"}
    assert (fields["TimeStamp"], fields["Nonce"]) == ("1700000000", "42")
    assert fields["MsgSignature"] == make_signature(TOKEN, "1700000000", "42", fields["Encrypt"])
    inner = crypto.decrypt_message(reply, fields["MsgSignature"], "1700000000", "42")
    assert inner == inner_xml


def test_previous_key_accepted_and_replies_use_current() -> None:
    rotating = MessageCrypto(TOKEN, [KEY, "", OLD_KEY], APPID)
    for key in (KEY, OLD_KEY):
        encrypted = Cipher(key, APPID).encrypt("hello " + key)
        inner = rotating.decrypt_message(envelope(encrypted), signed(encrypted), TIMESTAMP, NONCE)
        assert inner == "hello " + key
    assert rotating.cipher.decrypt(Cipher(KEY, APPID).encrypt("x")) == "x"
    with pytest.raises(CryptoError):
        rotating.cipher.decrypt(Cipher(OLD_KEY, APPID).encrypt("x"))
    reply = parse_xml_dict(rotating.encrypt_reply("<xml/>", TIMESTAMP, NONCE))
    assert Cipher(KEY, APPID).decrypt(reply["Encrypt"]) == "<xml/>"
    with pytest.raises(CryptoError):
        Cipher(OLD_KEY, APPID).decrypt(reply["Encrypt"])


def test_unknown_key_refused() -> None:
    rotating = MessageCrypto(TOKEN, [KEY, OLD_KEY], APPID)
    encrypted = Cipher(OTHER_KEY, APPID).encrypt(SAMPLE_XML)
    with pytest.raises(CryptoError):
        rotating.decrypt_message(envelope(encrypted), signed(encrypted), TIMESTAMP, NONCE)


def test_previous_key_alone_is_not_current() -> None:
    """Once the previous key is dropped from the list, its messages are refused."""
    encrypted = Cipher(OLD_KEY, APPID).encrypt(SAMPLE_XML)
    with pytest.raises(CryptoError):
        MessageCrypto(TOKEN, [KEY], APPID).decrypt_message(
            envelope(encrypted), signed(encrypted), TIMESTAMP, NONCE
        )


def test_wrong_appid_reported_even_with_two_keys() -> None:
    rotating = MessageCrypto(TOKEN, [OLD_KEY, KEY], APPID)
    encrypted = Cipher(KEY, "wx0000000000000000").encrypt(SAMPLE_XML)
    with pytest.raises(AppIdMismatch):
        rotating.decrypt_message(envelope(encrypted), signed(encrypted), TIMESTAMP, NONCE)


@pytest.mark.parametrize("keys", [[], [""], ["", ""], ["short"]])
def test_message_crypto_needs_a_valid_key(keys: list[str]) -> None:
    with pytest.raises(ValueError):
        MessageCrypto(TOKEN, keys, APPID)
