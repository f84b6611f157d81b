"""How WeChatClient's HTTP requests travel: a small Transport interface and two implementations.

`RequestsTransport` (the default) goes through a pooled requests.Session, so proxies,
CA bundles and the rest of requests' environment handling apply. `KeepAliveTransport`
keeps pooled http.client keep-alive connections: requests spends ~0.8 ms of CPU per call
(environment scans, hooks, cookie jars), this ~0.2 ms, and a push worker's sends are
CPU-bound (bench/push.py); it honours no proxy settings, so only choose it when none
applies (`requests.utils.get_environ_proxies(url)` is empty).

The rule both keep: a request that surely never left (refused, DNS, TLS, connect timeout)
raises `NotSent`; a failure once the request may have been written raises `MaybeSent`.
The client turns them into TransportError / AmbiguousSend, because only it knows whether
the call was a send (platform rule: a send has no idempotency key, never blind-retry).
No urllib3 retries either: a retried send may be a duplicate message. Only requests and
the standard library are imported: the WeChat core stays free of Flask, databases, Redis.
"""

from __future__ import annotations

import http.client
import os
import re
import select
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError

_SECRET_RE = re.compile(r"(access_token|secret)=[^&\s'\"]+")
Timeout = tuple[float, float]  # (connect, read) seconds


class NotSent(Exception):
    """The request surely did not reach the server: safe to retry."""

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


class MaybeSent(Exception):
    """The request may have reached the server; its outcome is unknown."""

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


class Answer(Protocol):
    """What the client reads of an HTTP answer."""

    @property
    def status_code(self) -> int:
        """The HTTP status."""
        ...

    @property
    def content(self) -> bytes:
        """The whole body."""
        ...


class Transport(Protocol):
    """Sends one HTTP request for WeChatClient; thread-safe; raises NotSent or MaybeSent."""

    def request(self, method: str, url: str, query: Mapping[str, str], body: bytes | None,
                headers: Mapping[str, str] | None, timeout: Timeout) -> Answer:
        """One request to `url` (no query string in it), the body read completely."""
        ...

    def close(self) -> None:
        """Close the pooled connections."""
        ...


def redact(text: str) -> str:
    """Exception texts carry the URL: keep tokens and secrets out of logs."""
    return _SECRET_RE.sub(r"\1=***", text)


class RequestsTransport:
    """requests over one pooled Session (sized for the sending threads, no retries)."""

    def __init__(self, session: requests.Session | None = None, *, pool_size: int = 32):
        if session is None:
            session = requests.Session()
            adapter = HTTPAdapter(pool_connections=2, pool_maxsize=pool_size, max_retries=0)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
        self.session = session

    def request(self, method: str, url: str, query: Mapping[str, str], body: bytes | None,
                headers: Mapping[str, str] | None, timeout: Timeout) -> Answer:
        """One request through the session; requests' exceptions sorted into sent or not."""
        try:
            return self.session.request(method, url, params=query, data=body,
                                        headers=headers, timeout=timeout)
        except requests.exceptions.ConnectTimeout as exc:
            raise NotSent(f"connect timeout ({redact(str(exc))})") from None
        except requests.exceptions.ConnectionError as exc:
            if _not_sent(exc):
                raise NotSent(redact(str(exc))) from None
            raise MaybeSent(f"connection lost: {redact(str(exc))}") from None
        except requests.exceptions.Timeout as exc:
            raise MaybeSent(f"read timeout: {redact(str(exc))}") from None
        except requests.exceptions.RequestException as exc:
            raise MaybeSent(f"{type(exc).__name__}: {redact(str(exc))}") from None

    def close(self) -> None:
        """Close the session's pooled connections."""
        self.session.close()


@dataclass(frozen=True, slots=True)
class HTTPAnswer:
    """An answer read by KeepAliveTransport."""

    status_code: int
    content: bytes


class KeepAliveTransport:
    """Pooled http.client keep-alive connections to one origin (scheme, host, port, prefix).

    The origin is taken from the first request's URL; every later URL must share it
    (WeChatClient always calls under its own base URL).
    """

    def __init__(self, cafile: str | None = None):
        self._cafile = cafile or os.environ.get("REQUESTS_CA_BUNDLE") or requests.certs.where()
        self._origin: tuple[str, str, int | None] | None = None
        self._tls: ssl.SSLContext | None = None
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def request(self, method: str, url: str, query: Mapping[str, str], body: bytes | None,
                headers: Mapping[str, str] | None, timeout: Timeout) -> Answer:
        """One request over an idle keep-alive connection, or a new one."""
        parts = urlsplit(url)
        conn = self._take(parts.scheme, parts.hostname or "", parts.port, timeout[0])
        if conn.sock is None:
            try:
                conn.connect()
            except OSError as exc:  # refused, unreachable, DNS, TLS, connect timeout
                conn.close()
                raise NotSent(f"cannot connect ({type(exc).__name__})") from None
            conn.sock.settimeout(timeout[1])
        try:
            conn.request(method, f"{parts.path}?{urlencode(query)}", body=body,
                         headers=dict(headers or {}))
            answer = conn.getresponse()
            content = answer.read()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise MaybeSent("read timeout" if isinstance(exc, TimeoutError)
                            else type(exc).__name__) from None
        if answer.will_close:
            conn.close()
        else:
            with self._lock:
                self._idle.append(conn)
        return HTTPAnswer(answer.status, content)

    def _take(self, scheme: str, host: str, port: int | None,
              connect_timeout: float) -> http.client.HTTPConnection:
        with self._lock:
            if self._origin is None:
                self._origin = (scheme, host, port)
                if scheme == "https":
                    self._tls = ssl.create_default_context(cafile=self._cafile)
            elif self._origin != (scheme, host, port):
                raise ValueError(f"KeepAliveTransport serves {self._origin}, "
                                 f"not {(scheme, host, port)}")
            while self._idle:
                conn = self._idle.pop()
                if conn.sock is not None and not select.select([conn.sock], [], [], 0)[0]:
                    return conn
                conn.close()  # closed by the server while idle (or never connected)
        if self._tls is not None:
            return http.client.HTTPSConnection(host, port, timeout=connect_timeout,
                                               context=self._tls)
        return http.client.HTTPConnection(host, port, timeout=connect_timeout)

    @property
    def idle_connections(self) -> int:
        """How many keep-alive connections wait for the next request."""
        return len(self._idle)

    def close(self) -> None:
        """Close the idle connections."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


def _not_sent(exc: requests.exceptions.ConnectionError) -> bool:
    """True when the connection was never established (refused, DNS, connect timeout)."""
    reason: Any = exc.args[0] if exc.args else None
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    return isinstance(reason, NewConnectionError | ConnectTimeoutError)
