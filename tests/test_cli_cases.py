"""`qzbot case ...` run as an operator's script would (subprocesses, a real SQLite file): roles
and departments, a 留言 through its steps, the queue, masking and refusals."""

from __future__ import annotations

import json
import os

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from bot.clock import parse_pinned
from bot.settings import load_settings
from cases import actions
from tests.test_cli import ROOT, qzbot

NOW = parse_pinned("2026-11-27T10:00:00")


@pytest.fixture
def cli(tmp_path):
    """A migrated database with admin root, registrar reg, handler han (dept 1), editor ed."""
    url = f"sqlite:///{tmp_path}/cases.sqlite3"
    assert qzbot("db", "upgrade", db_url=url).returncode == 0
    keys = {"root": qzbot("staff", "add", "root", "--role", "admin",
                          db_url=url).stdout.strip().splitlines()[-1]}

    def run(who: str, *args: str):
        return qzbot(*args, "--as", who, db_url=url, env={"QZBOT_STAFF_KEY": keys[who]})

    for name in ("reg", "han", "ed"):
        out = run("root", "staff", "add", name, "--role", "editor")
        keys[name] = out.stdout.strip().splitlines()[-1]
    out = run("root", "case", "departments", "--add", "市道管处")
    assert out.returncode == 0 and "1\t市道管处\tactive\t0" in out.stdout, out.stderr
    assert run("root", "case", "roles", "reg", "--role", "registrar").returncode == 0
    bad = run("root", "case", "roles", "han", "--role", "handler")
    assert bad.returncode == 1 and "handler belongs to a department" in bad.stderr
    out = run("root", "case", "roles", "han", "--role", "handler", "--department", "1")
    assert out.returncode == 0 and "han: handler (department 1)" in out.stdout
    denied = run("reg", "case", "roles", "ed", "--role", "registrar")
    assert denied.returncode == 1 and "admin" in denied.stderr
    run.url = url
    return run


def _message(url: str, content: str) -> str:
    """A citizen's 留言 (the chat's use-case, straight into the file)."""
    settings = load_settings(os.path.join(ROOT, "config.example.toml"),
                             env={"QZBOT_DATABASE__URL": url})
    engine = create_engine(url)
    with Session(engine) as s:
        number = actions.create_message(s, settings, NOW, channel="chat", openid="o-1",
                                        category="咨询", content=content,
                                        contact={"name": "王小明", "phone": "13900001111"}
                                        ).case.number
        s.commit()
    engine.dispose()
    return number


def test_a_message_through_the_cli(cli):
    number = _message(cli.url, "请问<b>轮渡</b>几点开？")
    out = cli("reg", "case", "list", "--json")
    rows = json.loads(out.stdout)
    assert [(r["number"], r["state"]) for r in rows] == [(number, "submitted")]
    assert cli("han", "case", "list").stdout.strip() == ""  # not his department yet
    assert cli("ed", "case", "list").returncode == 1  # no casework role
    out = cli("reg", "case", "do", number, "accept_message")
    assert out.returncode == 0 and "state accepted" in out.stdout and "due 2026-12-04" \
        in out.stdout and "notices 1" in out.stdout, out.stderr
    again = cli("reg", "case", "do", number, "accept_message")
    assert again.returncode == 1 and "不能执行" in again.stderr
    missing = cli("reg", "case", "do", number, "transfer_message")
    assert missing.returncode == 5 and "承办部门：必填" in missing.stderr
    wrong = cli("reg", "case", "do", number, "transfer_message", "handler=x")
    assert wrong.returncode == 1 and "department_id=" in wrong.stderr
    assert cli("reg", "case", "do", number, "drop_table").returncode == 1
    assert cli("reg", "case", "do", number, "transfer_message",
               "department_id=1").returncode == 0
    assert cli("reg", "case", "do", number, "sign_message").returncode == 1  # not a handler
    assert cli("han", "case", "do", number, "sign_message").returncode == 0
    out = cli("han", "case", "list", "--view", "t5")
    assert out.stdout.startswith(f"{number}\tsigned\t2026-12-04\tT-5\t市道管处\than\t")
    shown = cli("han", "case", "show", number)  # han signed for it: the case's own handler
    assert "name=王小明" in shown.stdout and "phone=13900001111" in shown.stdout
    assert "draft_reply" in shown.stdout.splitlines()[-1]
    full = json.loads(cli("reg", "case", "show", number, "--json").stdout)
    assert full["case"]["applicant"] == {"name": "王小明", "phone": "13900001111"}
    assert [e["action"] for e in full["timeline"]] == ["submitted", "accepted", "transferred",
                                                       "signed"]
    assert cli("root", "case", "show", number).returncode == 0  # an admin reads


def test_steps_are_listed(cli):
    out = qzbot("case", "steps", db_url=cli.url)
    assert out.returncode == 0
    lines = dict(line.split("\t", 1) for line in out.stdout.strip().splitlines())
    assert "review_answer" in lines and "approve=approve" in lines["review_answer"]
    assert "department_id=department" in lines["transfer_message"]
