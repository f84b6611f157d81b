"""WSGI factories for bench/webhook.py, served by gunicorn with identical server settings.

    gunicorn 'bench.webhook_apps:full()'     # (a) our app, default router (keyword answers);
                                             #     BENCH_ANSWER_CACHE=0: answer cache off
    gunicorn 'bench.webhook_apps:echo()'     # (b) our webhook, trivial echo router
    gunicorn 'bench.webhook_apps:werobot()'  # (c) WeRoBot 1.13 echo bot in Flask (make_view)

All three read the same settings (QZBOT_CONFIG plus QZBOT_* env overrides), so they share
token, EncodingAESKey and AppID. Each factory runs in the gunicorn worker (no --preload).
(a) and (b) are built by the production entry point, bot.wsgi.build_app (logging set up,
access-log-safe middleware, heap settled), as `gunicorn 'bot.wsgi:app'` builds it, minus
the published-secrets check (skipped as `qzbot serve --demo` skips it: the bench's token
and short secret key are in bench/webhook.py).
BENCH_WEROBOT_SESSION=1 keeps WeRoBot's default session storage (an SQLite file in the
working directory, read and written on every message); by default it is off, since the
echo handler needs no session and the baseline should be as fast as WeRoBot can be.
"""

from __future__ import annotations

import logging
import os


def _settings():
    from bot.settings import load_settings

    settings = load_settings()
    # WeRoBot's factory: honour [log] level for our loggers like the CLI does.
    logging.getLogger("qzbot").setLevel(settings.log.level.upper())
    return settings


def _ready(app):
    """Tell bench/webhook.py this worker has built its app (a file per worker pid)."""
    where = os.environ.get("BENCH_READY_DIR")
    if where:
        with open(os.path.join(where, str(os.getpid())), "w"):
            pass
    return app


def full():
    """(a) The real app: create_app with the default router.

    BENCH_ANSWER_CACHE=0 turns the search's answer cache off (the index's per-question
    LRU), so every request runs the full query: the headline figure, since the bench's
    questions repeat and real ones mostly do not."""
    from bot.wsgi import build_app

    if os.environ.get("BENCH_ANSWER_CACHE", "1") == "0":
        import handlers.search.index as search_index

        search_index.QUERY_CACHE_SIZE = 0  # read when an index is built: maxsize 0 = off
    return _ready(build_app(check_secrets=False))


def echo():
    """(b) Our whole webhook pipeline with a router that echoes the text back."""
    from bot.router import Reply, Router
    from bot.wsgi import build_app

    return _ready(build_app(check_secrets=False,
                            router=Router(fallback=lambda msg, ctx: Reply(text=msg.content))))


def werobot():
    """(c) A WeRoBot echo bot, mounted in Flask with werobot.contrib.flask.make_view."""
    import werobot as wr
    from flask import Flask
    from werobot.contrib.flask import make_view

    wx = _settings().wechat
    robot = wr.WeRoBot(token=wx.token, encoding_aes_key=wx.encoding_aes_key, app_id=wx.app_id)
    if os.environ.get("BENCH_WEROBOT_SESSION", "") not in ("1", "true", "yes"):
        # WeRoBot(session_storage=False) is ignored (falsy); the config key is what counts.
        robot.config["SESSION_STORAGE"] = False

    @robot.text
    def echo_text(message):
        return message.content

    app = Flask("werobot_bench")
    app.add_url_rule(rule="/wechat", endpoint="werobot", view_func=make_view(robot),
                     methods=["GET", "POST"])
    return _ready(app)
