"""The qzbot command line, run as a citizen or operator would (subprocesses, real files)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import SMALL_PACK

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def qzbot(*args: str, env: dict | None = None, db_url: str) -> subprocess.CompletedProcess:
    full_env = dict(os.environ, QZBOT_CONFIG=os.path.join(ROOT, "config.example.toml"),
                    QZBOT_DATABASE__URL=db_url, QZBOT_NOW="2026-11-27T10:00:00",
                    **(env or {}))
    return subprocess.run([sys.executable, "-c", "from bot.cli import main; main()", *args],
                          capture_output=True, text=True, env=full_env, cwd=ROOT, timeout=60)


@pytest.fixture
def empty_db(tmp_path):
    return f"sqlite:///{tmp_path}/cli.sqlite3"


def test_refuses_to_start_on_outdated_schema(empty_db):
    result = qzbot("ask", "12328", db_url=empty_db)
    assert result.returncode == 3 and "qzbot db upgrade" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_setting_stops_with_clear_message(empty_db):
    result = qzbot("db", "status", db_url=empty_db, env={"QZBOT_WECHAT__TOKEN": "",
                                                         "QZBOT_SECURITY__SECRET_KEY": ""})
    assert result.returncode == 2
    assert "[wechat] token: required" in result.stderr and "secret_key" in result.stderr


def test_full_flow(empty_db, tmp_path):
    assert qzbot("db", "upgrade", db_url=empty_db).returncode == 0
    imported = qzbot("content", "import", SMALL_PACK, db_url=empty_db)
    assert "created 12" in imported.stdout, imported.stderr
    asked = qzbot("ask", "公交卡丢了去哪补", db_url=empty_db)
    assert asked.returncode == 0 and asked.stdout.splitlines()[0] == "公交IC卡挂失补办"
    voice = qzbot("ask", "--voice", "12328", db_url=empty_db)
    assert voice.stdout.startswith("交通运输服务监督电话：12328")
    follow = qzbot("ask", "--event", "subscribe", "qrscene_station", db_url=empty_db)
    assert "欢迎关注" in follow.stdout
    for _ in range(2):
        qzbot("ask", "今天吃什么", db_url=empty_db)
    report = qzbot("report", "unanswered", db_url=empty_db)
    assert "2" in report.stdout.split("今天吃什么")[0] and "今天吃什么" in report.stdout
    out = tmp_path / "export.toml"
    assert qzbot("content", "export", "-o", str(out), db_url=empty_db).returncode == 0
    again = qzbot("content", "import", str(out), db_url=empty_db)
    assert "unchanged 10" in again.stdout  # plain export: the 10 主动公开 records only


def test_bad_pack_exit_code_and_every_problem(empty_db, tmp_path):
    qzbot("db", "upgrade", db_url=empty_db)
    bad = tmp_path / "bad.toml"
    bad.write_text('[[faq]]\nid = "x"\n[[hotline]]\nid = "h"\nname = "n"\ncolor = 1\n',
                   encoding="utf-8")
    result = qzbot("content", "import", str(bad), db_url=empty_db)
    assert result.returncode == 4
    for part in ("missing required field 'question'", "missing required field 'answer'",
                 "missing required field 'number'", "unknown field 'color'", "nothing imported"):
        assert part in result.stderr


def test_worker_refuses_embedded_redis(empty_db):
    result = qzbot("worker", "--burst", db_url=empty_db)
    assert result.returncode == 1 and "needs a Redis server" in result.stderr


def test_staff_push_flow(empty_db, tmp_path):
    assert qzbot("db", "upgrade", db_url=empty_db).returncode == 0
    qzbot("content", "import", SMALL_PACK, db_url=empty_db)
    admin = qzbot("staff", "add", "root", "--role", "admin", db_url=empty_db)
    root_key = admin.stdout.strip().splitlines()[-1]
    denied = qzbot("staff", "add", "wang", "--role", "editor", db_url=empty_db)
    assert denied.returncode != 0 and "--as ADMIN" in denied.stderr

    def add(name, role):
        out = qzbot("staff", "add", name, "--role", role, "--as", "root",
                    db_url=empty_db, env={"QZBOT_STAFF_KEY": root_key})
        assert out.returncode == 0, out.stderr
        return out.stdout.strip().splitlines()[-1]

    wang, li = add("wang", "editor"), add("li", "reviewer")
    ids = tmp_path / "ids.txt"
    ids.write_text("oCitizen00000000000000000001\n")
    created = qzbot("push", "create", "--as", "wang", "--openids", str(ids),
                    "--record", "notice:n-ferry", "--urgent", db_url=empty_db,
                    env={"QZBOT_STAFF_KEY": wang})
    assert created.returncode == 0, created.stderr
    cid = created.stdout.strip().splitlines()[-1]
    assert cid.isdigit()
    bad_key = qzbot("push", "submit", "--as", "wang", cid, db_url=empty_db,
                    env={"QZBOT_STAFF_KEY": li})
    assert bad_key.returncode == 1 and "wrong or missing key" in bad_key.stderr
    hidden = qzbot("push", "create", "--as", "wang", "--all", "--record", "policy:p-secret",
                   db_url=empty_db, env={"QZBOT_STAFF_KEY": wang})
    assert hidden.returncode == 5 and "不予公开" in hidden.stderr
    # nobody follows yet: submitting an empty audience is refused
    empty = qzbot("push", "submit", "--as", "wang", cid, db_url=empty_db,
                  env={"QZBOT_STAFF_KEY": wang})
    assert empty.returncode == 5 and "audience is empty" in empty.stderr
    qzbot("ask", "--openid", "oCitizen00000000000000000001", "--event", "subscribe", "",
          db_url=empty_db)
    assert qzbot("push", "submit", "--as", "wang", cid, db_url=empty_db,
                 env={"QZBOT_STAFF_KEY": wang}).returncode == 0
    own = qzbot("push", "approve", "--as", "wang", cid, db_url=empty_db,
                env={"QZBOT_STAFF_KEY": wang})
    assert own.returncode != 0 and "needs reviewer" in own.stderr
    ok = qzbot("push", "approve", "--as", "li", cid, db_url=empty_db,
               env={"QZBOT_STAFF_KEY": li})
    assert ok.returncode == 0 and "sending now" in ok.stdout, ok.stderr
    again = qzbot("push", "approve", "--as", "li", cid, db_url=empty_db,
                  env={"QZBOT_STAFF_KEY": li})
    assert again.returncode == 1 and "cannot approve" in again.stderr
    status = qzbot("push", "status", "--as", "li", cid, db_url=empty_db,
                   env={"QZBOT_STAFF_KEY": li})  # reading needs a login too (issue 6)
    assert "approved" in status.stdout and "li: approve" in status.stdout
    assert "pending: 0" in status.stdout
