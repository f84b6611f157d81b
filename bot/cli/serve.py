"""`qzbot serve | ask | worker | simulator`: the commands that run things (top-level commands)."""

from __future__ import annotations

import logging
import os
import secrets
import threading
from urllib.parse import urlsplit

import click

from bot.cli.common import Obj, fail, port_in_use
from bot.cli.console import demo_login
from bot.cli.console import start_in_thread as start_console
from bot.secrets_check import refuse_published_secrets

DEMO_OPENID = "oQZdemoCitizen00000000000001"
LOCAL_HOSTS = {"127.0.0.1", "localhost"}


def _prepare_demo(obj: Obj) -> None:
    """Embedded demo: schema, sample pack, a local WeChat API simulator if pointed at one."""
    from bot.content.pack import SAMPLE_PACK, import_pack, read_pack  # noqa: PLC0415 - start-up
    from bot.store.db import transaction, upgrade  # noqa: PLC0415 - keeps CLI start-up fast
    from cases import calendar  # noqa: PLC0415 - keeps CLI start-up fast

    rt = obj.runtime
    upgrade(rt.engine)
    with transaction(rt.sessions) as session:
        report = import_pack(session, read_pack(SAMPLE_PACK), source=str(SAMPLE_PACK),
                             now=rt.now(), districts=obj.settings.bot.districts)
        calendar.load(session, rt.now())  # the working-day calendar, seeded once (idempotent)
    click.echo(f"sample pack (demo content): {report.summary()}")
    base = urlsplit(obj.settings.wechat.api_base_url)
    if base.hostname in LOCAL_HOSTS and base.port:
        from wechatsim import SimConfig, serve_simulator  # noqa: PLC0415 - keeps CLI start-up fast

        wx = obj.settings.wechat
        config = SimConfig(app_id=wx.app_id, app_secret=wx.app_secret)
        threading.Thread(target=serve_simulator, args=(base.hostname, base.port, config),
                         daemon=True, name="simulator").start()
        click.echo(f"WeChat API simulator on {obj.settings.wechat.api_base_url} "
                   f"(messages: {obj.settings.wechat.api_base_url}/_sim/messages)")


def _demo_simulator(obj: Obj, sim_port: int | None) -> tuple[str, int] | None:
    """Where the demo's simulator will listen: `--sim-port`, else the local port of
    [wechat] api_base_url (None: the API is not local, no simulator is started)."""
    if sim_port:
        url = f"http://127.0.0.1:{sim_port}"
        # gunicorn's workers (a demo on a real Redis) load their settings themselves
        os.environ["QZBOT_WECHAT__API_BASE_URL"] = url
        obj.override(wechat={"api_base_url": url})
    base = urlsplit(obj.settings.wechat.api_base_url)
    if base.hostname in LOCAL_HOSTS and base.port:
        return base.hostname, base.port
    return None


def _require_free_ports(host: str, port: int, sim: tuple[str, int] | None) -> None:
    """Exit non-zero before anything starts (no half demo) when a port is taken."""
    if sim is not None and sim[1] == port:
        fail(f"--port and the simulator's port are both {port}: choose another --sim-port")
    if port_in_use(host, port):
        fail(f"port {port} is in use (is another qzbot serve running?): choose one with "
             "--port N")
    if sim is not None and port_in_use(*sim):
        fail(f"port {sim[1]} is in use (the WeChat API simulator's): choose one with "
             "--sim-port M")


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True)
@click.option("--workers", default=2, show_default=True, help="gunicorn worker processes")
@click.option("--demo", is_flag=True, help="Migrate, load the sample pack, start the simulator.")
@click.option("--sim-port", type=int, default=None,
              help="With --demo: the simulator's port (default: [wechat] api_base_url's).")
@click.option("--console-port", type=int, default=None,
              help="With --demo: the staff console's port (default: [console] port).")
@click.pass_obj
def serve(obj: Obj, host: str, port: int, workers: int, demo: bool,
          sim_port: int | None, console_port: int | None) -> None:
    """Run the webhook (gunicorn; in-process server + worker on the embedded Redis).
    With --demo the staff console starts too, and a demo admin login is printed."""
    from bot.app import create_app  # noqa: PLC0415 - keeps CLI start-up fast
    from bot.redisconn import is_embedded  # noqa: PLC0415 - keeps CLI start-up fast

    if sim_port and not demo:
        raise click.UsageError("--sim-port needs --demo (else run `qzbot simulator --port M`)")
    refuse_published_secrets(obj.settings, demo=demo)  # before anything listens or migrates
    if console_port and not demo:
        raise click.UsageError("--console-port needs --demo (else run `qzbot console --port N`)")
    sim = _demo_simulator(obj, sim_port) if demo else None
    _require_free_ports(host, port, sim)
    console_at = _demo_console_port(obj, host, port, sim, console_port) if demo else None
    logging.getLogger("qzbot").setLevel(obj.settings.log.level.upper())
    if demo:
        _prepare_demo(obj)
    if console_at is not None:  # the staff console of the demo, with its admin login
        demo_login(obj, start_console(obj, host, console_at))
    if is_embedded(obj.runtime.redis):
        from werkzeug.serving import run_simple  # noqa: PLC0415 - keeps CLI start-up fast

        from bot.logs import ScrubbedRequestHandler  # noqa: PLC0415 - keeps CLI start-up fast
        from bot.worker import start_thread_worker  # noqa: PLC0415 - keeps CLI start-up fast

        app = create_app(runtime=obj.runtime)
        start_thread_worker(obj.runtime)
        click.echo(f"qzbot on http://{host}:{port}/wechat (embedded Redis, in-process worker)")
        # the access log must not show the openid WeChat appends to the callback URL
        run_simple(host, port, app, threaded=True, use_reloader=False,
                   request_handler=ScrubbedRequestHandler)
        return
    from bot.wsgi import run_gunicorn  # noqa: PLC0415 - keeps CLI start-up fast

    run_gunicorn(obj.config, host, port, workers)


def _demo_console_port(obj: Obj, host: str, port: int, sim: tuple[str, int] | None,
                       console_port: int | None) -> int | None:
    """The demo console's port (`--console-port`, else [console] port), checked free. A
    busy port given with --console-port stops the demo; a busy default only skips the
    console (None), so a second demo on other ports still runs."""
    chosen = console_port or obj.settings.console.port
    taken = chosen == port or (sim is not None and chosen == sim[1])
    if taken or port_in_use(host, chosen):
        if console_port:
            fail(f"port {chosen} is in use (the staff console's): choose one with "
                 "--console-port N")
        click.echo(f"port {chosen} is in use: the staff console is not started "
                   "(choose its port with --console-port N)", err=True)
        return None
    return chosen


@click.command()
@click.argument("text")
@click.option("--openid", default=DEMO_OPENID, show_default=True, help="Citizen openid.")
@click.option("--voice", is_flag=True, help="Send as a voice message with this Recognition.")
@click.option("--event", default="", help="Send an event instead (subscribe, CLICK, ...).")
@click.option("--url", default="", help="POST to a running server (else in-process).")
@click.pass_obj
def ask(obj: Obj, text: str, openid: str, voice: bool, event: str, url: str) -> None:
    """Send TEXT as a citizen through the real webhook and print the reply."""
    from bot.wechat.crypto import MessageCrypto  # noqa: PLC0415 - keeps CLI start-up fast
    from bot.wechat.inbound import (  # noqa: PLC0415 - keeps CLI start-up fast
        message_xml,
        open_reply,
        signed_request,
    )

    wx = obj.settings.wechat
    now = int(obj.runtime.now().timestamp())
    if event:
        xml = message_xml(wx.account_id, openid, "event", create_time=now, Event=event,
                          EventKey=text)
    elif voice:
        xml = message_xml(wx.account_id, openid, "voice", create_time=now, MediaId="demo",
                          Format="amr", Recognition=text)
    else:
        xml = message_xml(wx.account_id, openid, "text", create_time=now, Content=text)
    keys = [k for k in (wx.encoding_aes_key, wx.previous_encoding_aes_key) if k]
    crypto = MessageCrypto(wx.token, keys, wx.app_id) if keys else None
    args, body = signed_request(xml, wx.token, crypto, timestamp=now,
                                nonce=str(secrets.randbelow(10**9)), openid=openid)
    status, reply_body = _post(obj, url, args, body)
    if status != 200:
        fail(f"webhook answered HTTP {status}: {reply_body[:200]}")
    reply = open_reply(reply_body, crypto)
    if reply is None:
        click.echo("(no passive reply: success)")
    elif reply.get("MsgType") == "news":
        click.echo(str(reply.get("Articles")))
    else:
        click.echo(reply.get("Content", ""))


def _post(obj: Obj, url: str, args: dict, body: str) -> tuple[int, str]:
    """POST the signed message to `url`, or through an in-process app; (status, body)."""
    if url:
        import requests  # noqa: PLC0415 - keeps CLI start-up fast

        resp = requests.post(url, params=args, data=body.encode(), timeout=10)
        return resp.status_code, resp.text
    from bot.app import create_app  # noqa: PLC0415 - keeps CLI start-up fast
    from bot.cli.askstate import in_process_state  # noqa: PLC0415 - keeps CLI start-up fast

    # the index and the citizen's pending list survive between runs (bot/cli/askstate)
    with in_process_state(obj.runtime, args.get("openid", DEMO_OPENID)):
        app = create_app(runtime=obj.runtime)
        resp = app.test_client().post("/wechat", query_string=args, data=body.encode())
    return resp.status_code, resp.get_data(as_text=True)


@click.command()
@click.option("--burst", is_flag=True, help="Exit when the queues are empty.")
@click.option("--preload", multiple=True, metavar="MODULE",
              help="Import MODULE once before forking jobs (repeatable).")
@click.option("--demo", is_flag=True, help="Local demo: accept the published demo secrets.")
@click.pass_obj
def worker(obj: Obj, burst: bool, preload: tuple[str, ...], demo: bool) -> None:
    """Run an RQ worker (with scheduler) on qzbot's queues."""
    from bot.redisconn import is_embedded  # noqa: PLC0415 - keeps CLI start-up fast
    from bot.worker import run_worker  # noqa: PLC0415 - keeps CLI start-up fast

    logging.getLogger("qzbot").setLevel(obj.settings.log.level.upper())
    if is_embedded(obj.runtime.redis):
        fail("qzbot worker needs a Redis server ([redis] url); with the embedded Redis, "
             "`qzbot serve` runs the worker in-process")
    refuse_published_secrets(obj.settings, demo=demo)
    run_worker(obj.runtime, burst=burst, preload=preload)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8081, show_default=True)
@click.option("--latency-ms", default=0, show_default=True)
@click.pass_obj
def simulator(obj: Obj, host: str, port: int, latency_ms: int) -> None:
    """Run the local WeChat API simulator (for demos, tests and benchmarks)."""
    from wechatsim import SimConfig, serve_simulator  # noqa: PLC0415 - keeps CLI start-up fast

    wx = obj.settings.wechat
    if port_in_use(host, port):
        fail(f"port {port} is in use: choose one with --port N")
    click.echo(f"WeChat API simulator on http://{host}:{port} (app_id {wx.app_id})")
    serve_simulator(host, port, SimConfig(app_id=wx.app_id, app_secret=wx.app_secret,
                                          latency_ms=latency_ms))
