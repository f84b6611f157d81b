"""Small talk and English, answered before any search and never recorded as unanswered.

Greetings, thanks, acknowledgements, goodbyes (Chinese and English), emoji-only and
punctuation-only messages get a short polite reply that says what the account can do.
A message that is only Latin-letter words (not an acronym such as ETC) gets a Chinese reply
saying we answer in Chinese, with the 12328 hotline. A greeting followed by a question
("你好，公交卡丢了怎么办") is a question: `strip_greeting` hands the question on.
Why before search: these messages matched nothing, were recorded as "unanswered" and
crowded the staff report (issue 8).
"""

from __future__ import annotations

import re
import unicodedata
from itertools import dropwhile

from bot.router import Context, Reply
from bot.vocab import QuestionOutcome

GREETING, THANKS, ACK, BYE, NOISE = "greeting", "thanks", "ack", "bye", "noise"
# phrase -> class; matched on the whole message (lowercase, NFKC, punctuation dropped),
# which may chain several phrases ("好的谢谢", "嗯嗯好的")
PHRASES: dict[str, str] = {
    **dict.fromkeys(("你好", "您好", "你们好", "在吗", "在么", "在不在", "在嘛", "有人吗",
                     "有人在吗", "哈喽", "嗨", "早上好", "上午好", "中午好", "下午好",
                     "晚上好", "早", "早安", "hi", "hello", "hey", "hallo", "good morning",
                     "good afternoon", "good evening"), GREETING),
    **dict.fromkeys(("谢谢", "谢谢你", "谢谢您", "多谢", "感谢", "非常感谢", "谢啦", "谢了",
                     "辛苦了", "thanks", "thank you", "thankyou", "thx", "3q"), THANKS),
    **dict.fromkeys(("好的", "好", "好滴", "好嘞", "收到", "嗯", "嗯嗯", "哦", "噢", "行",
                     "知道了", "明白了", "明白", "了解", "ok", "okay", "ok了"), ACK),
    **dict.fromkeys(("再见", "拜拜", "拜", "88", "bye", "byebye", "goodbye", "see you"), BYE),
}
_LONGEST = max(map(len, PHRASES))
# WeChat's built-in faces arrive in Content as codes such as "/::)" or "[微笑]" (observed
# client behaviour; the platform doc does not list them)
_FACE_CODE = re.compile(r"\[[^\[\]\s]{1,6}\]|/:[^\s/]{1,8}")
_LATIN_WORD = re.compile(r"[A-Za-z]{2,}")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
EXAMPLES = "“公交卡丢了怎么补办”“出租车投诉电话”“渡轮今天停航吗”"
CAN_DO = (f"我可以回答交通出行和办事方面的问题，例如{EXAMPLES}；"
          "回复“订阅”可订阅出行资讯、项目进展等消息，回复“菜单”查看全部功能。")
REPLIES = {
    GREETING: "您好！" + CAN_DO,
    THANKS: "不客气！还有问题可以直接输入。" + CAN_DO,
    ACK: "好的。如还有问题，请直接输入。" + CAN_DO,
    BYE: "再见，祝您出行顺利！需要时随时发消息给我。" + CAN_DO,
    NOISE: "收到您的消息。" + CAN_DO,
}


def _is_mark(ch: str) -> bool:
    """Punctuation, symbols (emoji), separators, marks and format characters (ZWJ)."""
    return unicodedata.category(ch)[0] in "PSZMC"


def _plain(text: str) -> str:
    """Lowercase, NFKC (full-width to half-width), face codes and punctuation dropped."""
    text = _FACE_CODE.sub(" ", unicodedata.normalize("NFKC", text).lower())
    return "".join(" " if _is_mark(ch) else ch for ch in text)


def _ends_word(text: str, size: int) -> bool:
    """A Latin phrase ends at a word boundary ("hi" does not start "high")."""
    last, following = text[size - 1], text[size:size + 1]
    return not (last.isascii() and last.isalpha() and following.isascii()
                and following.isalpha())


def _phrases(plain: str) -> list[str] | None:
    """The classes of the phrases making up the whole text, or None if anything else is in it."""
    text, found = " ".join(plain.split()), []
    while text:
        size = next((n for n in range(min(_LONGEST, len(text)), 0, -1)
                     if text[:n] in PHRASES and _ends_word(text, n)), 0)
        if not size:
            return None
        found.append(PHRASES[text[:size]])
        text = text[size:].lstrip()
    return found


def kind_of(text: str) -> str | None:
    """The small-talk class of a whole message, or None when it says something more."""
    plain = _plain(text)
    if not plain.strip():
        return NOISE  # emoji, face codes or punctuation only
    found = _phrases(plain)
    if not found:
        return None
    return THANKS if THANKS in found else BYE if BYE in found else found[0]


def is_english(text: str) -> bool:
    """Latin-letter words and no Chinese; an all-capitals acronym (ETC, APP) is not English."""
    if _CJK.search(text):
        return False
    return any(not word.isupper() for word in _LATIN_WORD.findall(text))


def english_reply(ctx: Context) -> Reply:
    """We answer in Chinese; the hotline helps otherwise."""
    return Reply(text=("您好，本号目前只能用中文回答问题，请用中文输入您的问题，"
                       f"例如{EXAMPLES}。也可以拨打 {ctx.settings.bot.fallback_hotline} "
                       "交通运输服务监督电话咨询。\nSorry, we can only answer in Chinese. "
                       f"Please call {ctx.settings.bot.fallback_hotline} for help."))


def chat(text: str, ctx: Context) -> Reply | None:
    """The reply to small talk or English, or None when the message is a question."""
    kind = kind_of(text)
    if kind is not None:
        ctx.notes["smalltalk"] = kind
        ctx.notes["outcome"] = QuestionOutcome.SMALLTALK
        return Reply(text=REPLIES[kind])
    if is_english(text):
        ctx.notes["smalltalk"] = "english"
        ctx.notes["outcome"] = QuestionOutcome.SMALLTALK
        return english_reply(ctx)
    return None


def strip_greeting(text: str) -> str:
    """The question after a leading greeting ("你好，公交卡丢了怎么办" -> "公交卡丢了怎么办").

    A one-character greeting (早, 嗨) counts only before punctuation or a space, so "早班车"
    keeps its 早.
    """
    for size in range(min(_LONGEST, len(text) - 1), 0, -1):
        head, rest = text[:size], text[size:]
        if PHRASES.get(head.lower()) != GREETING:
            continue
        if _is_mark(rest[0]) or (size > 1 and _CJK.match(rest[0])):
            question = "".join(dropwhile(_is_mark, rest))
            return question or text
    return text
