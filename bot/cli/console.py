"""`qzbot console`: the staff web console and JSON API on their own, internal port.

`qzbot console --host 127.0.0.1 --port 8090` (defaults from [console]) serves it with
werkzeug, for local use and small installations; production runs gunicorn on
"bot.wsgi:console()". A port already in use stops it with a message and exit code 1, as
`qzbot serve`. Like the webhook it refuses published secrets unless `--demo`: [security]
secret_key keys the session cookies and the TOTP secrets at rest.

The embedded demo (`qzbot serve --demo`) starts the console too (`start_in_thread`) and
prints a demo admin login (`demo_login`): its name, a fresh password and its TOTP secret.
The first admin of a real installation gets a console password with
`qzbot staff set-password NAME` (bot/cli/staff.py).
"""

from __future__ import annotations

import logging
import threading

import click

from bot.cli.common import Obj, fail, port_in_use
from bot.secrets_check import refuse_published_secrets

DEMO_ADMIN = "demo-admin"


@click.command("console")
@click.option("--host", default=None, help="Listen address (default: [console] host).")
@click.option("--port", type=int, default=None, help="Port (default: [console] port).")
@click.option("--demo", is_flag=True, help="Local demo: accept the published demo secrets.")
@click.pass_obj
def console(obj: Obj, host: str | None, port: int | None, demo: bool) -> None:
    """Run the staff web console and JSON API (werkzeug; gunicorn "bot.wsgi:console()")."""
    from werkzeug.serving import run_simple  # noqa: PLC0415 - keeps CLI start-up fast

    cfg = obj.settings.console
    host, port = host or cfg.host, port or cfg.port
    refuse_published_secrets(obj.settings, demo=demo)
    if port_in_use(host, port):
        fail(f"port {port} is in use (is another qzbot console running?): choose one with "
             "--port N")
    logging.getLogger("qzbot").setLevel(obj.settings.log.level.upper())
    app = _app(obj)
    click.echo(f"qzbot console on {_url(host, port)} (staff log in at {_url(host, port)}/login)")
    run_simple(host, port, app, threaded=True, use_reloader=False)


def _app(obj: Obj):  # noqa: ANN202 - a Flask app
    from console import create_console_app  # noqa: PLC0415 - keeps CLI start-up fast

    return create_console_app(runtime=obj.runtime)


def _url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def start_in_thread(obj: Obj, host: str, port: int) -> str:
    """Serve the console from a daemon thread (the embedded demo); returns its URL."""
    from werkzeug.serving import make_server  # noqa: PLC0415 - keeps CLI start-up fast

    server = make_server(host, port, _app(obj), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True, name="console").start()
    return _url(host, port)


def demo_login(obj: Obj, url: str) -> None:
    """Create (if missing) the demo admin and print how to log in: name, password, TOTP."""
    from bot.store.db import transaction  # noqa: PLC0415 - keeps CLI start-up fast
    from push import actions  # noqa: PLC0415 - keeps CLI start-up fast

    rt = obj.runtime
    with transaction(rt.sessions) as session:
        login = actions.ensure_demo_admin(session, obj.settings, DEMO_ADMIN, rt.now())
    click.echo(f"staff console on {url}/login (demo admin login, local demo only):")
    click.echo(f"  name:     {login.name}")
    click.echo(f"  password: {login.password}   (new at every start)")
    click.echo(f"  TOTP:     secret {login.totp_secret}")
    click.echo(f"            {login.totp_uri}")
    click.echo("            (add it to an authenticator app, or: "
               f"python -c \"import pyotp; print(pyotp.TOTP('{login.totp_secret}').now())\")")
