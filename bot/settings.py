"""Settings: one TOML file (QZBOT_CONFIG or --config) plus QZBOT_<SECTION>__<KEY> env overrides.

Loaded once, validated at start-up into frozen dataclasses; every problem is reported at
once (ConfigError), so a missing secret is a start-up error, not a KeyError at the first
message. Secrets never appear in repr() or logs.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_type_hints

from bot.errors import ConfigError
from bot.vocab import DEFAULT_DISTRICTS, Topic

ENV_PREFIX = "QZBOT_"
SECRET_KEYS = {"app_secret", "token", "encoding_aes_key", "previous_encoding_aes_key",
               "secret_key"}

# `sqlite:///relative/path` (three slashes, then anything but a fourth): relative to the
# config file's folder when the URL comes from the file or the default
_SQLITE_RELATIVE = re.compile(r"^(sqlite(?:\+\w+)?:///)(?!/)(.*)$")
DATABASE_URL_ENV = f"{ENV_PREFIX}DATABASE__URL"  # from env: relative to the current directory
NO_CONFIG = ("no config file: set QZBOT_CONFIG or pass --config FILE "
             "(config.example.toml runs the local demo)")

# settings that no longer exist, and what replaced them (one clear message, not "unknown")
RETIRED = {("wechat", "require_encryption"):
           "removed: plaintext is refused whenever encoding_aes_key is set; "
           "allow_plaintext = true opts back in"}


@dataclass(frozen=True)
class WeChatSettings:
    """The official account's credentials and the API endpoint."""

    app_id: str = ""
    app_secret: str = field(default="", repr=False)
    token: str = field(default="", repr=False)
    encoding_aes_key: str = field(default="", repr=False)
    previous_encoding_aes_key: str = field(default="", repr=False)
    api_base_url: str = "https://api.weixin.qq.com"
    account_id: str = "gh_qzjtys000000"
    # With an EncodingAESKey configured, plaintext POSTs are refused unless this is true:
    # `signature` covers no body, so a captured callback URL would carry any body.
    allow_plaintext: bool = False
    timestamp_window_seconds: int = 300
    max_body_bytes: int = 65536
    api_timeout_seconds: float = 5.0


@dataclass(frozen=True)
class DatabaseSettings:
    """Where the records, followers and ledger live."""

    url: str = "sqlite:///var/qzbot.sqlite3"
    echo: bool = False
    # PostgreSQL only: a hung server must not hold an answer (5-second rule)
    connect_timeout_seconds: int = 2  # libpq/psycopg round anything below 2 up to 2
    statement_timeout_seconds: float = 30.0  # server-side, every statement; 0 = none
    pool_timeout_seconds: float = 2.0  # wait for a pooled connection
    answer_deadline_seconds: float = 1.5  # client-side, DB work of one answer in total
    # after a database timeout the answer path skips the database this long, then retries
    down_seconds: float = 5.0


@dataclass(frozen=True)
class RedisSettings:
    """Redis for dedupe, context and queues; empty url = in-process substitute (fakeredis)."""

    url: str = ""
    dedupe_ttl_seconds: int = 60
    reply_wait_seconds: float = 4.0
    connect_timeout_seconds: float = 0.3
    socket_timeout_seconds: float = 0.5
    # after a Redis timeout or refusal the answer path skips Redis this long, then retries
    down_seconds: float = 5.0


@dataclass(frozen=True)
class BotSettings:
    """How the bot answers."""

    answer_budget_seconds: float = 3.0
    context_ttl_seconds: int = 600
    max_choices: int = 5
    reply_limit_bytes: int = 2048
    welcome: str = ""
    menu: dict[str, str] = field(default_factory=dict)
    districts: tuple[str, ...] = DEFAULT_DISTRICTS
    fallback_hotline: str = "12328"
    content_check_seconds: float = 1.0


@dataclass(frozen=True)
class SecuritySettings:
    """Keys for tokens we issue ourselves (e.g. the subscribemsg `reserved` value)."""

    secret_key: str = field(default="", repr=False)


@dataclass(frozen=True)
class PushSettings:
    """Campaign delivery: quiet hours, batching, concurrency, rate limits, templates per topic."""

    quiet_start: str = "22:00"
    quiet_end: str = "07:00"
    batch_size: int = 500
    concurrency: int = 32
    # calls per second per API, shared by every worker (Redis token bucket)
    rate_limits: dict[str, str] = field(default_factory=lambda: {
        "bizsend": "1500", "custom": "1500", "template": "1500", "subscribe_once": "300"})
    # topic -> {template_id, channel ("subscribe" | "template"), long_term, fields{key: source}}
    templates: dict[str, Any] = field(default_factory=dict)
    truncate_fields: bool = False
    lease_seconds: int = 15
    reserved_ttl_seconds: int = 86400
    # public https origin of this service (the 业务域名 registered with WeChat), for the
    # legacy one-time subscription link's redirect_url; handlers run outside a request
    public_base_url: str = ""


@dataclass(frozen=True)
class ConsoleSettings:
    """The staff web console and JSON API (a separate app, meant for an internal address)."""

    host: str = "127.0.0.1"
    port: int = 8090
    # cookies only over HTTPS; false only for the loopback demo and tests
    secure_cookies: bool = True
    # a console session ends after this many idle minutes
    idle_timeout_minutes: int = 30
    # roles that must log in with a TOTP second factor
    totp_required_roles: tuple[str, ...] = ("reviewer", "admin")
    # failed logins per account (or per client address) before a lockout, and its length
    login_max_failures: int = 5
    lockout_minutes: int = 15
    # API tokens expire after this many days (0 = never)
    api_token_days: int = 90
    # reverse proxies in front of the console (nginx = 1) whose X-Forwarded-For/-Proto are
    # trusted; 0 = none (the client address is the socket's: login limits per address)
    trusted_proxies: int = 0


@dataclass(frozen=True)
class CasesSettings:
    """Casework (issue 10): working-day limits of 依申请公开 (regulation of 2019, arts. 30-33)
    and 网民留言, and where uploaded files go. Every limit counts working days, the day of
    receipt being day 0."""

    # 留言 category -> working days to reply, counted from acceptance
    message_limits: dict[str, int] = field(default_factory=lambda: {
        "咨询": 5, "建议": 10, "投诉举报": 15, "求助": 5})
    # working days a department has to sign for (or return) a transferred 留言
    sign_for_days: int = 1
    # an application's answer period (art. 33)
    application_days: int = 20
    # the 补正 notice must go out within this many working days of receipt (art. 30)
    correction_notice_days: int = 7
    # the applicant's time to correct, unless staff give another (art. 30: "reasonable")
    correction_limit_days: int = 15
    # a third party's time to give its opinion (art. 32); not counted in the answer period
    consultation_days: int = 15
    # an extension of the answer period (art. 33, approved by the head of the office)
    extension_days: int = 20
    # uploaded identity proofs and answer documents: a folder outside the web root
    # (relative to the config file's folder)
    upload_dir: str = "var/case_files"
    # largest upload accepted, MB
    max_upload_mb: int = 10
    # due-soon alerts: working days before the due date (T-0 = the due day); overdue always
    alert_levels: tuple[str, ...] = ("5", "2", "0")
    # cases (留言 and applications) one citizen may file per day; 0 = no limit
    max_new_per_day: int = 10


@dataclass(frozen=True)
class LogSettings:
    """Logging."""

    level: str = "INFO"


@dataclass(frozen=True)
class Settings:
    """All settings, one object per process."""

    wechat: WeChatSettings = field(default_factory=WeChatSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    redis: RedisSettings = field(default_factory=RedisSettings)
    bot: BotSettings = field(default_factory=BotSettings)
    security: SecuritySettings = field(default_factory=SecuritySettings)
    push: PushSettings = field(default_factory=PushSettings)
    console: ConsoleSettings = field(default_factory=ConsoleSettings)
    cases: CasesSettings = field(default_factory=CasesSettings)
    log: LogSettings = field(default_factory=LogSettings)

    def replace(self, **sections: dict[str, Any]) -> Settings:
        """A copy with some keys of some sections replaced (tests, CLI flags)."""
        changed = {name: dataclasses.replace(getattr(self, name), **vals)
                   for name, vals in sections.items()}
        return dataclasses.replace(self, **changed)


def _coerce(value: Any, typ: Any, where: str, problems: list[str]) -> Any:
    """Convert a TOML/env value to the declared type, noting a problem on failure."""
    origin = getattr(typ, "__origin__", None)
    try:
        if typ is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in {"1", "true", "yes", "on", "0",
                                                               "false", "no", "off"}:
                return value.lower() in {"1", "true", "yes", "on"}
            raise ValueError("expected true/false")
        if typ is int:
            if isinstance(value, bool):
                raise ValueError("expected an integer")
            return int(value)
        if typ is float:
            return float(value)
        if typ is str:
            if not isinstance(value, str | int | float):
                raise ValueError("expected a string")
            return str(value)
        if origin is tuple:
            items = value.split(",") if isinstance(value, str) else list(value)
            return tuple(str(x).strip() for x in items if str(x).strip())
        if origin is dict:
            if isinstance(value, str):
                value = tomllib.loads(f"x = {value}")["x"]
            if not isinstance(value, dict):
                raise ValueError("expected a table")
            if typ.__args__[1] is Any:
                return value
            if typ.__args__[1] is int:
                return {str(k): _coerce(v, int, f"{where}.{k}", problems)
                        for k, v in value.items()}
            return {str(k): str(v) for k, v in value.items()}
    except (ValueError, TypeError, tomllib.TOMLDecodeError) as exc:
        problems.append(f"{where}: {exc}")
        return None
    return value


def _section_values(section_cls: type, raw: dict[str, Any], name: str, env: dict[str, str],
                    problems: list[str]) -> dict[str, Any]:
    hints = get_type_hints(section_cls)
    known = {f.name for f in fields(section_cls)}
    for key in raw:
        if (name, key) in RETIRED:
            problems.append(f"[{name}] {key}: {RETIRED[name, key]}")
        elif key not in known:
            problems.append(f"[{name}] {key}: unknown setting")
    values: dict[str, Any] = {}
    for f in fields(section_cls):
        env_key = f"{ENV_PREFIX}{name.upper()}__{f.name.upper()}"
        if env_key in env:
            values[f.name] = _coerce(env[env_key], hints[f.name], env_key, problems)
        elif f.name in raw:
            values[f.name] = _coerce(raw[f.name], hints[f.name], f"[{name}] {f.name}", problems)
    return values


def load_settings(path: str | os.PathLike | None = None,
                  env: dict[str, str] | None = None) -> Settings:
    """Load settings from TOML (path, else $QZBOT_CONFIG, else defaults) and env overrides."""
    env = dict(os.environ if env is None else env)
    path = path or env.get("QZBOT_CONFIG") or None
    raw = _read_file(path, env)
    problems: list[str] = []
    hints = get_type_hints(Settings)
    for key in raw:
        if key not in hints:
            problems.append(f"[{key}]: unknown section")
    sections = {}
    for name, section_cls in hints.items():
        section_raw = raw.get(name, {})
        if not isinstance(section_raw, dict):
            problems.append(f"[{name}]: must be a table")
            section_raw = {}
        sections[name] = section_cls(**_section_values(section_cls, section_raw, name, env,
                                                       problems))
    if problems:
        raise ConfigError(problems)
    settings = Settings(**sections)
    if path and DATABASE_URL_ENV not in env:
        url = resolve_sqlite_url(settings.database.url, Path(path).resolve().parent)
        settings = settings.replace(database={"url": url})
    if path and not Path(settings.cases.upload_dir).is_absolute():
        folder = Path(path).resolve().parent
        settings = settings.replace(cases={"upload_dir": str(folder / settings.cases.upload_dir)})
    validate(settings)
    return settings


def _read_file(path: str | os.PathLike | None, env: dict[str, str]) -> dict[str, Any]:
    """The TOML file's tables; a missing file (or none named, and no QZBOT_<SECTION>__<KEY>
    in env) is one clear problem rather than every required key the defaults lack."""
    if not path:
        if not any(key.startswith(ENV_PREFIX) and "__" in key for key in env):
            raise ConfigError([NO_CONFIG])
        return {}
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([f"no config file at {Path(path).resolve()} "
                           "(named by --config or QZBOT_CONFIG)"]) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from None


def resolve_sqlite_url(url: str, folder: Path) -> str:
    """A relative SQLite path made absolute against `folder` (the config file's folder), so
    the database is the same file whatever directory a command runs from; other URLs,
    absolute paths and in-memory databases are returned as they are."""
    match = _SQLITE_RELATIVE.match(url)
    if match is None:
        return url
    prefix, rest = match.group(1), match.group(2)
    file_part, sep, query = rest.partition("?")
    if file_part in ("", ":memory:") or file_part.startswith("file:"):
        return url
    return f"{prefix}{(folder / file_part).as_posix()}{sep}{query}"


def validate(settings: Settings) -> None:
    """Check cross-field rules; raise ConfigError listing every problem."""
    problems: list[str] = []
    wx = settings.wechat
    for key in ("app_id", "token"):
        if not getattr(wx, key):
            problems.append(f"[wechat] {key}: required (env {ENV_PREFIX}WECHAT__{key.upper()})")
    for key in ("encoding_aes_key", "previous_encoding_aes_key"):
        value = getattr(wx, key)
        if value and len(value) != 43:
            problems.append(f"[wechat] {key}: must be 43 characters (got {len(value)})")
    if wx.allow_plaintext and not wx.encoding_aes_key:
        problems.append("[wechat] allow_plaintext: only meaningful with encoding_aes_key "
                        "(without one, plaintext is the only mode)")
    if not wx.api_base_url.startswith(("http://", "https://")):
        problems.append("[wechat] api_base_url: must be an http(s) URL")
    if not 30 <= wx.timestamp_window_seconds <= 3600 or wx.max_body_bytes < 1024:
        # the replay guard keeps each (timestamp, nonce) for the window: it must be bounded
        problems.append("[wechat] timestamp_window_seconds 30..3600 and max_body_bytes >= 1024")
    if not settings.database.url:
        problems.append("[database] url: required")
    problems += _timeout_problems(settings)
    if settings.redis.dedupe_ttl_seconds < 30:
        problems.append("[redis] dedupe_ttl_seconds: must cover the retry window (>= 30)")
    if not (0 < settings.bot.answer_budget_seconds < 4.5):
        problems.append("[bot] answer_budget_seconds: must be between 0 and 4.5 (5-second rule)")
    if settings.bot.reply_limit_bytes > 2048 or settings.bot.reply_limit_bytes < 256:
        problems.append("[bot] reply_limit_bytes: 256..2048")
    problems += _push_problems(settings.push)
    problems += _cases_problems(settings.cases)
    if not settings.security.secret_key:
        problems.append(f"[security] secret_key: required (env {ENV_PREFIX}SECURITY__SECRET_KEY)")
    if problems:
        raise ConfigError(problems)


def _timeout_problems(settings: Settings) -> list[str]:
    """Backend timeouts must fit the answer budget (5-second rule, issue 6 item 7)."""
    db, rd, problems = settings.database, settings.redis, []
    if db.connect_timeout_seconds < 2 or db.statement_timeout_seconds < 0:
        problems.append("[database] connect_timeout_seconds >= 2 (libpq minimum) and "
                        "statement_timeout_seconds >= 0")
    if not (0 < db.answer_deadline_seconds <= 3 and 0 < db.pool_timeout_seconds <= 30):
        problems.append("[database] answer_deadline_seconds 0..3, pool_timeout_seconds 0..30")
    if not (0 < rd.connect_timeout_seconds <= 2 and 0 < rd.socket_timeout_seconds <= 2):
        problems.append("[redis] connect_timeout_seconds and socket_timeout_seconds: 0..2")
    if rd.down_seconds < 0 or db.down_seconds < 0:
        problems.append("[redis] and [database] down_seconds: must be >= 0")
    return problems


def _push_problems(push: PushSettings) -> list[str]:
    """Problems in [push]: times, numbers, template definitions."""
    problems = []
    for key in ("quiet_start", "quiet_end"):
        try:
            hh, mm = getattr(push, key).split(":")
            assert 0 <= int(hh) < 24 and 0 <= int(mm) < 60
        except (ValueError, AssertionError):
            problems.append(f"[push] {key}: must be HH:MM")
    for api, rate in push.rate_limits.items():
        if not rate.isdigit() or int(rate) < 1:
            problems.append(f"[push] rate_limits.{api}: must be a positive integer")
    if push.batch_size < 1 or push.concurrency < 1 or push.lease_seconds < 3:
        problems.append("[push] batch_size, concurrency >= 1 and lease_seconds >= 3")
    if push.public_base_url and not push.public_base_url.startswith(("http://", "https://")):
        problems.append("[push] public_base_url: must be an http(s) URL")
    if push.reserved_ttl_seconds < 60:
        problems.append("[push] reserved_ttl_seconds: must be >= 60")
    topics = tuple(t.value for t in Topic)
    for topic, spec in push.templates.items():
        where = f"[push.templates.{topic}]"
        if topic not in topics:
            problems.append(f"{where}: unknown topic (one of {', '.join(topics)})")
        if not isinstance(spec, dict) or not spec.get("template_id"):
            problems.append(f"{where}: template_id required")
            continue
        if spec.get("channel", "subscribe") not in ("subscribe", "template"):
            problems.append(f"{where}: channel must be subscribe or template")
        if not isinstance(spec.get("fields", {}), dict) or not spec.get("fields"):
            problems.append(f"{where}: fields must be a table of key = source")
    return problems


def _cases_problems(cases: CasesSettings) -> list[str]:
    """Problems in [cases]: limits are positive working-day counts within the law's bounds."""
    problems = []
    for category, days in cases.message_limits.items():
        if not isinstance(days, int) or not 1 <= days <= 60:
            problems.append(f"[cases] message_limits.{category}: 1..60 working days")
    numbers = {"sign_for_days": (1, 10), "application_days": (1, 20),
               "correction_notice_days": (1, 7), "correction_limit_days": (1, 60),
               "consultation_days": (1, 15), "extension_days": (1, 20),
               "max_upload_mb": (1, 50)}
    for key, (low, high) in numbers.items():
        if not low <= getattr(cases, key) <= high:
            problems.append(f"[cases] {key}: {low}..{high}")
    if not cases.upload_dir:
        problems.append("[cases] upload_dir: required")
    if any(not level.isdigit() or int(level) > 20 for level in cases.alert_levels):
        problems.append("[cases] alert_levels: working days before the due date, 0..20")
    return problems
