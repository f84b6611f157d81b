"""A newcomer's first run, following the README (issue 8 item 8): each friction seen once.

Commands run as subprocesses from a chosen directory with a clean environment (no QZBOT_*
unless a test sets it), as a newcomer's shell would run them.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import pytest
import requests

from bot.clock import SHANGHAI
from tests.conftest import SMALL_PACK
from wechatsim import SimConfig, create_simulator

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "config.example.toml"
README = (ROOT / "README.md").read_text(encoding="utf-8")
NOW = "2026-11-27T10:00:00"  # the tests' pinned clock (small pack notices are current then)


def qzbot(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT,
          timeout: float = 60) -> subprocess.CompletedProcess:
    """Run `qzbot ARGS` in `cwd` with no QZBOT_* in env but `env`."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("QZBOT_")}
    return subprocess.run([sys.executable, "-c", "from bot.cli import main; main()", *args],
                          capture_output=True, text=True, env={**clean, **(env or {})},
                          cwd=cwd, timeout=timeout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def listening() -> Iterator[int]:
    """A port something already listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


# --- configuration -------------------------------------------------------------------------


def test_no_config_at_all_says_how_to_name_one():
    result = qzbot("report", "unanswered")
    assert result.returncode == 2
    assert "no config file: set QZBOT_CONFIG or pass --config FILE" in result.stderr
    assert "required" not in result.stderr  # not three missing keys


def test_a_missing_config_file_is_named_with_its_absolute_path(tmp_path):
    result = qzbot("report", "unanswered", env={"QZBOT_CONFIG": "config.example.toml"},
                   cwd=tmp_path)  # the README's relative name, from the wrong folder
    assert result.returncode == 2
    assert f"no config file at {tmp_path / 'config.example.toml'}" in result.stderr
    assert "required" not in result.stderr


def test_a_relative_sqlite_url_is_relative_to_the_config_file(tmp_path):
    etc, elsewhere = tmp_path / "etc", tmp_path / "elsewhere"
    etc.mkdir()
    elsewhere.mkdir()
    (etc / "qzbot.toml").write_text(EXAMPLE.read_text(encoding="utf-8").replace(
        'url = "sqlite:///var/qzbot.sqlite3"', 'url = "sqlite:///data/q.sqlite3"'),
        encoding="utf-8")
    result = qzbot("--config", "../etc/qzbot.toml", "db", "upgrade", cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    assert (etc / "data" / "q.sqlite3").exists()
    assert not (elsewhere / "data").exists()


# --- ports ---------------------------------------------------------------------------------


def _demo_env(tmp_path: Path) -> dict[str, str]:
    return {"QZBOT_CONFIG": str(EXAMPLE), "QZBOT_NOW": NOW,
            "QZBOT_DATABASE__URL": f"sqlite:///{tmp_path}/demo.sqlite3"}


def test_a_busy_webhook_port_stops_the_demo_before_anything_starts(tmp_path):
    with listening() as port:
        result = qzbot("serve", "--demo", "--port", str(port), "--sim-port", str(free_port()),
                       env=_demo_env(tmp_path), timeout=30)
    assert result.returncode != 0
    assert f"port {port} is in use" in result.stderr
    assert not (tmp_path / "demo.sqlite3").exists()  # nothing migrated: no half demo


def test_a_busy_simulator_port_stops_the_demo_before_anything_starts(tmp_path):
    with listening() as sim_port:
        result = qzbot("serve", "--demo", "--port", str(free_port()), "--sim-port",
                       str(sim_port), env=_demo_env(tmp_path), timeout=30)
    assert result.returncode != 0
    assert f"port {sim_port} is in use" in result.stderr and "--sim-port" in result.stderr
    assert not (tmp_path / "demo.sqlite3").exists()


def test_sim_port_needs_the_demo(tmp_path):
    result = qzbot("serve", "--sim-port", "9", env=_demo_env(tmp_path), timeout=30)
    assert result.returncode == 2 and "--sim-port needs --demo" in result.stderr


def test_the_demo_serves_on_the_ports_it_is_given(tmp_path):
    port, sim_port = free_port(), free_port()
    log = tmp_path / "serve.log"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("QZBOT_")}
    with open(log, "wb") as out:
        # what `scripts/dev serve --port N --sim-port M` runs (the script passes its
        # arguments on; run directly so a test never reinstalls the shared venv)
        proc = subprocess.Popen(
            [sys.executable, "-c", "from bot.cli import main; main()", "serve", "--demo",
             "--port", str(port), "--sim-port", str(sim_port)],
            env={**clean, **_demo_env(tmp_path)}, cwd=ROOT, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        health = _wait_ok(f"http://127.0.0.1:{port}/healthz", proc)
        sim = requests.get(f"http://127.0.0.1:{sim_port}/_sim/messages", timeout=5)
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=15)
    assert health == 200, log.read_text(errors="replace")
    assert sim.status_code == 200 and sim.json()["count"] == 0
    assert f"127.0.0.1:{sim_port}" in log.read_text(errors="replace")


def _wait_ok(url: str, proc: subprocess.Popen, seconds: float = 60) -> int | None:
    deadline = time.monotonic() + seconds
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            return requests.get(url, timeout=2).status_code
        except requests.ConnectionError:
            time.sleep(0.2)
    return None


# --- what commands say ---------------------------------------------------------------------


def test_sim_messages_are_readable_utf8_json():
    client = create_simulator(SimConfig(app_id="wxa", app_secret="s")).test_client()
    token = client.get("/cgi-bin/token", query_string={
        "grant_type": "client_credential", "appid": "wxa", "secret": "s"}).get_json()
    body = {"touser": "oCitizen", "msgtype": "text", "text": {"content": "泉金航线台风停航"}}
    sent = client.post("/cgi-bin/message/custom/send", json=body,
                       query_string={"access_token": token["access_token"]})
    assert sent.get_json()["errcode"] == 0
    resp = client.get("/_sim/messages")
    assert "泉金航线台风停航".encode() in resp.data and b"\\u" not in resp.data
    assert resp.headers["Content-Type"] == "application/json; charset=utf-8"


@pytest.fixture
def demo_db(tmp_path) -> dict[str, str]:
    """A migrated database with the small pack, on the example config and pinned clock."""
    env = {"QZBOT_CONFIG": str(EXAMPLE), "QZBOT_NOW": NOW,
           "QZBOT_DATABASE__URL": f"sqlite:///{tmp_path}/cli.sqlite3"}
    assert qzbot("db", "upgrade", env=env).returncode == 0
    assert qzbot("content", "import", SMALL_PACK, env=env).returncode == 0
    return env


def test_content_export_says_what_it_wrote(demo_db, tmp_path):
    out = tmp_path / "export.toml"
    result = qzbot("content", "export", "-o", str(out), env=demo_db)
    assert result.returncode == 0, result.stderr
    written = tomllib.loads(out.read_text(encoding="utf-8"))
    per_kind = ", ".join(f"{kind} {len(records)}" for kind, records in written.items())
    total = sum(map(len, written.values()))
    assert result.stdout.strip() == (f"wrote {total} records ({per_kind}; 主动公开 records and "
                                     f"synonyms only) to {out}")


def test_push_create_prints_the_audience_definition_and_size(demo_db):
    admin = qzbot("staff", "add", "root", "--role", "admin", env=demo_db)
    root_key = admin.stdout.strip().splitlines()[-1]
    editor = qzbot("staff", "add", "wang", "--role", "editor", "--as", "root",
                   env={**demo_db, "QZBOT_STAFF_KEY": root_key})
    as_wang = {**demo_db, "QZBOT_STAFF_KEY": editor.stdout.strip().splitlines()[-1]}
    citizen = ("--openid", "oCitizen00000000000000000001")
    assert qzbot("ask", *citizen, "--event", "subscribe", "", env=demo_db).returncode == 0
    asked = qzbot("ask", *citizen, "订阅 出行 南安市", env=demo_db)
    assert asked.stdout.startswith("已订阅：出行资讯（南安市）"), asked.stdout

    def create(*audience: str) -> str:
        result = qzbot("push", "create", "--as", "wang", *audience, "--record",
                       "notice:n-ferry", env=as_wang)
        assert result.returncode == 0, result.stderr
        return result.stdout.splitlines()[0]

    assert create("--topic", "出行资讯").endswith("for all subscribers of 出行资讯 (1 now)")
    assert create("--topic", "travel", "--district", "南安市", "--kind", "ferry").endswith(
        "for subscribers of 出行资讯 in 南安市, kind ferry (1 now)")
    assert create("--topic", "market").endswith("for all subscribers of 市场监管动态 (0 now)")


# --- the README ----------------------------------------------------------------------------


def _commands() -> list[str]:
    """The command lines of the README's sh blocks (comments cut off)."""
    blocks = re.findall(r"```sh\n(.*?)```", README, flags=re.S)
    return [line.split(" # ")[0] for block in blocks for line in block.splitlines()]


def test_readme_commands_run_qzbot_from_the_venv():
    """A bare `qzbot …` is `command not found` in a fresh shell (no venv activated)."""
    bare = [line for line in _commands() if re.search(r"(^|\s)qzbot\s", line)]
    assert bare == []
    assert sum(".venv/bin/qzbot " in line for line in _commands()) >= 10


def test_readme_send_times_are_in_the_future_of_the_demo_clock():
    """The demo runs on the real clock: every `--at` example must still be ahead of it."""
    values = re.findall(r'--at ("\$\(.*?\)"|\S+)', README)
    assert values, "no --at example"
    now = datetime.now(SHANGHAI).replace(tzinfo=None)
    for value in values:
        if value.startswith('"$('):
            value = subprocess.run(["bash", "-c", f"echo {value}"], capture_output=True,
                                   text=True, check=True).stdout.strip()
        elif not re.match(r"\d{4}-", value):
            continue  # a placeholder, e.g. YYYY-MM-DDTHH:MM
        assert datetime.fromisoformat(value) > now, value
