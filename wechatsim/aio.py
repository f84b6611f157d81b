"""An asyncio HTTP/1.1 front end for the simulator: latency and hangs are awaited, not slept.

A thread per request (werkzeug, gunicorn gthread) spends most of its CPU switching
threads under the GIL; one event loop holds thousands of calls sleeping their latency
for the price of a timer each. /cgi-bin/ calls go straight to `wechatsim.api`; anything
else (the /_sim/ control API) is handed to the Flask app as plain WSGI.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import sys
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, unquote_to_bytes

from flask import Flask

from wechatsim.api import API_PREFIX, Outcome, begin, finish
from wechatsim.state import SimState

IDLE_TIMEOUT_S = 75.0
MAX_BODY = 4 * 1024 * 1024
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            411: "Length Required", 413: "Payload Too Large", 500: "Internal Server Error"}


class _BadRequest(Exception):
    def __init__(self, status: int):
        self.status = status


class AioSimulator:
    """Serves one simulator app from the running event loop."""

    def __init__(self, app: Flask):
        self.app = app
        self.state: SimState = app.extensions["wechat_sim"]
        self._tasks: set[asyncio.Task[Any]] = set()
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> int:
        """Listen; returns the bound port (useful with port 0)."""
        self._server = await asyncio.start_server(self._connection, host, port, backlog=1024)
        return self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop listening and cut the open connections (idle keep-alives included)."""
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _connection(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._serve_connection(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                TimeoutError):
            pass
        except asyncio.CancelledError:
            pass  # close(): the server is going away; this task is the top of its stack
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _serve_connection(self, reader: asyncio.StreamReader,
                                writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername") or ("", 0)
        while True:
            async with asyncio.timeout(IDLE_TIMEOUT_S):
                head = await reader.readuntil(b"\r\n\r\n")
            try:
                method, target, version, headers = _parse_head(head)
                length = _content_length(headers)
            except _BadRequest as exc:
                writer.write(_render(Outcome(status=exc.status, content_type="text/plain"),
                                     keep_alive=False))
                return
            body = await reader.readexactly(length) if length else b""
            keep_alive = _keep_alive(version, headers)
            outcome = await self._dispatch(method, target, headers, body, str(peer[0]))
            if outcome.drop:
                writer.transport.abort()  # the request was read: the caller can't know
                return
            writer.write(_render(outcome, keep_alive))
            await writer.drain()
            if not keep_alive:
                return

    async def _dispatch(self, method: str, target: str, headers: dict[str, str],
                        body: bytes, peer: str) -> Outcome:
        path, _, query = target.partition("?")
        if not path.startswith(API_PREFIX):
            return self._wsgi(method, path, query, headers, body, peer)
        args = dict(parse_qsl(query, keep_blank_values=True))
        pending = begin(self.state, path[len(API_PREFIX):], method, args, body)
        if isinstance(pending, Outcome):
            return pending
        if pending.plan.latency_s > 0:
            await asyncio.sleep(pending.plan.latency_s)
        outcome = finish(self.state, pending)
        if outcome.hang_s > 0:
            await asyncio.sleep(outcome.hang_s)
        return outcome

    def _wsgi(self, method: str, path: str, query: str, headers: dict[str, str],
              body: bytes, peer: str) -> Outcome:
        environ: dict[str, Any] = {
            "REQUEST_METHOD": method, "SCRIPT_NAME": "",
            "PATH_INFO": unquote_to_bytes(path).decode("latin-1"), "QUERY_STRING": query,
            "SERVER_NAME": "simulator", "SERVER_PORT": "0", "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": peer, "CONTENT_TYPE": headers.get("content-type", ""),
            "CONTENT_LENGTH": str(len(body)), "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr, "wsgi.multithread": False,
            "wsgi.multiprocess": False, "wsgi.run_once": False,
        }
        for name, value in headers.items():
            if name not in ("content-type", "content-length"):
                environ["HTTP_" + name.upper().replace("-", "_")] = value
        status: list[str] = []
        ctype = ["text/plain"]

        def start_response(line: str, hdrs: list[tuple[str, str]], *_: Any) -> Callable:
            status.append(line)
            ctype.extend(v for k, v in hdrs if k.lower() == "content-type")
            return lambda data: None

        response = self.app(environ, start_response)
        try:
            data = b"".join(response)
        finally:
            close = getattr(response, "close", None)
            if close is not None:
                close()
        return Outcome(status=int(status[0].split(" ", 1)[0]), body=data, content_type=ctype[-1])


def _parse_head(head: bytes) -> tuple[str, str, str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise _BadRequest(400)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise _BadRequest(400)
        headers[name.strip().lower()] = value.strip()
    return parts[0], parts[1], parts[2], headers


def _content_length(headers: dict[str, str]) -> int:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        raise _BadRequest(411)  # the clients we simulate for always send a length
    raw = headers.get("content-length", "0") or "0"
    if not raw.isdigit():
        raise _BadRequest(400)
    if int(raw) > MAX_BODY:
        raise _BadRequest(413)
    return int(raw)


def _keep_alive(version: str, headers: dict[str, str]) -> bool:
    connection = headers.get("connection", "").lower()
    if version == "HTTP/1.0":
        return connection == "keep-alive"
    return connection != "close"


def _render(outcome: Outcome, keep_alive: bool) -> bytes:
    ctype = outcome.content_type
    if "charset" not in ctype and (ctype.startswith("text/") or ctype.endswith("json")):
        ctype += "; charset=utf-8"
    head = (f"HTTP/1.1 {outcome.status} {_REASONS.get(outcome.status, 'Unknown')}\r\n"
            f"Content-Type: {ctype}\r\nContent-Length: {len(outcome.body)}\r\n"
            f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n")
    return head.encode("latin-1") + outcome.body


async def serve_forever(app: Flask, host: str, port: int,
                        on_ready: Callable[[int], None] | None = None,
                        stop: asyncio.Event | None = None) -> None:
    """Serve until `stop` is set (or forever); `on_ready(port)` once listening."""
    server = AioSimulator(app)
    bound = await server.start(host, port)
    if on_ready is not None:
        on_ready(bound)
    try:
        await (stop.wait() if stop is not None else asyncio.Event().wait())
    finally:
        await server.close()


def run_asyncio(app: Flask, host: str, port: int) -> None:
    """Serve in the foreground until Ctrl-C."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_forever(app, host, port))
