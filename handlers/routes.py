"""The citizen router: `build_router` registers every handler, in order (first match wins).

Called by the composition root (bot.app.create_app); handlers never import this module.
"""

from __future__ import annotations

from bot.router import Router, is_event, is_type
from bot.settings import Settings
from handlers import cases, consent, events, media, menu, subscription, text
from handlers.fallback import polite


def build_router(settings: Settings) -> Router:
    """The router of the citizen webhook: first match wins; unknown types get `polite`."""
    router = Router(fallback=polite)
    # casework first (issue 10): 留言 …, 查询 <编号>, 申请公开, 满意/基本满意/不满意 while a
    # case awaits 回访; anything else (查询 公交线路 …) returns None and falls through
    router.add("cases", cases.is_case_text, cases.handle_text)
    # before "text": 订阅/退订/我的订阅/全部退订 commands and the same in natural words
    # ("不想再收到推送了", handlers.intents); questions fall through to search
    router.add("subscription", subscription.is_command, subscription.handle_command)
    router.add("text", is_type("text"), text.handle_text)
    router.add("voice", is_type("voice"), text.handle_voice)
    router.add("location", is_type("location"), events.handle_location_event)
    router.add("media", is_type("image", "video", "shortvideo", "link", "file"),
               media.handle_media)
    router.add("subscribe", is_event("subscribe"), events.handle_subscribe)
    router.add("unsubscribe", is_event("unsubscribe"), events.handle_unsubscribe)
    router.add("scan", is_event("scan"), events.handle_scan)
    router.add("location_event", is_event("location"), events.handle_location_event)
    router.add("cases_click", is_event("click"), cases.handle_click)  # case:* menu actions
    router.add("click", is_event("click"), menu.handle_click)
    router.add("view", is_event("view"), events.handle_view)
    router.add("consent", is_event(*consent.CONSENT_EVENTS), consent.handle_consent)
    router.add("platform", is_event("templatesendjobfinish", "masssendjobfinish"),
               events.handle_platform_event)
    router.add("event", is_type("event"), events.handle_unknown_event)
    return router
