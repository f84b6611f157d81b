"""The webhook: handshake, three POST modes, bad input (each a 4xx, never a 500), retries."""

from __future__ import annotations

import logging

import pytest

from bot.wechat.inbound import message_xml, open_reply, signed_request
from bot.wechat.signature import make_signature
from tests.conftest import APP_ID, OLD_AES_KEY, TOKEN
from tests.wx import ACCOUNT, CITIZEN, WeChat


def test_handshake_echoes_echostr(wechat):
    ts = str(wechat.now())
    args = {"signature": make_signature(TOKEN, ts, "123"), "timestamp": ts, "nonce": "123",
            "echostr": "4963745929352412716"}
    resp = wechat.client.get("/wechat", query_string=args)
    assert resp.status_code == 200 and resp.get_data(as_text=True) == "4963745929352412716"


@pytest.mark.parametrize("change", [{"signature": "0" * 40}, {"signature": None},
                                   {"timestamp": "1000"}, {"echostr": None}])
def test_handshake_refuses_bad_requests(wechat, change):
    ts = str(wechat.now())
    args = {"signature": make_signature(TOKEN, ts, "1"), "timestamp": ts, "nonce": "1",
            "echostr": "abc"}
    for key, value in change.items():
        if key == "timestamp":  # a correctly signed but stale request
            args["signature"] = make_signature(TOKEN, value, "1")
        if value is None:
            args.pop(key)
        else:
            args[key] = value
    resp = wechat.client.get("/wechat", query_string=args)
    assert resp.status_code in (400, 403) and "abc" not in resp.get_data(as_text=True)


@pytest.mark.parametrize("mode", ["plain", "aes"])
def test_answers_in_plain_and_safe_mode(wechat, mode):
    if mode == "plain":  # with an EncodingAESKey set, plaintext needs the explicit opt-in
        wechat.rt.settings = wechat.rt.settings.replace(wechat={"allow_plaintext": True})
    reply = wechat.send("公交卡丢了去哪补", mode=mode)
    assert reply["MsgType"] == "text"
    assert reply["ToUserName"] == CITIZEN and reply["FromUserName"] == ACCOUNT
    assert reply["Content"].splitlines()[0] == "公交IC卡挂失补办"


def test_safe_mode_reply_is_encrypted(wechat):
    xml = message_xml(ACCOUNT, CITIZEN, "text", create_time=wechat.now(), Content="12328")
    status, body = wechat.post_xml(xml, mode="aes")
    assert status == 200 and "<Encrypt>" in body and "12328" not in body
    assert open_reply(body, wechat.crypto)["Content"].startswith("交通运输服务监督电话：12328")


def test_compatible_mode_plain_signature_also_present(wechat):
    """Compatible mode: WeChat sends both signature and msg_signature; we use msg_signature."""
    xml = message_xml(ACCOUNT, CITIZEN, "text", create_time=wechat.now(), Content="12328")
    args, body = signed_request(xml, TOKEN, wechat.crypto, timestamp=wechat.now())
    args["signature"] = "0" * 40  # the plain signature is not what protects an AES body
    resp = wechat.client.post("/wechat", query_string=args, data=body.encode())
    assert resp.status_code == 200


def test_previous_encoding_aes_key_accepted(app):
    from bot.wechat.crypto import MessageCrypto

    wx = WeChat(app)
    wx.crypto = MessageCrypto(TOKEN, [OLD_AES_KEY], APP_ID)
    xml = message_xml(ACCOUNT, CITIZEN, "text", create_time=wx.now(), Content="12328")
    status, body = wx.post_xml(xml, mode="aes")
    assert status == 200
    current = MessageCrypto(TOKEN, [app.extensions["qzbot.runtime"].settings.wechat
                                    .encoding_aes_key], APP_ID)
    assert "12328" in open_reply(body, current)["Content"]  # replies use the current key


def _bad_requests(wx: WeChat):
    """(name, args, body) for every malformed or forged request."""
    now = wx.now()
    good = message_xml(ACCOUNT, CITIZEN, "text", create_time=now, Content="12328")
    args, body = signed_request(good, TOKEN, wx.crypto, timestamp=now, nonce="42")
    plain_args, _ = signed_request(good, TOKEN, None, timestamp=now, nonce="42")
    enc = body.split("<Encrypt><![CDATA[")[1].split("]]>")[0]
    flipped = enc[:20] + ("A" if enc[20] != "A" else "B") + enc[21:]

    def aes(inner_encrypted: str, **override):
        a = dict(args, msg_signature=make_signature(TOKEN, str(now), "42", inner_encrypted))
        a.update(override)
        return a, f"<xml><Encrypt><![CDATA[{inner_encrypted}]]></Encrypt></xml>"

    from bot.wechat.crypto import Cipher
    other_app = Cipher(wx.crypto.cipher._key_b64 if hasattr(wx.crypto.cipher, "_key_b64")
                       else "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "wxSOMEOTHERAPP0001")
    xxe = ('<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
           f'<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><CreateTime>{now}'
           '</CreateTime><MsgType>text</MsgType><Content>&x;</Content><MsgId>1</MsgId></xml>')
    lol = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 '
           '"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><xml><Content>&lol2;'
           '</Content></xml>')
    return [
        ("wrong signature", dict(plain_args, signature="f" * 40), good),
        ("missing signature", {k: v for k, v in plain_args.items() if k != "signature"}, good),
        ("stale timestamp", dict(plain_args, timestamp=str(now - 3600),
                                 signature=make_signature(TOKEN, str(now - 3600), "42")), good),
        ("wrong msg_signature", dict(args, msg_signature="0" * 40), body),
        ("missing msg_signature", {k: v for k, v in args.items() if k != "msg_signature"}, body),
        ("tampered ciphertext", *aes(flipped)),
        ("truncated ciphertext", *aes(enc[:-24])),
        ("not base64", *aes("!!!not*base64!!!")),
        ("wrong appid", *aes(other_app.encrypt(good))),
        ("malformed xml", plain_args, "<xml><ToUserName>oops</xml"),
        ("malformed envelope", dict(args, msg_signature=make_signature(TOKEN, str(now), "42",
                                                                        "")), "<xml><Encrypt>"),
        ("external entity", plain_args, xxe),
        ("entity expansion", plain_args, lol),
        ("not xml", plain_args, "hello"),
        ("empty body", plain_args, ""),
        ("missing fields", plain_args, "<xml><Content>hi</Content></xml>"),
    ]


def test_every_bad_request_is_a_4xx_and_logged_without_secrets(wechat, caplog):
    # opt in to plaintext so that the plain cases reach the signature checks
    wechat.rt.settings = wechat.rt.settings.replace(wechat={"allow_plaintext": True})
    caplog.set_level(logging.WARNING, logger="qzbot")
    for name, args, body in _bad_requests(wechat):
        resp = wechat.client.post("/wechat", query_string=args, data=body.encode())
        assert 400 <= resp.status_code < 500, (name, resp.status_code, resp.get_data())
        assert "Traceback" not in resp.get_data(as_text=True), name
    text = caplog.text
    assert text.count("refused") >= 16
    for secret in (TOKEN, "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "test-secret"):
        assert secret not in text
    assert wechat.text("12328").startswith("交通运输服务监督电话")  # still answering


def test_bad_padding_refused(wechat):
    """A ciphertext whose last block decrypts to pad byte 0 is an error, not empty bytes."""
    import base64

    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    key = base64.b64decode(wechat.rt.settings.wechat.encoding_aes_key + "=")
    plain = b"\x00" * 16 + (5).to_bytes(4, "big") + b"hello" + APP_ID.encode()
    plain += b"\x00" * (32 - len(plain) % 32)  # pad byte 0: invalid
    enc = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    data = base64.b64encode(enc.update(plain) + enc.finalize()).decode()
    now = str(wechat.now())
    args = {"timestamp": now, "nonce": "9", "encrypt_type": "aes",
            "msg_signature": make_signature(TOKEN, now, "9", data)}
    resp = wechat.client.post("/wechat", query_string=args,
                              data=f"<xml><Encrypt>{data}</Encrypt></xml>".encode())
    assert resp.status_code == 400 and resp.get_data(as_text=True) == "bad_ciphertext"


def test_oversized_body_refused(app):
    rt = app.extensions["qzbot.runtime"]
    wx = WeChat(app, mode="plain")
    limit = rt.settings.wechat.max_body_bytes
    xml = message_xml(ACCOUNT, CITIZEN, "text", create_time=wx.now(), Content="路" * limit)
    status, body = wx.post_xml(xml)
    assert status == 413 and body == "body_too_large"


def test_plaintext_refused_when_an_aes_key_is_configured(runtime, make_app):
    rt = runtime  # the default: allow_plaintext = false
    application = make_app(runtime=rt)
    wx = WeChat(application)
    xml = message_xml(ACCOUNT, CITIZEN, "text", create_time=wx.now(), Content="12328")
    assert wx.post_xml(xml, mode="plain")[0] == 403
    assert wx.post_xml(xml, mode="aes")[0] == 200


@pytest.mark.parametrize("content", ["", "   ", "路" * 10000, "😀🚌🚕" * 50,
                                     "\x00\x01\x1b[31m公交卡\x07", "]]><xml>", "&lt;script&gt;"])
def test_odd_text_gets_a_polite_reply(wechat, content):
    reply = wechat.send(content)
    assert reply is not None and reply["MsgType"] == "text" and reply["Content"]
    assert len(reply["Content"].encode()) <= 2048


@pytest.mark.parametrize("msg_type,fields", [
    ("image", {"PicUrl": "http://x/y.jpg", "MediaId": "m"}),
    ("video", {"MediaId": "m", "ThumbMediaId": "t"}),
    ("link", {"Title": "t", "Description": "d", "Url": "http://x"}),
    ("hologram", {"Foo": "bar"}),
])
def test_media_and_unknown_types_answered_politely(wechat, msg_type, fields):
    reply = wechat.send(msg_type=msg_type, **fields)
    assert "12328" in reply["Content"]


def test_unknown_event_is_success(wechat):
    assert wechat.event("some_future_event", "x") is None


def test_retry_of_answered_message_gets_the_same_answer(wechat, app):
    calls = []
    hook = app.extensions["qzbot.webhook"]
    original = hook.router.dispatch
    hook.router.dispatch = lambda msg, ctx: calls.append(1) or original(msg, ctx)
    first = wechat.send("公交卡丢了去哪补", msg_id=555)
    again = wechat.send("公交卡丢了去哪补", msg_id=555)
    assert first["Content"] == again["Content"] and len(calls) == 1
    other_user = wechat.send("公交卡丢了去哪补", msg_id=555, openid="oOTHERuser000000000000000001")
    assert other_user["Content"] == first["Content"] and len(calls) == 2  # key includes user


def test_retry_while_first_still_answering_does_not_run_twice(app, runtime):
    import threading

    runtime.settings = runtime.settings.replace(redis={"reply_wait_seconds": 0.3})
    hook = app.extensions["qzbot.webhook"]
    gate, calls = threading.Event(), []
    original = hook.router.dispatch

    def slow(msg, ctx):
        calls.append(1)
        gate.wait(5)
        return original(msg, ctx)

    hook.router.dispatch = slow
    wx1, wx2 = WeChat(app), WeChat(app)
    results = {}
    t = threading.Thread(target=lambda: results.setdefault("first", wx1.send("12328",
                                                                             msg_id=777)))
    t.start()
    while not calls:
        pass
    results["retry"] = wx2.send("12328", msg_id=777)  # waits 0.3 s, then `success`
    gate.set()
    t.join()
    assert len(calls) == 1
    assert results["retry"] is None and "12328" in results["first"]["Content"]
    assert wx2.send("12328", msg_id=777)["Content"] == results["first"]["Content"]


def test_overrun_answers_success_and_queues_customer_service_message(app, runtime):
    """A content change makes the next answer rebuild the index; a slow rebuild overruns."""
    import time

    from rq import Queue

    from bot.jobs import REPLIES_QUEUE
    from bot.store.queries import bump_content_revision

    runtime.settings = runtime.settings.replace(bot={"answer_budget_seconds": 0.2})
    hook = app.extensions["qzbot.webhook"]
    original = hook.search._build

    def slow_build(*args):
        time.sleep(0.6)
        return original(*args)

    hook.search._build = slow_build
    with runtime.sessions() as s:  # as `qzbot content import` does
        bump_content_revision(s)
        s.commit()
    assert WeChat(app).send("12328", msg_id=888) is None  # `success` within budget
    hook.executor.shutdown(wait=True)  # the late answer finishes and is queued
    jobs = Queue(REPLIES_QUEUE, connection=runtime.redis).jobs
    assert len(jobs) == 1 and jobs[0].args[0] == CITIZEN
    assert jobs[0].args[1][0].startswith("交通运输服务监督电话：12328")
    assert WeChat(app).send("12328", msg_id=888) is None  # the retry: `success`, not twice


def test_redis_down_still_answers(db_url, clock, caplog, make_app):
    from bot.redisconn import connect
    from bot.runtime import build_runtime
    from tests.conftest import load_pack, make_settings

    dead = connect("redis://127.0.0.1:1/0")  # nothing listens there
    rt = build_runtime(make_settings(db_url), redis_client=dead, clock=clock)
    load_pack(rt)
    caplog.set_level(logging.WARNING, logger="qzbot")
    application = make_app(runtime=rt)
    wx = WeChat(application)
    assert wx.text("公交卡丢了去哪补").startswith("公交IC卡挂失补办")
    assert "dedupe degraded" in caplog.text
    application.extensions["qzbot.webhook"].close()
    rt.close()


def test_fresh_index_answers_in_request_thread_stale_one_under_budget(app, runtime):
    """Common case inline; after a content change (rebuild pending) under the budget."""
    import threading

    from bot.store.queries import bump_content_revision

    hook = app.extensions["qzbot.webhook"]
    threads = []
    original = hook.router.dispatch
    hook.router.dispatch = lambda m, c: threads.append(threading.current_thread().name) or \
        original(m, c)
    wx = WeChat(app)
    assert wx.text("12328").startswith("交通运输服务监督电话")
    assert threads[-1] == threading.current_thread().name  # no thread hop
    with runtime.sessions() as s:
        bump_content_revision(s)
        s.commit()
    assert wx.text("12328").startswith("交通运输服务监督电话")
    assert threads[-1].startswith("answer")
    assert wx.event("some_event") is None and threads[-1] == threading.current_thread().name
