"""Subscribing in natural words: the one table of request shapes, read into commands.

"我要订阅台风消息", "以后有停航通知告诉我", "有封路消息推送给我" are 订阅 requests;
"不想再收到推送了", "别再给我发消息了" are 全部退订; "取消项目进展的推送" is 退订 项目进展.
A shape yields the command verb and what the request is about; everyday words are then
turned into the words the command parser knows (台风 -> 出行, 停航 -> 轮渡, …) by
EVERYDAY_WORDS, which the typed commands use too ("订阅台风消息").
Whether the subject really names a topic, kind or district is decided by the subscription
handler (it has the configured districts); when it does not, or when the message reads as a
question ("台风天渡轮开不开", "有停航通知吗"), the message goes to search. Nothing here
changes data: this module only reads text.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

SUBSCRIBE, UNSUBSCRIBE, ALL_OFF = "订阅", "退订", "全部退订"
# a message containing one of these asks something; it is never read as a request
QUESTION_MARKS = ("怎么", "怎样", "如何", "什么", "为什么", "哪", "吗", "么", "嘛", "呢",
                  "是否", "能否", "能不能", "可不可以", "多少", "几", "?", "？")


@dataclass(frozen=True)
class Shape:
    """A request shape: the whole message must match; group `what` is its subject."""

    pattern: re.Pattern[str]
    verb: str
    # SUBSCRIBE: a request only if the subject names something; UNSUBSCRIBE: no subject = all
    needs_subject: bool = False


def _shape(pattern: str, verb: str, needs_subject: bool = False) -> Shape:
    return Shape(re.compile(pattern), verb, needs_subject)


_DELIVER = r"(?:告诉|通知|提醒|推送给|推给|发给)我(?:一下|一声)?"
_STOP = r"(?:我)?(?:不想|不要|不用|不需要|别)再?(?:给我)?(?:收到|接收|收|发|推送|推)"
# the table: first shape that matches decides
SHAPES: tuple[Shape, ...] = (
    # 我要订阅台风消息, 帮我订阅项目进展, 我想订出行资讯
    _shape(r"(?:请|麻烦|帮我|给我|我要|我想|想要|想|要)+(?:订阅|订)(?P<what>.*)", SUBSCRIBE),
    # 以后有停航通知告诉我, 有封路消息推送给我, 丰泽区有封路的话通知我
    _shape(r"(?P<what>.+?)(?:的话)?(?:请|麻烦|记得|就)?" + _DELIVER, SUBSCRIBE,
           needs_subject=True),
    # 不想再收到推送了, 别再给我发消息了, 不想再收到台风消息了
    _shape(_STOP + r"(?P<what>.*?)了?", UNSUBSCRIBE),
    # 取消项目进展的推送, 停止推送, 关闭通知
    _shape(r"(?:请|帮我)?(?:取消|关闭|停止|关掉|退掉)(?P<what>.*?)(?:推送|通知|消息)了?",
           UNSUBSCRIBE),
)

# everyday word -> the word the subscription parser knows ("" drops a filler)
EVERYDAY_WORDS: dict[str, str] = {
    # typhoon closures reach ferries, buses and roads alike: all travel notices (weather
    # itself is not ours to push, so 天气 stays unknown)
    "台风": "出行", "停运": "出行", "交通": "出行",
    "停航": "轮渡", "停渡": "轮渡", "渡船": "轮渡", "客船": "轮渡",
    "交通管制": "道路", "管制": "道路", "修路": "道路", "施工": "道路", "堵车": "道路",
    "改线": "公交", "公交线路": "公交", "动车": "铁路", "高铁": "铁路",
    **dict.fromkeys(("以后", "今后", "之后", "如果", "要是", "的话", "有", "相关", "方面",
                     "最新", "给我", "我"), ""),
}
_EVERYDAY = re.compile("|".join(sorted(map(re.escape, EVERYDAY_WORDS), key=len, reverse=True)))


def everyday(text: str) -> str:
    """Everyday words replaced by the subscription parser's words, fillers dropped."""
    return " ".join(_EVERYDAY.sub(lambda m: f" {EVERYDAY_WORDS[m.group()]} ", text).split())


def _squeeze(text: str) -> str:
    """Punctuation, symbols and spaces removed: the shapes match the words alone."""
    return "".join(ch for ch in text if unicodedata.category(ch)[0] not in "PSZC")


@dataclass(frozen=True)
class Request:
    """A subscription request read from natural words."""

    verb: str
    what: str  # in the parser's words; "" when nothing was named
    needs_subject: bool


def read(text: str) -> Request | None:
    """The subscription request this message makes, or None (a question, or no shape)."""
    if any(mark in text for mark in QUESTION_MARKS):
        return None
    words = _squeeze(text)
    for shape in SHAPES:
        match = shape.pattern.fullmatch(words)
        if match:
            what = everyday(match.group("what") or "")
            verb = ALL_OFF if shape.verb == UNSUBSCRIBE and not _names(what) else shape.verb
            return Request(verb, what, shape.needs_subject)
    return None


_GENERIC = frozenset({"推送", "消息", "通知", "信息", "的", "订阅", "全部", "所有"})


def _names(what: str) -> bool:
    """Whether the subject says more than "messages" (推送/消息/通知)."""
    rest = what
    for word in sorted(_GENERIC, key=len, reverse=True):
        rest = rest.replace(word, "")
    return bool(rest.strip())
