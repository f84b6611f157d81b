"""Issue 8 item 7: the answer path's round trips, and that going faster hid nothing.

One Redis round trip per message (replay guard, dedupe claim and the previous replies in
one script), no database round trip for an answer (the search snapshot), the XML fast path
giving what the parser gives, the WSGI fast path reading bodies as werkzeug does, and the
`qzbot ask` index store and choice context between runs.
"""

from __future__ import annotations

import io
import logging
import os
import random
import re
import secrets
import socket
import stat
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
from redis import connection as redis_connection
from sqlalchemy import event, select, update

from bot.clock import to_utc_naive
from bot.dedupe import PENDING, Claim, Deduper
from bot.errors import MalformedMessage, ReplayedRequest
from bot.redisconn import connect
from bot.store.models import Record
from bot.store.queries import bump_content_revision, visible_by_keys
from bot.wechat import messages
from bot.wechat.inbound import message_xml, signed_request
from handlers.search import service as service_module
from handlers.search.service import IndexStore, SearchService
from tests.conftest import NOW, SMALL_PACK, load_pack
from tests.wx import ACCOUNT, CITIZEN, WeChat

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# --- one Redis round trip per message ---------------------------------------------------------
def _count_redis(monkeypatch) -> list[tuple]:
    """Commands sent to Redis by the main thread, counted where every path ends: the
    connection (the webhook's script bypasses the client's command path)."""
    calls: list[tuple] = []
    original = redis_connection.AbstractConnection.send_command

    def counting(self, *args, **options):
        if threading.current_thread() is threading.main_thread():
            calls.append(args[:1])
        return original(self, *args, **options)

    monkeypatch.setattr(redis_connection.AbstractConnection, "send_command", counting)
    return calls


def test_one_redis_round_trip_per_message_and_the_reply_still_cached(app, monkeypatch):
    hook = app.extensions["qzbot.webhook"]
    hook.deduper.flush_delay = 60  # the writer thread stays out of the count
    wx = WeChat(app)
    wx.send("12328", msg_id=9100)  # loads the script into Redis (SCRIPT LOAD) if needed
    calls = _count_redis(monkeypatch)
    first = wx.send("12328", msg_id=9101)
    assert len(calls) == 1 and calls[0][0].upper() == "EVALSHA"
    answered = []
    original = hook.router.dispatch
    hook.router.dispatch = lambda m, c: answered.append(1) or original(m, c)
    wx.send("公交卡丢了去哪补", msg_id=9102)  # carries 9101's reply to Redis
    assert len(calls) == 2
    retry = wx.send("12328", msg_id=9101)  # answered from the cache, not by the handler
    assert retry == first and answered == [1]


def test_queued_reply_reaches_another_process_after_the_flush(redis_client):
    mine, other = Deduper(redis_client, 60), Deduper(redis_client, 60)
    assert mine.admit("1700000000", "n1", "msg:o:1", 300).claim is Claim.NEW
    mine.store("msg:o:1", "<xml>reply</xml>", 300)
    assert other.claim("msg:o:1").claim is Claim.BUSY  # queued here, not written yet
    assert mine.flush() == 1
    done = other.claim("msg:o:1")
    assert (done.claim, done.reply) == (Claim.DONE, "<xml>reply</xml>")
    assert redis_client.ttl(mine._key("msg:o:1")) > 60  # the replay window's TTL kept


def test_replay_refused_atomically_without_claiming_the_forged_message(redis_client):
    dd = Deduper(redis_client, 60)
    assert dd.admit("1700000000", "n1", "msg:o:1", 300).claim is Claim.NEW
    assert dd.admit("1700000000", "n1", "msg:o:1", 300).claim is Claim.BUSY  # a retry
    with pytest.raises(ReplayedRequest):
        dd.admit("1700000000", "n1", "msg:o:2", 300)  # the pair re-used for another body
    assert redis_client.get(dd._key("msg:o:2")) is None  # nothing claimed for it
    assert dd.claim("msg:o:2").claim is Claim.NEW
    assert redis_client.get(dd._key("msg:o:1")) == PENDING


def test_writer_thread_flushes_without_further_traffic(redis_client):
    dd = Deduper(redis_client, 60, flush_delay=0.01)
    dd.admit("1700000000", "n1", "msg:o:1", 300)
    dd.store("msg:o:1", "r", 300)
    deadline = threading.Event()
    for _ in range(200):
        if redis_client.get(dd._key("msg:o:1")) == b"\x01r":
            break
        deadline.wait(0.01)
    assert redis_client.get(dd._key("msg:o:1")) == b"\x01r"
    dd.close()


def test_gate_degrades_when_redis_is_down(caplog):
    dd = Deduper(connect("redis://127.0.0.1:1/0"), 60)
    dd.store("msg:o:0", "r")
    assert dd.admit("1700000000", "n1", "msg:o:1", 300).claim is Claim.DEGRADED
    assert "replay check degraded" in caplog.text and "1 stored repl" in caplog.text


def test_gate_script_runs_on_the_embedded_substitute():
    client = connect("")  # fakeredis: the script needs lupa (fakeredis[lua])
    dd = Deduper(client, 60)
    assert dd.admit("1700000000", "e1", "msg:embedded:1", 300).claim is Claim.NEW
    dd.store("msg:embedded:1", "ok", 300)
    assert dd.claim("msg:embedded:1").reply == "ok"
    with pytest.raises(ReplayedRequest):
        dd.admit("1700000000", "e1", "msg:embedded:2", 300)
    dd.close()


# --- no database round trip for an answer ------------------------------------------------------
def test_answer_runs_no_sql(app, runtime):
    hook = app.extensions["qzbot.webhook"]
    wx = WeChat(app)
    assert wx.text("12328").startswith("交通运输服务监督电话")  # warm: revision read
    hook.search.check_seconds = 3600  # no revision check is due during the next answers
    statements: list[str] = []

    def seen(conn, cursor, sql, *args):
        if threading.current_thread() is threading.main_thread():
            statements.append(sql)

    event.listen(runtime.engine, "before_cursor_execute", seen)
    try:
        assert wx.text("公交卡丢了去哪补").startswith("公交IC卡挂失补办")
        assert wx.text("12328").startswith("交通运输服务监督电话")
    finally:
        event.remove(runtime.engine, "before_cursor_execute", seen)
    assert statements == []


def _service(runtime) -> SearchService:
    service = SearchService(check_seconds=0)
    with runtime.sessions() as session:
        service.index(session, runtime.now())
    return service


def _change(runtime, key: str, **values) -> None:
    kind, rid = key.split(":", 1)
    with runtime.sessions() as session:
        session.execute(update(Record).where(Record.kind == kind, Record.rid == rid)
                        .values(**values))
        bump_content_revision(session)  # as every content change does
        session.commit()


def _agrees_with_data_layer(runtime, service: SearchService, keys: list[str], now) -> dict:
    with runtime.sessions() as session:
        mine = service.visible(session, keys, now)
        assert sorted(mine) == sorted(visible_by_keys(session, keys, now))
    return mine


def test_snapshot_hides_a_withdrawn_record(runtime):
    load_pack(runtime)
    service = _service(runtime)
    key = "guide:g-ic-card"
    with runtime.sessions() as session:
        assert service.find(session, "公交IC卡挂失补办", runtime.now()).records[0].key == key
    _change(runtime, key, public=False)
    with runtime.sessions() as session:
        found = service.find(session, "公交IC卡挂失补办", runtime.now())
    assert key not in [r.key for r in found.records]
    assert _agrees_with_data_layer(runtime, service, [key], runtime.now()) == {}


def test_snapshot_hides_a_notice_at_its_ends_at_without_rebuilding(runtime, clock):
    load_pack(runtime)
    key, ends = "notice:n-ferry", NOW + timedelta(hours=1)
    _change(runtime, key, ends_at=to_utc_naive(ends))
    service = _service(runtime)
    with runtime.sessions() as session:
        index = service.index(session, NOW)
        assert service.find(session, "石井金门航线停航", NOW).records[0].key == key
    keys = [key, "guide:g-ic-card", "notice:n-old"]
    for at, shown in ((NOW, True), (ends - timedelta(microseconds=1), True), (ends, False),
                      (ends + timedelta(days=1), False)):
        assert (key in _agrees_with_data_layer(runtime, service, keys, at)) is shown, at
        with runtime.sessions() as session:
            found = [r.key for r in service.find(session, "石井金门航线停航", at).records]
        assert (key in found) is shown, at
    with runtime.sessions() as session:
        assert service.index(session, ends) is index  # re-read the records, same index


def test_snapshot_follows_a_content_revision_bump(runtime):
    load_pack(runtime)
    service = _service(runtime)
    with runtime.sessions() as session:
        before = service.find(session, "打车忘拿发票", runtime.now())
    assert before.records[0].data["answer"].startswith("可拨打12328")
    _change(runtime, "faq:f-taxi-receipt",
            data={"id": "f-taxi-receipt", "question": "打车忘拿发票怎么办",
                  "answer": "新答复：请联系出租车企业补开发票。"})
    with runtime.sessions() as session:
        after = service.find(session, "打车忘拿发票", runtime.now())
    assert after.records[0].data["answer"].startswith("新答复")


def test_snapshot_waits_for_the_revision_check_interval(runtime):
    """The documented window: a change is seen at the next check (`check_seconds`)."""
    load_pack(runtime)
    service = _service(runtime)
    service.check_seconds = 3600
    key = "guide:g-ic-card"
    _change(runtime, key, public=False)
    with runtime.sessions() as session:
        assert key in service.visible(session, [key], runtime.now())  # not checked yet
    service.check_seconds = 0
    assert _agrees_with_data_layer(runtime, service, [key], runtime.now()) == {}


# --- the XML fast path ------------------------------------------------------------------------
CONTENTS = ["你好", "x]", "]", "a\r\nb\rc", "  ", "", "<&>\"'", "\u3000全角", "a]]>b",
            "emoji 🚌", "tab\there"]
ODD_DOCS = ["<xml><A>1</A><A>2</A></xml>", "<xml><A><B>1</B></A></xml>", "<xml></xml>",
            " \n<xml>\n<A>x</A>\n</xml>\n", "<xml><A/></xml>", "<xml><A>a&amp;b</A></xml>",
            "<?xml version='1.0'?><xml><A>1</A></xml>", "<xml><A><![CDATA[]]></A></xml>",
            "<xml><A><![CDATA[x]]]></A></xml>", "<xml><A a='1'>x</A></xml>",
            "<xml><A><![CDATA[a]]><![CDATA[b]]></A></xml>", "<xml><!-- c --><A>x</A></xml>"]


def _parser_dict(doc: str) -> object:
    value = messages._element_to_value(ET.fromstring(doc), 0, messages.DEFAULT_MAX_DEPTH)
    return value if isinstance(value, dict) else {}


@pytest.mark.parametrize("doc", [message_xml(ACCOUNT, CITIZEN, "text", msg_id=5, Content=c)
                                 for c in CONTENTS] + ODD_DOCS)
def test_fast_path_gives_what_the_parser_gives(doc):
    assert messages.parse_xml_dict(doc) == _parser_dict(doc)


@pytest.mark.parametrize("doc", [
    "<xml><A>x</B></xml>", "<xml><A>x</A>", "<xml><A>x]]>y</A></xml>",
    '<!DOCTYPE xml [<!ENTITY e "boom">]><xml><A>&e;</A></xml>',
    '<?xml version="1.0"?><!DOCTYPE xml SYSTEM "http://x/y.dtd"><xml><A>1</A></xml>',
    "<xml><A>&e;</A></xml>",
])
def test_fast_path_never_accepts_what_the_parser_refuses(doc):
    assert messages._flat_dict(doc) is None
    with pytest.raises(MalformedMessage):
        messages.parse_xml_dict(doc)


# --- the WSGI fast path -------------------------------------------------------------------------
def _environ(app, body: bytes, **extra) -> dict:
    wx = WeChat(app)
    args, _ = signed_request("<xml/>", wx.token, wx.crypto, timestamp=wx.now())
    query = "&".join(f"{k}={v}" for k, v in args.items())
    return {"REQUEST_METHOD": "POST", "PATH_INFO": "/wechat", "QUERY_STRING": query,
            "SERVER_NAME": "t", "SERVER_PORT": "80", "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr,
            "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1", **extra}


def _call(app, environ: dict) -> tuple[str, bytes]:
    seen = {}
    body = b"".join(app(environ, lambda status, headers, exc=None: seen.update(s=status)))
    return seen["s"], body


def test_fast_post_reads_bodies_as_werkzeug_does(app):
    limit = app.extensions["qzbot.runtime"].settings.wechat.max_body_bytes
    big = b"x" * (limit + 10)
    assert _call(app, _environ(app, big, CONTENT_LENGTH=str(len(big))))[0].startswith("413")
    chunked = _environ(app, big, **{"wsgi.input_terminated": True})
    assert _call(app, chunked)[0].startswith("413")  # no length: read to the limit, refused
    status, body = _call(app, _environ(app, b"<xml>never read</xml>"))  # no length, not ended
    assert status.startswith("400") and body == b"malformed_xml"  # read as an empty body


def test_get_still_goes_through_flask(app):
    status, _ = _call(app, dict(_environ(app, b""), REQUEST_METHOD="GET"))
    assert status.startswith("403")  # the handshake view answered (bad signature)


# --- qzbot ask between runs ---------------------------------------------------------------------
def test_index_store_round_trip_signature_and_mode(runtime, tmp_path, caplog):
    load_pack(runtime)
    service = _service(runtime)
    store = IndexStore(tmp_path / "cache", "secret")
    with runtime.sessions() as session:
        snap = service.snapshot(session, runtime.now())
    name = store.name(snap, [["公交卡", "一卡通"]])
    store.save(name, snap.index)
    path = tmp_path / "cache" / name
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    loaded = store.load(name)
    assert loaded.search("12328").hits == snap.index.search("12328").hits
    assert IndexStore(tmp_path / "cache", "another key").load(name) is None  # not ours
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    assert store.load(name) is None and "bad signature" in caplog.text


def _ask(*args: str, db_url: str) -> str:
    env = dict(os.environ, QZBOT_CONFIG=os.path.join(ROOT, "config.example.toml"),
               QZBOT_DATABASE__URL=db_url, QZBOT_NOW="2026-11-27T10:00:00")
    done = subprocess.run([sys.executable, "-c", "from bot.cli import main; main()", *args],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_ask_in_process_follows_a_list_and_reuses_the_index(tmp_path):
    db_url = f"sqlite:///{tmp_path}/ask.sqlite3"
    _ask("db", "upgrade", db_url=db_url)
    _ask("content", "import", SMALL_PACK, db_url=db_url)
    engine = service_module.engine_version()
    listing = _ask("ask", "交通", db_url=db_url)
    cache = tmp_path / "cache"
    built = {p.name: p.stat().st_mtime_ns for p in cache.glob("index-*.pickle")}
    assert len(built) == 1
    items = [m.group(1) for m in re.finditer(r"(?m)^\s*2[.．、]\s*(.+)$", listing)]
    assert items, listing
    second = items[0].strip()
    opened = _ask("ask", "2", db_url=db_url)
    assert opened.splitlines()[0].strip() == second  # the list of the previous run
    service_module._engine_version = None  # re-read: someone may be editing the engine
    if service_module.engine_version() == engine:  # the second run loaded, wrote nothing
        assert {p.name: p.stat().st_mtime_ns for p in cache.glob("index-*.pickle")} == built
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in cache.iterdir())
    other = _ask("ask", "--openid", "oSomeoneElse000000000000001", "2", db_url=db_url)
    assert second not in other  # the pending list is per citizen


@pytest.fixture(autouse=True)
def _quiet_search_logs(caplog):
    caplog.set_level(logging.WARNING, logger="qzbot")


def test_snapshot_records_are_detached(runtime):
    load_pack(runtime)
    service = _service(runtime)
    with runtime.sessions() as session:
        record = service.visible(session, ["guide:g-ic-card"], runtime.now())["guide:g-ic-card"]
        session.execute(select(Record.id)).all()
        session.commit()
    assert record.title == "公交IC卡挂失补办"  # usable after any session's commit/close



# --- start-up of `qzbot ask` and of the web workers ---------------------------------------------
def test_packed_freq_answers_like_the_dict():
    freq = {"公交": 120, "公交卡": 30, "公": 0, "交通": 88, "g228": 3, "a\tb": 1, "x": 2}
    packed = service_module.PackedFreq(*service_module.PackedFreq.pack(freq))
    for word in [*freq, "公交车", "卡", "", "公交卡丢", "a", "b"]:
        assert (word in packed) == (word in freq), word
        assert packed.get(word) == freq.get(word), word
        assert packed.get(word, -1) == freq.get(word, -1), word
    assert packed["公交卡"] == 30 and sorted(packed) == sorted(freq) and len(packed) == 7
    with pytest.raises(KeyError):
        packed["公交车"]  # noqa: B018 - the lookup is the test
    packed["公交车"] = 5  # jieba's add_word writes; the overlay wins over packed entries
    packed["公交"] = 7
    assert packed["公交车"] == 5 and packed.get("公交") == 7 and len(packed) == 8


def test_stored_index_cuts_and_ranks_like_the_built_one(runtime, tmp_path):
    load_pack(runtime)
    service = _service(runtime)
    with runtime.sessions() as session:
        built = service.snapshot(session, runtime.now()).index
    store = IndexStore(tmp_path / "cache", "secret")
    store.save("index-x.pickle", built)
    loaded = store.load("index-x.pickle")
    assert isinstance(loaded._segmenter.tk.FREQ, service_module.PackedFreq)  # the lean form
    for question in ("公交卡丢了去哪补", "出租车多收钱怎么投诉", "渡轮停航", "明天天气怎么样",
                     "12328", "g324国道施工"):
        got, want = loaded.search(question), built.search(question)
        assert (got.hits, got.confident, got.transport) == \
            (want.hits, want.confident, want.transport), question
    store.save("index-y.pickle", loaded)  # a loaded index saves (and loads) again
    assert store.load("index-y.pickle").search("渡轮停航").hits == built.search("渡轮停航").hits


def _python(code: str, **env: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=120, env=dict(os.environ, **env))
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_jieba_loads_without_pkg_resources_and_leaves_it_importable():
    out = _python("import sys\n"
                  "from handlers.search import text\n"
                  "jieba = text.load_jieba()\n"
                  "print('pkg_resources' in sys.modules)\n"
                  "print(jieba.__name__ == 'jieba' and text._base_tokenizer().FREQ['公交'] > 0)\n"
                  "import pkg_resources\n"  # hidden only while jieba was imported
                  "print(pkg_resources.__name__)\n")
    assert out.split() == ["False", "True", "pkg_resources"]


def test_schema_check_reads_the_migrations_without_alembic(tmp_path):
    from bot.errors import SchemaOutdated
    from bot.store.db import declared_head, make_engine, require_current_schema, schema_status
    from bot.store.db import upgrade as db_upgrade

    url = f"sqlite:///{tmp_path}/schema.sqlite3"
    engine = make_engine(url)
    db_upgrade(engine, "0002")
    with pytest.raises(SchemaOutdated):  # behind: still refused
        require_current_schema(engine)
    db_upgrade(engine)
    assert declared_head() == schema_status(engine)[1]  # the files say what Alembic says
    out = _python("import sys\nfrom bot.store.db import make_engine, require_current_schema\n"
                  f"require_current_schema(make_engine({url!r}))\n"
                  "print(any(m.startswith('alembic') for m in sys.modules))\n")
    assert out.strip() == "False"


def test_production_entry_and_bench_factories_settle_the_heap(tmp_path):
    url = f"sqlite:///{tmp_path}/wsgi.sqlite3"
    _ask("db", "upgrade", db_url=url)
    out = _python("import gc\nfrom bot.wsgi import build_app\n"
                  "build_app(check_secrets=False)\nprint(gc.get_freeze_count() > 0)\n"
                  "gc.unfreeze()\nfrom bench import webhook_apps\n"
                  "webhook_apps.echo()\nprint(gc.get_freeze_count() > 0)\n",
                  QZBOT_CONFIG=os.path.join(ROOT, "config.example.toml"),
                  QZBOT_DATABASE__URL=url, QZBOT_REDIS__URL="")
    assert out.split() == ["True", "True"]


def test_cli_turns_the_collector_back_on_except_for_ask(tmp_path):
    import gc

    from click.testing import CliRunner

    from bot.cli import cli

    env = {"QZBOT_CONFIG": os.path.join(ROOT, "config.example.toml"),
           "QZBOT_DATABASE__URL": f"sqlite:///{tmp_path}/gc.sqlite3"}
    try:
        gc.disable()  # as main() leaves it
        CliRunner().invoke(cli, ["db", "--help"], env=env)
        assert gc.isenabled()
        gc.disable()
        CliRunner().invoke(cli, ["ask", "--help"], env=env)
        assert not gc.isenabled()  # one message, then the process ends
    finally:
        gc.enable()


# --- the dedupe script's lean path (bot/redisconn.LeanScript) ------------------------------------
def test_lean_script_loads_an_unknown_script_and_retries_a_dropped_connection(redis_client):
    from bot.redisconn import LeanScript

    script = LeanScript(redis_client, f"return '{secrets.token_hex(8)}'")  # never loaded
    assert script([], []) == script.script.script.split("'")[1].encode()  # NOSCRIPT: sent
    conn = script._local.conn
    conn._sock.shutdown(socket.SHUT_RDWR)  # the server side goes away under us
    assert script([], []) == script.script.script.split("'")[1].encode()  # one retry
    assert script._local.conn is conn  # reconnected, same thread's connection
    script.close()


def test_lean_script_follows_a_new_pool_and_fails_fast_while_marked_down(redis_client):
    from bot.health import Breaker
    from bot.redisconn import guarded

    breaker = Breaker("redis", 60)
    client = guarded(connect("redis://127.0.0.1:1/0"), breaker)
    dd = Deduper(client, 60)
    assert dd.admit("1700000000", "p1", "msg:o:1", 300).claim is Claim.DEGRADED
    assert not breaker.up  # the refused connection reached the breaker
    client.connection_pool = redis_client.connection_pool
    assert dd.admit("1700000000", "p2", "msg:o:2", 300).claim is Claim.DEGRADED  # skipped
    breaker.close()
    fresh = Breaker("redis", 60)
    client.breaker = fresh
    assert dd.admit("1700000000", "p3", "msg:o:3", 300).claim is Claim.NEW  # the new pool
    assert redis_client.get(dd._key("msg:o:3")) == PENDING
    fresh.close()
    dd.close()


def test_query_args_read_the_query_as_parse_qsl_does():
    from urllib.parse import parse_qsl

    from bot.webhook import query_args

    rng = random.Random(8)
    cases = ["", "a", "a=", "=b", "a=b=c", "a=1&a=2", "&&a=1&", "a;b=1", "x==", "&=&",
             "a=%E4%B8%AD&b=x+y", "a=中", "signature=ab&timestamp=1&nonce=9&openid=oX_-1"]
    cases += ["".join(rng.choice("ab=&;%+2E中_") for _ in range(rng.randrange(12)))
              for _ in range(2000)]
    for query in cases:
        want: dict[str, str] = {}
        for name, value in parse_qsl(query, keep_blank_values=True):
            want.setdefault(name, value)
        assert query_args(query) == want, query


def test_access_log_scrub_redacts_the_query_once_with_the_same_result():
    from bot.logs import redact, scrub_environ

    rng = random.Random(10)
    parts = ["openid=", "oBench0000000000000000000001", "&", "?", "o", "x", "oh-0123456789ab"]
    for _ in range(3000):
        query = "".join(rng.choice(parts) for _ in range(rng.randrange(8)))
        path = rng.choice(["/wechat", "/o", "/wechat/openid=oBench0000000000000000000001", ""])
        environ = {"QUERY_STRING": query, "RAW_URI": f"{path}?{query}",
                   "REQUEST_URI": f"{path}?{query}"}
        scrub_environ(environ)
        assert environ == {"QUERY_STRING": redact(query), "RAW_URI": redact(f"{path}?{query}"),
                           "REQUEST_URI": redact(f"{path}?{query}")}, (path, query)
    environ = {"QUERY_STRING": "openid=oBench0000000000000000000001&nonce=1",
               "RAW_URI": "/wechat?openid=oBench0000000000000000000001&nonce=1"}
    scrub_environ(environ)
    assert "oBench" not in "".join(environ.values())  # the shortcut still redacts
