"""Refuse published secrets outside demo mode (`qzbot serve` and `qzbot worker` at start).

Invariant: a process that serves citizens or sends pushes never runs with a token,
EncodingAESKey, app secret or secret key that anyone can read — the values shipped in
config.example.toml, or the official WeChat crypto sample (wechat-platform.md, "Official
sample for the crypto": its token, EncodingAESKey and appid). With a published token
anyone can sign callbacks; with a published EncodingAESKey anyone can read and forge
safe-mode messages; with a published secret key anyone can mint `reserved` consent
tokens. The secret key must also hold at least 32 bytes (it keys HMAC-SHA256).

config.example.toml is not packaged, so the shipped values are listed here once;
tests/test_trust_misc.py asserts the list covers every secret in config.example.toml.
The demo (`qzbot serve --demo`, as `scripts/dev serve` runs it) is exempt, and so are the
commands that only talk to this process (ask, simulator, content, staff, push).
"""

from __future__ import annotations

from bot.errors import ConfigError
from bot.settings import ENV_PREFIX, Settings

MIN_SECRET_KEY_BYTES = 32

# The secrets of WeChat's documented crypto sample (wechat-platform.md; its appid is public
# anyway) and config.example.toml's dummies.
WECHAT_SAMPLE = {"token": "spamtest",
                 "encoding_aes_key": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"}
SHIPPED = {"app_secret": "demo-app-secret-not-real", "token": "qzbotdemotoken",
           "encoding_aes_key": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
           "secret_key": "demo-secret-key-change-me"}
PUBLISHED: frozenset[str] = frozenset({*WECHAT_SAMPLE.values(), *SHIPPED.values()})

# (section, key) of every secret setting: none may hold a published value
CHECKED = (("wechat", "token"), ("wechat", "encoding_aes_key"),
           ("wechat", "previous_encoding_aes_key"), ("wechat", "app_secret"),
           ("security", "secret_key"))


def published_secret_problems(settings: Settings) -> list[str]:
    """Every setting that holds a published value, or a secret key that is too short."""
    problems = []
    for section, key in CHECKED:
        value = getattr(getattr(settings, section), key)
        if value and value in PUBLISHED:
            # never echo the value: name the setting and where it was published
            problems.append(f"[{section}] {key}: is a published demo/sample value "
                            f"(config.example.toml or the WeChat documentation); set this "
                            f"account's own in env {ENV_PREFIX}{section.upper()}__{key.upper()}")
    secret_key = settings.security.secret_key
    if secret_key and len(secret_key.encode()) < MIN_SECRET_KEY_BYTES:
        problems.append(f"[security] secret_key: must be at least {MIN_SECRET_KEY_BYTES} bytes "
                        f"(got {len(secret_key.encode())}); e.g. "
                        "python -c 'import secrets; print(secrets.token_urlsafe(48))'")
    return problems


def refuse_published_secrets(settings: Settings, demo: bool = False) -> None:
    """Raise ConfigError (exit code 2) when not in demo mode and a secret is published."""
    if demo:
        return
    problems = published_secret_problems(settings)
    if problems:
        raise ConfigError([*problems, "published secrets are accepted only by the local demo "
                                      "(qzbot serve --demo / scripts/dev serve)"])
