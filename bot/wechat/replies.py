"""Render passive WeChat replies (text, news) and split long text to the size limit.

Hand-written rather than WeRoBot/wechatpy renderers because WeRoBot puts text into
CDATA as is, so a ``]]>`` in a reply breaks the XML, and neither strips the control
characters XML 1.0 forbids. Platform rule (wechat-platform.md, "Text replies"): keep a
passive text reply under 2048 bytes of UTF-8; longer answers are split.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "Article",
    "MAX_ARTICLES",
    "TEXT_LIMIT_BYTES",
    "cdata",
    "clean_xml_text",
    "news_reply",
    "split_text",
    "text_reply",
    "utf8_len",
]

TEXT_LIMIT_BYTES = 2048
# WeChat has accepted only 1 article in a passive news reply since 2018; older accounts
# and the API allowed 8. Render what we are given, never more than 8.
MAX_ARTICLES = 8

# Everything XML 1.0 does not allow (keeps \t \n \r); also catches lone surrogates.
_ILLEGAL_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# Split points tried in order: paragraphs, lines, after sentence punctuation, spaces.
_SPLITTERS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\n[ \t\r]*\n"), "\n\n"),
    (re.compile(r"\n"), "\n"),
    (re.compile(r"(?<=[。！？；…!?;])"), ""),
    (re.compile(r"(?<=[，、,:：])"), ""),
    (re.compile(r" "), " "),
)


def clean_xml_text(text: str) -> str:
    """Remove characters that XML 1.0 forbids (control characters, lone surrogates)."""
    return _ILLEGAL_XML.sub("", text)


def cdata(text: str) -> str:
    """Wrap text in CDATA safely: illegal characters dropped, ']]>' split across sections."""
    safe = clean_xml_text(str(text)).replace("]]>", "]]]]><![CDATA[>")
    return f"<![CDATA[{safe}]]>"


def _header(to_user: str, from_user: str, create_time: int, msg_type: str) -> str:
    """The fields every passive reply starts with."""
    return (
        f"<ToUserName>{cdata(to_user)}</ToUserName>"
        f"<FromUserName>{cdata(from_user)}</FromUserName>"
        f"<CreateTime>{int(create_time)}</CreateTime>"
        f"<MsgType>{cdata(msg_type)}</MsgType>"
    )


def text_reply(to_user: str, from_user: str, content: str, create_time: int) -> str:
    """Render a passive text reply (to_user is the citizen's openid, from_user our gh_ id)."""
    body = _header(to_user, from_user, create_time, "text")
    return f"<xml>{body}<Content>{cdata(content)}</Content></xml>"


@dataclass(frozen=True)
class Article:
    """One item of a news (图文) reply."""

    title: str
    description: str = ""
    url: str = ""
    pic_url: str = ""


def news_reply(to_user: str, from_user: str, articles: Sequence[Article], create_time: int) -> str:
    """Render a passive news reply with the given articles (at least 1, at most 8 kept)."""
    items = list(articles)[:MAX_ARTICLES]
    if not items:
        raise ValueError("a news reply needs at least one article")
    rendered = "".join(
        "<item>"
        f"<Title>{cdata(a.title)}</Title>"
        f"<Description>{cdata(a.description)}</Description>"
        f"<PicUrl>{cdata(a.pic_url)}</PicUrl>"
        f"<Url>{cdata(a.url)}</Url>"
        "</item>"
        for a in items
    )
    body = _header(to_user, from_user, create_time, "news")
    count = f"<ArticleCount>{len(items)}</ArticleCount>"
    return f"<xml>{body}{count}<Articles>{rendered}</Articles></xml>"


def utf8_len(s: str) -> int:
    """Length of s in UTF-8 bytes (what WeChat's 2048-byte limit counts)."""
    return len(s.encode("utf-8", "surrogatepass"))


def _hard_split(text: str, limit: int) -> list[str]:
    """Cut text into pieces of at most limit bytes, only between code points."""
    pieces: list[str] = []
    start = size = 0
    for index, char in enumerate(text):
        width = utf8_len(char)
        if size + width > limit:
            pieces.append(text[start:index])
            start, size = index, 0
        size += width
    pieces.append(text[start:])
    return pieces


def _pack(parts: Iterable[str], joiner: str, limit: int, level: int) -> list[str]:
    """Greedily join parts with joiner into chunks of at most limit bytes."""
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    joiner_len = utf8_len(joiner)
    for part in parts:
        part_len = utf8_len(part)
        if part_len > limit:
            if current:
                chunks.append(joiner.join(current))
                current, size = [], 0
            chunks.extend(_split(part, limit, level + 1))
            continue
        added = part_len + (joiner_len if current else 0)
        if current and size + added > limit:
            chunks.append(joiner.join(current))
            current, size, added = [], 0, part_len
        current.append(part)
        size += added
    if current:
        chunks.append(joiner.join(current))
    return chunks


def _split(text: str, limit: int, level: int) -> list[str]:
    """Split text at the coarsest boundary (from `level` on) that makes every chunk fit."""
    if utf8_len(text) <= limit:
        return [text]
    for index in range(level, len(_SPLITTERS)):
        pattern, joiner = _SPLITTERS[index]
        parts = pattern.split(text)
        if len(parts) > 1:
            return _pack(parts, joiner, limit, index)
    return _hard_split(text, limit)


def split_text(content: str, limit_bytes: int = TEXT_LIMIT_BYTES) -> list[str]:
    """Split text into chunks of at most limit_bytes of UTF-8, at paragraph/line boundaries."""
    if limit_bytes < 4:  # one code point can take 4 bytes
        raise ValueError("limit_bytes must be at least 4")
    if utf8_len(content) <= limit_bytes:
        return [content] if content else []
    chunks = (chunk.strip("\r\n") for chunk in _split(content, limit_bytes, 0))
    # Blank chunks are dropped; content that is nothing but blanks still yields chunks.
    return [chunk for chunk in chunks if chunk.strip()] or _hard_split(content, limit_bytes)
