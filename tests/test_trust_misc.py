"""Issue 6, hostile tests: published secrets (6), consent races (8b, 8c), content import (9),
personal data in logs (10) and export of non-public records (3).

Real Redis and both databases wherever a store is involved; the CLI runs as a subprocess.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
import requests

from bot.secrets_check import CHECKED, PUBLISHED
from tests.conftest import REDIS_TEST_URL
from tests.test_cli import ROOT, qzbot
from tests.test_consent import (
    BASE_URL,
    GOV,
    TEMPLATES,
    TRAVEL,
    available,
    consent_xml,
    consents,
    good_args,
    popup,
    post,
    redirect,
    topics_of,
)
from tests.wx import CITIZEN

# consent templates and the public base URL (as tests/test_consent.py); harmless elsewhere
SETTINGS_OVERRIDES = {"push": {"templates": TEMPLATES, "public_base_url": BASE_URL}}

EXAMPLE = Path(ROOT) / "config.example.toml"
REAL = {"QZBOT_WECHAT__TOKEN": "prod-token-4f9a1c", "QZBOT_WECHAT__APP_SECRET": "prod-app-secret",
        "QZBOT_WECHAT__ENCODING_AES_KEY": "Prod0encoding0aes0key0with043characters0xyz",
        "QZBOT_SECURITY__SECRET_KEY": "a-production-secret-key-of-48-bytes-0123456789ab"}


@pytest.fixture
def empty_db(tmp_path):
    return f"sqlite:///{tmp_path}/cli.sqlite3"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- 6. published demo secrets -------------------------------------------------------------


def test_published_list_covers_every_secret_in_config_example():
    doc = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    for section, key in CHECKED:
        value = doc.get(section, {}).get(key, "")
        assert not value or value in PUBLISHED, f"[{section}] {key} of config.example.toml"


@pytest.mark.parametrize("command", [("serve", "--port", "1"), ("worker", "--burst")])
def test_serve_and_worker_refuse_the_shipped_demo_secrets(empty_db, command):
    result = qzbot(*command, db_url=empty_db, env={"QZBOT_REDIS__URL": REDIS_TEST_URL})
    assert result.returncode == 2, result.stderr
    for key in ("[wechat] token", "[wechat] encoding_aes_key", "[wechat] app_secret",
                "[security] secret_key"):
        assert key in result.stderr
    assert "Traceback" not in result.stderr
    for value in ("qzbotdemotoken", "demo-app-secret-not-real", "demo-secret-key-change-me"):
        assert value not in result.stderr + result.stdout  # named, never echoed


@pytest.mark.parametrize("override", [
    {"QZBOT_WECHAT__TOKEN": "spamtest"},  # the WeChat documentation sample
    {"QZBOT_WECHAT__ENCODING_AES_KEY": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"},
    {"QZBOT_WECHAT__PREVIOUS_ENCODING_AES_KEY": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"},
    {"QZBOT_SECURITY__SECRET_KEY": "short-but-unpublished-key"},  # < 32 bytes
])
def test_one_published_or_weak_secret_is_enough_to_refuse(empty_db, override):
    result = qzbot("worker", "--burst", db_url=empty_db,
                   env={**REAL, "QZBOT_REDIS__URL": REDIS_TEST_URL, **override})
    assert result.returncode == 2, result.stderr
    assert len([line for line in result.stderr.splitlines() if line.startswith("  - [")]) == 1


def test_worker_with_real_secrets_starts(empty_db, redis_client):
    assert qzbot("db", "upgrade", db_url=empty_db).returncode == 0
    result = qzbot("worker", "--burst", db_url=empty_db,
                   env={**REAL, "QZBOT_REDIS__URL": REDIS_TEST_URL})
    assert result.returncode == 0, result.stderr


def test_demo_serve_still_runs_on_the_example_config(tmp_path):
    port, sim = free_port(), free_port()
    env = dict(os.environ, QZBOT_CONFIG=str(EXAMPLE), QZBOT_NOW="2026-11-27T10:00:00",
               QZBOT_DATABASE__URL=f"sqlite:///{tmp_path}/demo.sqlite3",
               QZBOT_WECHAT__API_BASE_URL=f"http://127.0.0.1:{sim}")
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, "-c", "from bot.cli import main; main()", "serve",
                             "--demo", "--port", str(port)], env=env, cwd=ROOT, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        status = None
        deadline = time.monotonic() + 60
        while status != 200 and proc.poll() is None and time.monotonic() < deadline:
            try:
                status = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code
            except requests.ConnectionError:
                time.sleep(0.2)
        assert status == 200, (tmp_path / "serve.log").read_text()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


# --- 9. content import hardening ---------------------------------------------------------


def _import(rt, doc, prune=False, force=False):
    from bot.content.pack import import_pack
    from bot.store.db import transaction

    with transaction(rt.sessions) as session:
        return import_pack(session, doc, source="hostile.toml", now=rt.now(),
                           districts=rt.settings.bot.districts, prune=prune, force=force)


def _records(rt) -> dict[str, int]:
    from sqlalchemy import func, select

    from bot.store.models import Record

    with rt.sessions() as session:
        return dict(session.execute(select(Record.kind, func.count()).group_by(Record.kind)).all())


def _small():
    from bot.content.pack import read_pack
    from tests.conftest import SMALL_PACK

    return read_pack(SMALL_PACK)


HOSTILE_URLS = ["javascript:alert(document.cookie)", "JavaScript:alert(1)", " javascript:x",
                "data:text/html,<script>alert(1)</script>", "weixin://dl/business", "//evil.cn/x",
                "http://", "https://example.gov.cn/a b", "vbscript:msgbox(1)"]


def test_import_refuses_non_http_urls_everywhere(runtime):
    from bot.errors import PackInvalid

    doc = _small()
    doc["guide"][0]["online_url"] = HOSTILE_URLS[0]
    doc["policy"][0]["url"] = HOSTILE_URLS[1]
    doc["policy"][0]["interpretation"]["url"] = HOSTILE_URLS[3]
    doc["notice"][0]["url"] = HOSTILE_URLS[4]
    doc["project"][0]["url"] = HOSTILE_URLS[5]
    doc["disclosure"][0]["url"] = HOSTILE_URLS[7]
    with pytest.raises(PackInvalid) as err:
        _import(runtime, doc)
    problems = err.value.problems
    for where in ("guide[0]", "policy[0]", "notice[0]", "project[0]", "disclosure[0]"):
        assert any(p.startswith(where) and "field '" in p and "id=" in p for p in problems), where
    assert any("interpretation" in p and "url" in p for p in problems)
    assert len(problems) == 6 and _records(runtime) == {}  # every problem, nothing imported


@pytest.mark.parametrize("url", HOSTILE_URLS)
def test_each_hostile_url_is_refused(url):
    from bot.content.schema import url_problem

    assert url_problem(url)
    assert url_problem("https://jtj.quanzhou.gov.cn/zwgk/a.html?x=1#y") is None


@pytest.mark.parametrize("field, value", [
    ("answer", '请<a href="http://phish.example/pay">点此</a>缴费'),
    ("question", "<script>alert(1)</script>"), ("answer", "<img src=x onerror=alert(1)>"),
    ("answer", "结束 </p>"), ("answer", "<!-- hidden -->")])
def test_import_refuses_html_in_text_fields(runtime, field, value):
    from bot.errors import PackInvalid

    doc = _small()
    doc["faq"][0][field] = value
    doc["guide"][0]["steps"].append("<b>加粗</b>")
    doc["policy"][0]["interpretation"]["summary"] = "<a href='http://x.cn'>解读</a>"
    with pytest.raises(PackInvalid) as err:
        _import(runtime, doc)
    text = "\n".join(err.value.problems)
    assert f"faq[0] id='{doc['faq'][0]['id']}': field '{field}' must be plain text" in text
    assert "field 'steps' must be plain text" in text and "interpretation" in text
    assert _records(runtime) == {}


def test_plain_angle_brackets_in_text_still_import(runtime):
    doc = _small()
    doc["faq"][0]["answer"] = "车龄 < 8 年且里程>10万公里的车辆需年检"
    assert _import(runtime, doc).created == 12


def test_overlong_id_refused_on_every_database(runtime):
    from bot.errors import PackInvalid

    doc = _small()
    doc["hotline"][0]["id"] = "h" * 129
    doc["faq"][0]["id"] = "f" * 128  # exactly the column: fine
    with pytest.raises(PackInvalid) as err:
        _import(runtime, doc)
    assert err.value.problems == [
        f"hotline[0] id='{'h' * 48}…': field 'id' is 129 characters long; at most 128"]
    assert _records(runtime) == {}
    del doc["hotline"]
    assert _import(runtime, doc).created == 11


def test_overlong_district_from_settings_refused(runtime):
    from bot.content.pack import import_pack
    from bot.errors import PackInvalid
    from bot.store.db import transaction

    long_district = "泉州" * 17  # 34 characters, over records.district (32)
    doc = _small()
    doc["project"][0]["district"] = long_district
    with pytest.raises(PackInvalid) as err, transaction(runtime.sessions) as session:
        import_pack(session, doc, source="t.toml", now=runtime.now(),
                    districts=(*runtime.settings.bot.districts, long_district))
    assert "field 'district' is 34 characters long; at most 32" in err.value.problems[0]


def test_prune_with_an_empty_kind_needs_force(runtime):
    from bot.errors import PackInvalid

    _import(runtime, _small())
    before = _records(runtime)
    assert before["guide"] == 1 and before["notice"] == 2
    emptied = {"guide": [], "notice": [], "faq": _small()["faq"]}
    with pytest.raises(PackInvalid) as err:
        _import(runtime, emptied, prune=True)
    assert sorted(err.value.problems) == [
        "guide: listed with no records, so --prune would delete all 1 existing guide "
        "record(s); add --force if intended",
        "notice: listed with no records, so --prune would delete all 2 existing notice "
        "record(s); add --force if intended"]
    assert _records(runtime) == before  # nothing deleted
    assert _import(runtime, emptied).pruned == 0  # without --prune an empty kind is harmless
    report = _import(runtime, emptied, prune=True, force=True)
    assert report.pruned == 3 and "guide" not in _records(runtime)


def test_cli_prune_force_flag(tmp_path, empty_db):
    from tests.conftest import SMALL_PACK

    qzbot("db", "upgrade", db_url=empty_db)
    assert qzbot("content", "import", SMALL_PACK, db_url=empty_db).returncode == 0
    empty = tmp_path / "empty.toml"
    empty.write_text("faq = []\n", encoding="utf-8")
    refused = qzbot("content", "import", str(empty), "--prune", db_url=empty_db)
    assert refused.returncode == 4 and "--force" in refused.stderr
    assert "nothing imported" in refused.stderr
    forced = qzbot("content", "import", str(empty), "--prune", "--force", db_url=empty_db)
    assert forced.returncode == 0 and "pruned 1" in forced.stdout


# --- 3 (export part). non-public records leave only with a staff login -------------------


def test_plain_export_has_only_public_records(runtime):
    from bot.content.pack import export_pack

    _import(runtime, _small())
    with runtime.sessions() as session:
        plain = tomllib.loads(export_pack(session))
        full = tomllib.loads(export_pack(session, include_non_public=True))
    assert "p-secret" not in str(plain) and "依申请公开" not in str(plain)
    assert "不予公开" not in str(plain)
    assert {e["disclosure"] for k in ("policy", "disclosure") for e in plain[k]} == {"主动公开"}
    assert len(plain["synonym"]) == 2 and "p-secret" in str(full)


def test_cli_export_all_needs_an_authenticated_staff_account(tmp_path, empty_db):
    from tests.conftest import SMALL_PACK

    qzbot("db", "upgrade", db_url=empty_db)
    qzbot("content", "import", SMALL_PACK, db_url=empty_db)
    plain = qzbot("content", "export", db_url=empty_db)
    assert plain.returncode == 0 and "p-secret" not in plain.stdout
    assert "不予公开" not in plain.stdout and "依申请公开" not in plain.stdout
    anonymous = qzbot("content", "export", "--all", db_url=empty_db)
    assert anonymous.returncode != 0 and "p-secret" not in anonymous.stdout
    admin = qzbot("staff", "add", "root", "--role", "admin", db_url=empty_db)
    key = admin.stdout.strip().splitlines()[-1]
    wrong = qzbot("content", "export", "--all", "--as", "root", db_url=empty_db,
                  env={"QZBOT_STAFF_KEY": "not-the-key"})
    assert wrong.returncode == 1 and "p-secret" not in wrong.stdout
    out = tmp_path / "all.toml"
    full = qzbot("content", "export", "--all", "--as", "root", "-o", str(out), db_url=empty_db,
                 env={"QZBOT_STAFF_KEY": key})
    assert full.returncode == 0, full.stderr
    assert "p-secret" in out.read_text(encoding="utf-8")
    from sqlalchemy import create_engine, select

    from bot.store.models import AuditEntry

    engine = create_engine(empty_db)
    with engine.connect() as conn:  # the full export is audited, the refused ones are not
        rows = conn.execute(select(AuditEntry.actor).where(
            AuditEntry.action == "content_export_all")).all()
    engine.dispose()
    assert rows == [("root",)]


# --- 8b. two consent events of one citizen in the same second ------------------------------

SECOND = 1_764_208_800  # one CreateTime shared by every event below


def test_two_popups_in_the_same_second_are_both_applied(wechat, runtime):
    post(wechat, popup((GOV, "accept"), create_time=SECOND))
    post(wechat, popup((TRAVEL, "accept"), create_time=SECOND))
    assert len(available(runtime, GOV)) == 1 and len(available(runtime, TRAVEL)) == 1


def test_two_one_time_acceptances_in_the_same_second_give_two_credits(wechat, runtime):
    post(wechat, popup((GOV, "accept"), create_time=SECOND))
    post(wechat, popup((GOV, "accept"), (TRAVEL, "reject"), create_time=SECOND))
    assert len(available(runtime, GOV)) == 2


def test_accept_then_sent_refusal_in_the_same_second(wechat, runtime):
    post(wechat, popup((GOV, "accept"), create_time=SECOND))
    post(wechat, consent_xml("subscribe_msg_sent_event", "SubscribeMsgSentEvent",
                             [{"TemplateId": GOV, "MsgID": "1", "ErrorCode": "43101",
                               "ErrorStatus": "failed:user refuse"}], create_time=SECOND))
    post(wechat, popup((TRAVEL, "accept"), create_time=SECOND))  # a third, later popup
    assert available(runtime, GOV) == [] and len(available(runtime, TRAVEL)) == 1


def test_a_real_retry_of_the_same_event_still_counts_once(wechat, runtime):
    xml = popup((GOV, "accept"), create_time=SECOND)
    for _ in range(3):  # WeChat's three deliveries of one event
        post(wechat, xml)
    assert len(available(runtime, GOV)) == 1
    runtime.redis.flushdb()  # even past the dedupe window the ledger adds nothing
    post(wechat, xml)
    assert len(available(runtime, GOV)) == 1


# --- 8c. a one-time link's confirm cannot become a cancel, nor a cancel a confirm ----------


def test_captured_cancel_cannot_be_replayed_as_a_confirm(app, runtime):
    cancel = good_args(runtime, link_scene="7", action="cancel")
    assert redirect(app, **cancel).status_code == 200  # the citizen said no
    forged = redirect(app, **{**cancel, "action": "confirm"})
    assert forged.status_code == 403 and "订阅成功" not in forged.get_data(as_text=True)
    assert available(runtime, GOV) == [] and topics_of(runtime) == []


def test_captured_confirm_cannot_be_replayed_as_a_cancel(app, runtime, wechat):
    confirm = good_args(runtime, link_scene="8")
    assert redirect(app, **confirm).status_code == 200
    post(wechat, popup((TRAVEL, "accept")))  # long-term consent given later
    forged = redirect(app, **{**confirm, "action": "cancel"})
    assert forged.status_code == 403
    assert len(available(runtime, GOV)) == 1 and len(available(runtime, TRAVEL)) == 1


def test_replayed_cancel_does_not_revoke_consent_given_later(app, runtime):
    cancel = good_args(runtime, link_scene="9", action="cancel")
    assert redirect(app, **cancel).status_code == 200
    assert redirect(app, **good_args(runtime, link_scene="10")).status_code == 200
    again = redirect(app, **cancel)  # a replay of the captured cancel URL
    assert again.status_code == 200 and len(available(runtime, GOV)) == 1


def test_replayed_confirm_does_not_resubscribe_after_unsubscribe(app, runtime, wechat):
    confirm = good_args(runtime, link_scene="11")
    assert redirect(app, **confirm).status_code == 200
    wechat.text("退订 政务公开")
    assert topics_of(runtime) == []
    assert redirect(app, **confirm).status_code == 200
    assert topics_of(runtime) == [] and len(available(runtime, GOV)) == 1


def test_new_links_skip_scenes_decided_by_a_cancel(runtime):
    from push.consent import decide_redirect, redirect_scene

    with runtime.sessions() as session:
        assert decide_redirect(session, CITIZEN, GOV, "1", "cancel", runtime.now())
        assert not decide_redirect(session, CITIZEN, GOV, "1", "confirm", runtime.now())
        assert redirect_scene(session, CITIZEN, GOV) == "2"
        session.commit()
    assert [(c.scene, c.status) for c in consents(runtime)] == [("1", "revoked")]


# --- 10. personal data in logs ---------------------------------------------------------------

SECRET_TEXT = "我的身份证号350500199001011234丢了怎么办"
OTHER_CITIZEN = "oQZothercitizen000000000002x"
OFFSET_TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4} "


def test_worker_logs_no_openid_and_no_text(runtime, tmp_path, db_url):
    import re

    from push import followups as jobs
    from tests.conftest import APP_ID
    from tests.pushkit import worker_env
    from wechatsim import SimConfig, create_simulator, start_in_thread

    running = start_in_thread(create_simulator(SimConfig(
        app_id=APP_ID, app_secret="test-secret", followers={CITIZEN})))
    try:
        jobs.enqueue_customer_texts(runtime, CITIZEN, [SECRET_TEXT])  # sent
        jobs.enqueue_customer_texts(runtime, OTHER_CITIZEN, [SECRET_TEXT])  # 43004: refused
        env = {**worker_env(db_url, running.url), "QZBOT_LOG__LEVEL": "DEBUG"}
        done = subprocess.run([str(Path(sys.executable).parent / "qzbot"), "worker", "--burst"],
                              env=env, capture_output=True, text=True, timeout=120)
    finally:
        running.stop()
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "customer-service texts sent oh=" in out and "not sent oh=" in out  # it did run
    assert f"customer-service texts oh={jobs.openid_hash(CITIZEN)} n=1" in out  # RQ's line
    for secret in (CITIZEN, OTHER_CITIZEN, SECRET_TEXT, "身份证"):
        assert secret not in out
    stamped = [line for line in out.splitlines() if re.match(r"\d{4}-\d\d-\d\d", line)]
    assert stamped and all(re.match(OFFSET_TIME, line) for line in stamped), stamped[:3]


def test_application_logs_of_an_answer_have_no_openid_or_text(wechat, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    wechat.text(SECRET_TEXT)
    wechat.event("subscribe", "qrscene_station")
    assert "answered oh=" in caplog.text
    assert CITIZEN not in caplog.text and SECRET_TEXT not in caplog.text


def test_formatter_redacts_tracebacks_and_stamps_the_offset():
    import logging
    import re

    from bot.logs import RedactingFormatter

    try:
        raise ValueError(f"duplicate key (openid)=({CITIZEN}) in /wechat?x=1&openid=abc-123")
    except ValueError:
        record = logging.LogRecord("sqlalchemy", logging.ERROR, __file__, 1, "failed for %s",
                                   (OTHER_CITIZEN,), sys.exc_info())
    line = RedactingFormatter().format(record)
    assert CITIZEN not in line and OTHER_CITIZEN not in line and "abc-123" not in line
    assert "oh-" in line and "Traceback" in line
    assert re.match(OFFSET_TIME, line)


def test_dev_server_access_log_has_no_openid(app, caplog):
    import logging
    import threading

    from werkzeug.serving import make_server

    from bot.logs import ScrubbedRequestHandler

    caplog.set_level(logging.INFO, logger="werkzeug")
    server = make_server("127.0.0.1", 0, app, threaded=True,
                         request_handler=ScrubbedRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        requests.get(f"{url}/healthz", params={"openid": CITIZEN}, timeout=10)
        requests.post(f"{url}/wechat", params={"signature": "x", "timestamp": "1",
                                              "nonce": "2", "openid": CITIZEN}, timeout=10)
    finally:
        server.shutdown()
        thread.join(timeout=10)
    lines = [r.getMessage() for r in caplog.records if r.name == "werkzeug"]
    assert len([x for x in lines if "openid=oh-" in x]) == 2, lines
    assert CITIZEN not in caplog.text


def test_gunicorn_access_log_has_no_openid(runtime, db_url, tmp_path):
    from tests.conftest import load_pack
    from tests.pushkit import worker_env

    load_pack(runtime)
    port = free_port()
    access, errors = tmp_path / "access.log", tmp_path / "error.log"
    env = {**worker_env(db_url, "http://127.0.0.1:9"), "PYTHONPATH": ROOT}
    proc = subprocess.Popen([str(Path(sys.executable).parent / "gunicorn"), "bot.wsgi:app",
                             "--bind", f"127.0.0.1:{port}", "--workers", "1",
                             "--access-logfile", str(access), "--error-logfile", str(errors)],
                            env=env, cwd=str(tmp_path), stdout=subprocess.DEVNULL,
                            stderr=subprocess.STDOUT)
    try:
        status, deadline = None, time.monotonic() + 60
        while status != 200 and proc.poll() is None and time.monotonic() < deadline:
            try:
                status = requests.get(f"http://127.0.0.1:{port}/healthz",
                                      params={"openid": CITIZEN}, timeout=10).status_code
            except (requests.ConnectionError, requests.Timeout):  # the worker still booting
                time.sleep(0.2)
        assert status == 200
        requests.get(f"http://127.0.0.1:{port}/wechat/subscribemsg",
                     params={"openid": CITIZEN, "action": "confirm"}, timeout=10)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    log = access.read_text()
    assert "/healthz?openid=oh-" in log and "/wechat/subscribemsg?openid=oh-" in log, log
    assert CITIZEN not in log and CITIZEN not in errors.read_text()


def test_redaction_is_stable_so_logs_stay_greppable_by_one_pseudonym():
    """The access-log line is redacted by the request handler and again by the formatter:
    the second pass must keep the first pseudonym (the app logs `oh=` + the same hash)."""
    from bot.logs import redact
    from bot.runtime import openid_hash

    line = f"POST /wechat?timestamp=1&openid={CITIZEN}&nonce=2 HTTP/1.1"
    once = redact(line)
    assert f"openid=oh-{openid_hash(CITIZEN)}&" in once and CITIZEN not in once
    assert redact(once) == once
