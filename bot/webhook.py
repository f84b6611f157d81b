"""The citizen webhook: GET handshake; POST verify, decrypt, parse, dedupe, dispatch, reply.

Platform rules relied on (../shared/docs/wechat-platform.md): signatures over sorted
(token, timestamp, nonce[, Encrypt]) compared in constant time; safe-mode replies are
encrypted; WeChat waits 5 s, then retries twice.

The 5-second rule: the one slow thing an answer can meet is building the search index
(first use, or after a content change). While that may happen the answer runs in a worker
thread under `answer_budget_seconds`; an overrun answers `success` and the real answer
follows as a customer-service message through the queue. Otherwise (the common case) the
answer runs in the request thread: a thread hop costs more than the answer itself.

Forged requests (issue 6 item 2): `signature` covers no body, so with an EncodingAESKey
configured plaintext POSTs are refused unless `[wechat] allow_plaintext`; each
(timestamp, nonce) pair carries one message only (bot/dedupe.ReplayGuard); the timestamp
must be ASCII digits inside the window. Hung backends (item 7): Redis calls go through a
guarded client and database work runs under `answer_deadline`; after a timeout the backend
is skipped until a background probe finds it answering again (bot/health): no dedupe
without Redis, an apology without the database.

Speed (issue 8 item 7): one Redis round trip per message (bot/dedupe: the replay guard,
the dedupe claim and the replies stored since the previous call in one script; the reply
is queued in memory, not written before responding), no database round trip for an
answer (the search serves from its snapshot of visible records), a flat-XML fast path
(bot/wechat/messages) and POST /wechat served straight from the WSGI environ (`_FastPost`:
Flask's request machinery cost as much as an echo answer). Checks are unchanged. Writes an
answer makes wait until after it: a numbered list's context rides the next Redis round trip
(handlers get the Deduper in `ctx.notes[DEFERRED]`), an unanswered question noted by the
fallback is buffered and written once a second (bot/presence.Unanswered), like presence;
so is the count of each text question's outcome per day (`ctx.notes["outcome"]`, issue 9).

Layering: the webhook is foundation; it imports no feature package. The router (the
handlers) and `send_texts` (the job queueing customer-service texts, push.followups) are
handed to it by the composition root (bot/app.py).
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from urllib.parse import parse_qsl

import redis as redis_lib
from flask import Blueprint, Flask, Response, current_app, request
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from bot.dedupe import DEFERRED, Claim, ClaimResult, Deduper, ReplayGuard
from bot.errors import (
    BodyTooLarge,
    PlaintextRefused,
    RequestRejected,
    SignatureError,
    StaleTimestamp,
)
from bot.health import Breaker
from bot.presence import Presence, Unanswered
from bot.redisconn import guarded
from bot.router import Context, LazySession, Reply, Router
from bot.runtime import Runtime, openid_hash
from bot.search_api import Search
from bot.store.db import answer_deadline
from bot.vocab import QuestionOutcome
from bot.wechat.crypto import MessageCrypto
from bot.wechat.messages import Message, parse
from bot.wechat.replies import Article, news_reply, text_reply
from bot.wechat.signature import check_signature

log = logging.getLogger("qzbot.webhook")
bp = Blueprint("wechat", __name__)
APOLOGY = "抱歉，系统繁忙，请稍后再试，或拨打 12328 咨询。"
CITIZEN_MESSAGES = {"text", "voice", "image", "video", "shortvideo", "location", "link", "file"}
QUESTIONS = {"text", "voice"}  # messages whose outcome is counted per day (console)
# events whose passive reply the citizen sees: they get the apology while degraded
VISIBLE_EVENTS = {"subscribe", "scan", "click"}
_TIMESTAMP = re.compile(r"[0-9]{1,12}")  # ASCII only: int() also takes "١٢" and "1_0"
_NONCE = re.compile(r"[0-9A-Za-z_-]{1,64}")
# queue texts to send later as customer-service messages: (runtime, openid, texts)
SendTexts = Callable[[Runtime, str, list[str]], None]


def _db_unavailable(exc: BaseException) -> bool:
    """A timeout or lost connection (the backend, not a bug in a handler)."""
    if isinstance(exc, OperationalError | PoolTimeout):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


class Webhook:
    """The webhook's per-app state and its request pipeline (no Flask globals inside)."""

    def __init__(self, runtime: Runtime, router: Router, search: Search, *, send_texts: SendTexts,
                 workers: int = 8):
        self.rt = runtime
        self.router = router
        self.search = search
        self.send_texts = send_texts
        wx = runtime.settings.wechat
        keys = [k for k in (wx.encoding_aes_key, wx.previous_encoding_aes_key) if k]
        self.crypto = MessageCrypto(wx.token, keys, wx.app_id) if keys else None
        # probes run in a background thread, so no citizen pays a timeout to learn it is back
        self.redis_health = Breaker("redis", runtime.settings.redis.down_seconds,
                                    probe=self._probe_redis)
        self.db_health = Breaker("database", runtime.settings.database.down_seconds,
                                 probe=self._probe_database)
        self.redis = guarded(runtime.redis, self.redis_health)
        self.replays = ReplayGuard(self.redis)
        self.deduper = Deduper(self.redis, runtime.settings.redis.dedupe_ttl_seconds,
                               replays=self.replays)
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="answer")
        self.presence = Presence(runtime)
        self.unanswered = Unanswered(runtime)

    def _probe_redis(self) -> None:
        redis_lib.Redis(connection_pool=self.redis.connection_pool).ping()

    def _probe_database(self) -> None:
        with answer_deadline(self.rt.settings.database.answer_deadline_seconds), \
                self.rt.sessions() as session:
            session.execute(text("SELECT 1"))

    def close(self) -> None:
        """Finish in-flight answers and write buffered presence (shutdown, tests)."""
        self.executor.shutdown(wait=True)
        self.deduper.close()  # the replies still queued for Redis
        self.redis_health.close()
        self.db_health.close()
        self.presence.close()
        self.unanswered.close()

    def flush(self) -> None:
        """Write what is queued for after the answers now (tests, `qzbot` tools)."""
        self.deduper.flush()
        self.presence.flush()
        self.unanswered.flush()

    # --- verification ---------------------------------------------------------------
    def check_fresh(self, timestamp: str | None, nonce: str | None = "0") -> None:
        """Refuse a malformed nonce and timestamps outside the window (a 4xx, never a 500)."""
        if not _NONCE.fullmatch(nonce or ""):
            raise SignatureError("nonce missing or malformed")
        if not _TIMESTAMP.fullmatch(timestamp or ""):
            raise StaleTimestamp("timestamp missing or not a plain integer")
        skew = int(self.rt.now().timestamp()) - int(timestamp or 0)
        if abs(skew) > self.rt.settings.wechat.timestamp_window_seconds:
            raise StaleTimestamp(f"off by {skew} s")

    def replay_ttl(self, timestamp: str) -> int:
        """Seconds until `timestamp` leaves the freshness window (how long a pair matters)."""
        window = self.rt.settings.wechat.timestamp_window_seconds
        left = int(timestamp) + window - int(self.rt.now().timestamp()) + 1
        return min(max(left, 1), 2 * window + 1)

    def open(self, args, body: bytes) -> tuple[str | bytes, bool]:
        """Verify a POST and return (message XML, was_encrypted)."""
        timestamp, nonce = args.get("timestamp", ""), args.get("nonce", "")
        token = self.rt.settings.wechat.token
        self.check_fresh(timestamp, nonce)
        if args.get("encrypt_type", "raw").lower() == "aes":
            if self.crypto is None:
                raise RequestRejected("encrypted message but no EncodingAESKey configured")
            return self.crypto.decrypt_message(body, args.get("msg_signature"), timestamp,
                                               nonce), True
        if self.crypto is not None and not self.rt.settings.wechat.allow_plaintext:
            # wechat-platform.md: `signature` covers no body; with a key configured a
            # plaintext POST is a forged body under a captured URL unless the operator opts in
            raise PlaintextRefused("plaintext POST while an EncodingAESKey is configured")
        check_signature(args.get("signature"), token, timestamp, nonce)
        return body, False

    # --- answering --------------------------------------------------------------------
    def admit(self, msg: Message, timestamp: str, nonce: str) -> tuple[ClaimResult, int]:
        """Bind (timestamp, nonce) to this message (ReplayedRequest if used for another) and
        claim its dedupe key, in one Redis round trip; returns the claim and the seconds the
        pair matters (the least TTL of the message's dedupe key)."""
        ttl = self.replay_ttl(timestamp)
        return self.deduper.admit(timestamp, nonce, msg.dedupe_key, ttl), ttl

    def respond(self, msg: Message, ttl: int = 0, claim: ClaimResult | None = None) -> str:
        """The plaintext reply XML for a message ("" = `success`), deduplicated.

        `ttl`: keep the dedupe key at least this long (the request's replay window);
        `claim`: the claim `admit` made (claimed here when None)."""
        key = msg.dedupe_key
        if claim is None:
            claim = self.deduper.claim(key, ttl)
        if claim.claim is Claim.BUSY:
            claim = self.deduper.wait(key, self.rt.settings.redis.reply_wait_seconds, ttl=ttl)
            if claim.claim is Claim.BUSY:
                log.info("retry while still answering oh=%s key=%s: success",
                         openid_hash(msg.from_user), msg.msg_id or msg.event)
                return ""
        if claim.claim is Claim.DONE:
            log.info("retry answered from cache oh=%s", openid_hash(msg.from_user))
            return claim.reply
        ready = self._search_ready()
        if ready is None:
            reply = self.degraded(msg)  # database down: no handler, an apology at once
            if msg.msg_type in QUESTIONS:
                self.unanswered.count(QuestionOutcome.ERROR, self.rt.now())
        elif ready:
            reply = self.answer(msg)  # fast path: nothing slow pending, answer in this thread
        else:
            reply = self._answer_within_budget(msg, key, ttl)
            if reply is None:
                return ""
        xml = self.render(msg, reply)
        if claim.claim is Claim.NEW:  # queued in memory: written with the next round trip
            self.deduper.store(key, xml, ttl)
        if reply.followups and self.redis_health.up:  # the queue is Redis too
            self.send_texts(self.rt, msg.from_user, list(reply.followups))
        return xml

    def _search_ready(self) -> bool | None:
        """search.ready under the answer deadline; None while the database is down."""
        if not self.db_health.up:
            return None
        try:
            with answer_deadline(self.rt.settings.database.answer_deadline_seconds):
                return self.search.ready(self.rt.sessions, self.rt.now())
        except Exception as exc:
            if not _db_unavailable(exc):
                raise
            self.db_health.failed(exc)
            return None

    def degraded(self, msg: Message) -> Reply:
        """The reply while the database is down: an apology where the citizen sees one."""
        if msg.msg_type in CITIZEN_MESSAGES:
            self.presence.seen(msg.from_user, self.rt.now())  # written when it is back
        log.warning("answered degraded (database down) oh=%s type=%s event=%s",
                    openid_hash(msg.from_user), msg.msg_type, msg.event or "-")
        if msg.msg_type != "event" or msg.event in VISIBLE_EVENTS:
            return Reply(text=APOLOGY)
        return Reply()

    def _answer_within_budget(self, msg: Message, key: str, ttl: int = 0) -> Reply | None:
        """Answer in a worker thread; past the budget return None (`success`) and send the
        answer later as a customer-service message (5-second rule)."""
        future = self.executor.submit(self.answer, msg)
        try:
            return future.result(timeout=self.rt.settings.bot.answer_budget_seconds)
        except FutureTimeout:
            log.warning("answer over budget oh=%s: success now, customer-service later",
                        openid_hash(msg.from_user))
            self.deduper.store(key, "", ttl)
            future.add_done_callback(lambda f: self._send_later(msg, f))
            return None

    def answer(self, msg: Message) -> Reply:
        """Run the router in its own session; the edge commits. Errors become an apology."""
        started = time.perf_counter()
        if msg.msg_type in CITIZEN_MESSAGES:  # opens the 48 h customer-service window
            self.presence.seen(msg.from_user, self.rt.now())
        session = LazySession(self.rt.sessions)  # opened only if a handler uses it
        with answer_deadline(self.rt.settings.database.answer_deadline_seconds):
            ctx = Context(session=session, redis=self.redis,  # type: ignore[arg-type]
                          settings=self.rt.settings, now=self.rt.now(), search=self.search,
                          openid_hash=openid_hash(msg.from_user),
                          notes={DEFERRED: self.deduper})
            try:
                reply = self.router.dispatch(msg, ctx)
                # a commit would otherwise begin a transaction first
                if session.opened and session.in_transaction():
                    session.commit()
                if isinstance(question := ctx.notes.get("unanswered"), str):
                    self.unanswered.add(question, ctx.now)  # written after the answer
                outcome = ctx.notes.get("outcome", QuestionOutcome.OTHER)
            except Exception as exc:
                reply = self._failed(session, ctx, msg, exc)
                outcome = QuestionOutcome.ERROR
            finally:
                session.close()
        if msg.msg_type in QUESTIONS:  # counted per day, written after the answer
            self.unanswered.count(outcome, ctx.now)
        log.info("answered oh=%s type=%s event=%s route=%s record=%s ms=%.1f", ctx.openid_hash,
                 msg.msg_type, msg.event, ctx.notes.get("route"), ctx.notes.get("record", "-"),
                 (time.perf_counter() - started) * 1000)
        return reply

    def _failed(self, session: LazySession, ctx: Context, msg: Message,
                exc: Exception) -> Reply:
        """A handler raised: roll back, log (the backend briefly, a bug with traceback)."""
        try:
            if session.opened:
                session.rollback()
        except Exception as again:  # noqa: BLE001 - a dead connection cannot roll back
            log.warning("rollback failed: %s", type(again).__name__)
        if _db_unavailable(exc):
            self.db_health.failed(exc)
            return self.degraded(msg)
        log.exception("handler failed oh=%s type=%s", ctx.openid_hash, msg.msg_type)
        return Reply(text=APOLOGY)

    def render(self, msg: Message, reply: Reply) -> str:
        """Passive reply XML (to and from swapped), or "" for `success`."""
        now = int(self.rt.now().timestamp())
        if reply.articles:
            return news_reply(msg.from_user, msg.to_user, list(reply.articles), now)
        if reply.text:
            return text_reply(msg.from_user, msg.to_user, reply.text, now)
        return ""

    def _send_later(self, msg: Message, future: Future) -> None:
        try:
            reply = future.result()
        except Exception:  # answer() already catches; belt and braces at a thread boundary
            log.exception("late answer failed")
            return
        texts = [t for t in (reply.text, *reply.followups) if t]
        if texts:
            self.send_texts(self.rt, msg.from_user, texts)

    def seal(self, xml: str, encrypted: bool) -> str:
        """Encrypt a reply for safe mode; `success` stays plain."""
        if not xml:
            return "success"
        if encrypted and self.crypto is not None:
            return self.crypto.encrypt_reply(xml, str(int(self.rt.now().timestamp())),
                                             secrets.token_hex(5))
        return xml


def _hook() -> Webhook:
    return current_app.extensions["qzbot.webhook"]


def _refuse(exc: RequestRejected) -> Response:
    log.warning("refused %s from %s: %s", exc.reason, request.remote_addr, exc.detail[:200])
    return Response(exc.reason, status=exc.status, mimetype="text/plain")


@bp.get("/wechat")
def handshake() -> Response:
    """Server verification: echo `echostr` when the signature is right."""
    hook = _hook()
    args = request.args
    try:
        check_signature(args.get("signature"), hook.rt.settings.wechat.token,
                        args.get("timestamp", ""), args.get("nonce", ""))
        hook.check_fresh(args.get("timestamp"), args.get("nonce"))
        echostr = args.get("echostr", "")
        if not echostr or len(echostr) > 256:
            raise SignatureError("echostr missing or too long")
    except RequestRejected as exc:
        return _refuse(exc)
    return Response(echostr, mimetype="text/plain")


def _read_body(limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge(f"{request.content_length} bytes")
    body = request.stream.read(limit + 1)
    if len(body) > limit:
        raise BodyTooLarge(f"more than {limit} bytes")
    return body


def handle_post(hook: Webhook, args: Mapping[str, str], read_body: Callable[[int], bytes],
                remote_addr: str | None) -> tuple[int, str, str]:
    """A citizen message or event -> (status, body, mimetype); the one POST pipeline.

    `read_body(limit)` returns the body or raises BodyTooLarge past `limit` bytes."""
    try:
        body = read_body(hook.rt.settings.wechat.max_body_bytes)
        xml, encrypted = hook.open(args, body)
        msg = parse(xml)
        claim, ttl = hook.admit(msg, args["timestamp"], args["nonce"])
    except RequestRejected as exc:
        log.warning("refused %s from %s: %s", exc.reason, remote_addr, exc.detail[:200])
        return exc.status, exc.reason, "text/plain"
    try:
        reply = hook.respond(msg, ttl, claim)
    except Exception:  # process boundary: never a 500 to WeChat
        log.exception("webhook failed oh=%s", openid_hash(msg.from_user))
        reply = hook.render(msg, Reply(text=APOLOGY))
    return 200, hook.seal(reply, encrypted), "application/xml"


@bp.post("/wechat")
def receive() -> Response:
    """A citizen message or event (served by `_FastPost` when the blueprint is registered
    on an app; this view remains for apps that wrap the WSGI callable differently)."""
    status, body, mimetype = handle_post(_hook(), request.args, _read_body,
                                         request.remote_addr)
    return Response(body, status=status, mimetype=mimetype)


class _FastPost:
    """WSGI middleware: POST /wechat runs `handle_post` straight from the WSGI environ.

    Flask's request context, URL matching and Response objects cost about as much as the
    rest of an echo answer (bench/webhook.py), and the POST needs none of them: the query
    string, the body (read as werkzeug would: by Content-Length, or to the end when the
    server says the input is terminated) and the remote address. Everything else (GET,
    other paths) goes to Flask unchanged.
    """

    def __init__(self, app: Flask, path: str):
        self.app, self.path, self.inner = app, path, app.wsgi_app

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        """Serve POST `path` here; anything else through the Flask app."""
        if environ.get("REQUEST_METHOD") != "POST" or environ.get("PATH_INFO") != self.path:
            return self.inner(environ, start_response)
        args = query_args(environ.get("QUERY_STRING", ""))
        try:
            status, body, mimetype = handle_post(self.app.extensions["qzbot.webhook"], args,
                                                 lambda limit: _environ_body(environ, limit),
                                                 environ.get("REMOTE_ADDR"))
        except Exception:  # a bug outside the pipeline's own guard: a plain 500, logged
            log.exception("webhook POST failed")
            status, body, mimetype = 500, "internal error", "text/plain"
        data = body.encode("utf-8")
        start_response(_STATUS.get(status, f"{status} Error"),
                       [("Content-Type", f"{mimetype}; charset=utf-8"),
                        ("Content-Length", str(len(data)))])
        return [data]


def query_args(query: str) -> dict[str, str]:
    """The query string's parameters, the first value of each (as request.args.get gives).

    WeChat's parameters are plain (digits, letters, `_`, `-`): without `%` or `+` nothing
    needs decoding, and a split gives what parse_qsl gives at a fifth of its cost."""
    if "%" in query or "+" in query:
        pairs = parse_qsl(query, keep_blank_values=True)
    else:
        pairs = [(name, value) for name, _, value in
                 (part.partition("=") for part in query.split("&") if part)]
    args: dict[str, str] = {}
    for name, value in pairs:
        args.setdefault(name, value)
    return args


_STATUS = {200: "200 OK", 400: "400 Bad Request", 403: "403 Forbidden",
           413: "413 Request Entity Too Large", 500: "500 Internal Server Error"}


def _environ_body(environ: dict, limit: int) -> bytes:
    """The request body, at most `limit` bytes (BodyTooLarge past it), as werkzeug reads it."""
    length = environ.get("CONTENT_LENGTH") or ""
    stream = environ["wsgi.input"]
    if length.isdigit():
        if int(length) > limit:
            raise BodyTooLarge(f"{length} bytes")
        body = stream.read(int(length))
    elif environ.get("wsgi.input_terminated"):  # chunked: the server ends the stream
        body = stream.read(limit + 1)
    else:
        body = b""  # no length and no terminated stream: no body (werkzeug's rule)
    if len(body) > limit:
        raise BodyTooLarge(f"more than {limit} bytes")
    return body


@bp.record_once
def _install_fast_post(state) -> None:
    """On registration: serve POST /wechat through `_FastPost` (see there)."""
    state.app.wsgi_app = _FastPost(state.app, (state.url_prefix or "") + "/wechat")


__all__ = ["bp", "Webhook", "Article"]
