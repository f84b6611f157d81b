"""Process logging: times with their UTC offset, and no citizen's openid in any log line.

Invariant (issue 6, item 10): openids are personal data, so logs carry only their pseudonym
(`oh=` + bot.runtime.openid_hash), and message texts are never logged at all. Code logs
`openid_hash(...)` itself; this module is the safety net for what code does not control:
WeChat appends `openid=` to the callback URL in safe mode (wechat-platform.md, "Inbound
messages"), and the one-time subscription redirect carries it too, so request lines in
the werkzeug and gunicorn access logs are scrubbed; and a traceback or a library message
(RQ, SQLAlchemy) that quotes an openid is redacted by the formatter of every qzbot
process. Log times are ISO 8601 with the offset (`2026-11-27T10:00:00+0800`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.serving import WSGIRequestHandler

from bot.runtime import openid_hash

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
DATE_FORMAT = "%Y-%m-%dT%H:%M:%S%z"
# `openid=VALUE` in a query string or a log line, whatever the value looks like, unless it
# is already a pseudonym (redacting twice would give a second, ungreppable pseudonym)
_OPENID_PARAM = re.compile(r"(?i)\b(openid=)(?!oh-[0-9a-f]{12}\b)([^&\s\"']+)")
# a bare WeChat openid: 28 URL-safe base64 characters starting with "o", standing alone
_OPENID = re.compile(r"(?<![A-Za-z0-9_-])o[A-Za-z0-9_-]{27}(?![A-Za-z0-9_-])")


def redact(text: str) -> str:
    """`text` with every openid (query parameter or bare) replaced by its pseudonym."""
    if "o" not in text:
        return text
    text = _OPENID_PARAM.sub(lambda m: f"{m.group(1)}oh-{openid_hash(m.group(2))}", text)
    return _OPENID.sub(lambda m: f"oh-{openid_hash(m.group(0))}", text)


class RedactingFormatter(logging.Formatter):
    """A formatter whose whole output (message, arguments, traceback) is redacted."""

    def __init__(self, fmt: str = LOG_FORMAT, datefmt: str = DATE_FORMAT, **kwargs: Any):
        super().__init__(fmt, datefmt, **kwargs)

    def format(self, record: logging.LogRecord) -> str:
        """Format as usual, then redact openids."""
        return redact(super().format(record))


def setup_logging(level: str | int = logging.WARNING) -> None:
    """Root handler with the redacting, offset-stamped format (once per process)."""
    root = logging.getLogger()
    if not any(isinstance(h.formatter, RedactingFormatter) for h in root.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(RedactingFormatter())
        root.addHandler(handler)
    root.setLevel(level if isinstance(level, int) else level.upper())


def scrub_environ(environ: dict[str, Any]) -> None:
    """Redact the request URI fields a WSGI server's access log reads (in place).

    The URIs usually end in the very query string: it is redacted once and reused when the
    path before it holds no "o" (no openid can start there; every request pays this)."""
    query = environ.get("QUERY_STRING")
    clean = redact(query) if isinstance(query, str) and query else query
    for key in ("RAW_URI", "REQUEST_URI"):
        value = environ.get(key)
        if isinstance(value, str) and value:
            path, mark, rest = value.partition("?")
            if mark and rest == query and "o" not in path:
                environ[key] = f"{path}?{clean}"
            else:
                environ[key] = redact(value)
    if clean is not query:
        environ["QUERY_STRING"] = clean


def access_log_safe(app: Callable) -> Callable:
    """WSGI middleware: the app sees the real request; the server logs a scrubbed URI.

    gunicorn formats its access-log line from the environ dict it passed to the app, after
    the response: the app gets a copy, and the server's dict is scrubbed.
    """
    def middleware(environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        inner = dict(environ)
        scrub_environ(environ)
        return app(inner, start_response)

    return middleware


class ScrubbedRequestHandler(WSGIRequestHandler):
    """werkzeug's request handler whose access-log line has the openid redacted."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Log the request line without the citizen's openid (the app already read it)."""
        self.requestline = redact(self.requestline)
        if hasattr(self, "path"):  # werkzeug logs the path when it has one
            self.path = redact(self.path)
        super().log_request(code, size)
