"""The citizen webhook: GET handshake; POST verify, decrypt, parse, dedupe, dispatch, reply.

Platform rules relied on (../shared/docs/wechat-platform.md): signatures over sorted
(token, timestamp, nonce[, Encrypt]) compared in constant time; safe-mode replies are
encrypted; WeChat waits 5 s, then retries twice.

The 5-second rule: the one slow thing an answer can meet is building the search index
(first use, or after a content change). While that may happen the answer runs in a worker
thread under `answer_budget_seconds`; an overrun answers `success` and the real answer
follows as a customer-service message through the queue. Otherwise (the common case) the
answer runs in the request thread: a thread hop costs more than the answer itself.
"""

from __future__ import annotations

import logging
import secrets
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from flask import Blueprint, Response, current_app, request

from bot import jobs
from bot.dedupe import Claim, Deduper
from bot.errors import (
    BodyTooLarge,
    PlaintextRefused,
    RequestRejected,
    SignatureError,
    StaleTimestamp,
)
from bot.presence import Presence
from bot.router import Context, Reply, Router
from bot.runtime import Runtime, openid_hash
from bot.wechat.crypto import MessageCrypto
from bot.wechat.messages import Message, parse
from bot.wechat.replies import Article, news_reply, text_reply
from bot.wechat.signature import check_signature

log = logging.getLogger("qzbot.webhook")
bp = Blueprint("wechat", __name__)
APOLOGY = "抱歉，系统繁忙，请稍后再试，或拨打 12328 咨询。"
CITIZEN_MESSAGES = {"text", "voice", "image", "video", "shortvideo", "location", "link", "file"}


class Webhook:
    """The webhook's per-app state and its request pipeline (no Flask globals inside)."""

    def __init__(self, runtime: Runtime, router: Router, search, workers: int = 8):
        self.rt = runtime
        self.router = router
        self.search = search
        wx = runtime.settings.wechat
        keys = [k for k in (wx.encoding_aes_key, wx.previous_encoding_aes_key) if k]
        self.crypto = MessageCrypto(wx.token, keys, wx.app_id) if keys else None
        self.deduper = Deduper(runtime.redis, runtime.settings.redis.dedupe_ttl_seconds)
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="answer")
        self.presence = Presence(runtime)

    def close(self) -> None:
        """Finish in-flight answers and write buffered presence (shutdown, tests)."""
        self.executor.shutdown(wait=True)
        self.presence.close()

    # --- verification ---------------------------------------------------------------
    def check_fresh(self, timestamp: str) -> None:
        """Refuse timestamps outside the configured window (replay protection)."""
        window = self.rt.settings.wechat.timestamp_window_seconds
        try:
            ts = int(timestamp)
        except (TypeError, ValueError):
            raise StaleTimestamp("timestamp missing or not an integer") from None
        if window and abs(self.rt.now().timestamp() - ts) > window:
            raise StaleTimestamp(f"off by {int(self.rt.now().timestamp() - ts)} s")

    def open(self, args, body: bytes) -> tuple[str | bytes, bool]:
        """Verify a POST and return (message XML, was_encrypted)."""
        timestamp, nonce = args.get("timestamp", ""), args.get("nonce", "")
        token = self.rt.settings.wechat.token
        if args.get("encrypt_type", "raw").lower() == "aes":
            if self.crypto is None:
                raise RequestRejected("encrypted message but no EncodingAESKey configured")
            self.check_fresh(timestamp)
            return self.crypto.decrypt_message(body, args.get("msg_signature"), timestamp,
                                               nonce), True
        if self.rt.settings.wechat.require_encryption:
            raise PlaintextRefused("safe mode required")
        check_signature(args.get("signature"), token, timestamp, nonce)
        self.check_fresh(timestamp)
        return body, False

    # --- answering --------------------------------------------------------------------
    def respond(self, msg: Message) -> str:
        """The plaintext reply XML for a message ("" = `success`), deduplicated."""
        key = msg.dedupe_key
        claim = self.deduper.claim(key)
        if claim.claim is Claim.BUSY:
            claim = self.deduper.wait(key, self.rt.settings.redis.reply_wait_seconds)
            if claim.claim is Claim.BUSY:
                log.info("retry while still answering oh=%s key=%s: success",
                         openid_hash(msg.from_user), msg.msg_id or msg.event)
                return ""
        if claim.claim is Claim.DONE:
            log.info("retry answered from cache oh=%s", openid_hash(msg.from_user))
            return claim.reply
        if self.search.ready(self.rt.sessions, self.rt.now()):
            reply = self.answer(msg)  # fast path: nothing slow pending, answer in this thread
        else:
            reply = self._answer_within_budget(msg, key)
            if reply is None:
                return ""
        xml = self.render(msg, reply)
        self.deduper.store(key, xml)
        if reply.followups:
            jobs.enqueue_customer_texts(self.rt, msg.from_user, list(reply.followups))
        return xml

    def _answer_within_budget(self, msg: Message, key: str) -> Reply | None:
        """Answer in a worker thread; past the budget return None (`success`) and send the
        answer later as a customer-service message (5-second rule)."""
        future = self.executor.submit(self.answer, msg)
        try:
            return future.result(timeout=self.rt.settings.bot.answer_budget_seconds)
        except FutureTimeout:
            log.warning("answer over budget oh=%s: success now, customer-service later",
                        openid_hash(msg.from_user))
            self.deduper.store(key, "")
            future.add_done_callback(lambda f: self._send_later(msg, f))
            return None

    def answer(self, msg: Message) -> Reply:
        """Run the router in its own session; the edge commits. Errors become an apology."""
        started = time.perf_counter()
        if msg.msg_type in CITIZEN_MESSAGES:  # opens the 48 h customer-service window
            self.presence.seen(msg.from_user, self.rt.now())
        with self.rt.sessions() as session:
            ctx = Context(session=session, redis=self.rt.redis, settings=self.rt.settings,
                          now=self.rt.now(), search=self.search,
                          openid_hash=openid_hash(msg.from_user))
            try:
                reply = self.router.dispatch(msg, ctx)
                if session.in_transaction():  # a commit would otherwise begin one first
                    session.commit()
            except Exception:
                session.rollback()
                log.exception("handler failed oh=%s type=%s", ctx.openid_hash, msg.msg_type)
                reply = Reply(text=APOLOGY)
        log.info("answered oh=%s type=%s event=%s route=%s record=%s ms=%.1f", ctx.openid_hash,
                 msg.msg_type, msg.event, ctx.notes.get("route"), ctx.notes.get("record", "-"),
                 (time.perf_counter() - started) * 1000)
        return reply

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
            jobs.enqueue_customer_texts(self.rt, msg.from_user, texts)

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
        hook.check_fresh(args.get("timestamp", ""))
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


@bp.post("/wechat")
def receive() -> Response:
    """A citizen message or event."""
    hook = _hook()
    try:
        body = _read_body(hook.rt.settings.wechat.max_body_bytes)
        xml, encrypted = hook.open(request.args, body)
        msg = parse(xml)
    except RequestRejected as exc:
        return _refuse(exc)
    try:
        reply = hook.respond(msg)
    except Exception:  # process boundary: never a 500 to WeChat
        log.exception("webhook failed oh=%s", openid_hash(msg.from_user))
        reply = hook.render(msg, Reply(text=APOLOGY))
    return Response(hook.seal(reply, encrypted), mimetype="application/xml")


__all__ = ["bp", "Webhook", "Article"]
