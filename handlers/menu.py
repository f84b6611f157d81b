"""Menu CLICK keys mapped in config ([bot.menu]) to a query, a list of a kind, or a text.

Actions: "query:公交卡补办" (answered like a typed question), "list:notice" (the latest
visible records of a kind, up to 20, paged; the citizen replies 1..20), "text:..." (fixed text),
"sub:出行资讯" / "sub:出行 丰泽区" / "unsub:项目进展" / "mysubs:" (subscriptions, as if the
citizen had typed 订阅 …, 退订 …, 我的订阅; "sub:" alone shows the subscription help).
"""

from __future__ import annotations

import logging

from bot.router import Context, Reply
from bot.store.queries import record_interaction
from bot.vocab import KIND_LABEL
from bot.wechat.messages import Message
from handlers import subscription
from handlers.navigation import configured_menu, show_kind
from handlers.text import ask

log = logging.getLogger("qzbot.menu")

SUBSCRIPTION_VERBS = {"sub": subscription.SUBSCRIBE, "unsub": subscription.UNSUBSCRIBE,
                      "mysubs": subscription.MINE}


def run_action(action: str, ctx: Context, openid: str = "") -> Reply:
    """Perform a menu action string (subscription actions need the citizen's openid)."""
    verb, _, arg = action.partition(":")
    if verb in SUBSCRIPTION_VERBS and openid:
        return subscription.respond(SUBSCRIPTION_VERBS[verb], arg.strip(), openid, ctx)
    if verb == "query":
        return ask(arg, ctx)
    if verb == "text":
        return Reply(text=arg)
    if verb == "list" and arg in KIND_LABEL:
        return show_kind(ctx, arg)
    log.error("menu action not understood: %r", action)
    return Reply(text="该菜单暂不可用，请直接输入您的问题。")


def handle_click(msg: Message, ctx: Context) -> Reply:
    """CLICK events: look the key up in the configured menu (navigation.DEFAULT_MENU if none)."""
    menu = configured_menu(ctx)
    record_interaction(ctx.session, msg.from_user, "click", {"key": msg.event_key}, ctx.now)
    action = menu.get(msg.event_key)
    if action is None:
        log.warning("unknown menu key %r", msg.event_key)
        return Reply(text="该菜单暂不可用，请直接输入您的问题。")
    return run_action(action, ctx, msg.from_user)
