"""Rendering replies: CDATA safety, control characters, news, and splitting long text."""

from __future__ import annotations

import re

import pytest

from bot.wechat.messages import parse, parse_xml_dict
from bot.wechat.replies import Article, cdata, news_reply, split_text, text_reply, utf8_len

OPENID = "oyORnuP8q7ou2gfYjqLzSIWZf0rs"
GH = "gh_10f6c3c3ac5a"

TRICKY = {
    "plain": ("您好，泉州交通运输局为您服务。", "您好，泉州交通运输局为您服务。"),
    "cdata-end": ("a]]>b", "a]]>b"),
    "only-cdata-end": ("]]>", "]]>"),
    "double": ("]]]]>]]>", "]]]]>]]>"),
    "nested-cdata": ("<![CDATA[x]]>", "<![CDATA[x]]>"),
    "markup": ("<xml><b>&amp;</b></xml>", "<xml><b>&amp;</b></xml>"),
    "controls": ("a\x00b\x01c\x08d\x0be\x0cf\x1fg\x7fh", "abcdefg\x7fh"),
    "non-chars": ("x\ufffey\uffffz", "xyz"),
    "lone-surrogate": ("x\ud800y\udfffz", "xyz"),
    "kept-whitespace": ("tab\there\nnew line", "tab\there\nnew line"),
    "emoji": ("🚌🚇 😀 \U0001f9d1\u200d\U0001f692", "🚌🚇 😀 \U0001f9d1\u200d\U0001f692"),
    "empty": ("", ""),
}


@pytest.mark.parametrize("content,expected", TRICKY.values(), ids=list(TRICKY))
def test_text_reply_parses_back(content: str, expected: str) -> None:
    xml = text_reply(OPENID, GH, content, 1700000000)
    xml.encode("utf-8")  # no lone surrogates left
    fields = parse_xml_dict(xml)  # defusedxml
    assert fields["Content"] == expected
    assert fields["ToUserName"] == OPENID and fields["FromUserName"] == GH
    assert fields["CreateTime"] == "1700000000" and fields["MsgType"] == "text"
    msg = parse(xml)
    assert (msg.msg_type, msg.content, msg.create_time) == ("text", expected, 1700000000)


def test_cdata_split_is_exact() -> None:
    assert cdata("a]]>b") == "<![CDATA[a]]]]><![CDATA[>b]]>"


def test_carriage_return_is_kept_in_output() -> None:
    # XML parsers normalise \r to \n on reading, so check the rendered text itself.
    assert "<![CDATA[a\r\nb]]>" in text_reply(OPENID, GH, "a\r\nb", 1)


@pytest.mark.parametrize("field", ["to_user", "from_user"])
def test_ids_are_escaped_too(field: str) -> None:
    args = {"to_user": OPENID, "from_user": GH, field: "x]]><evil/>"}
    fields = parse_xml_dict(text_reply(args["to_user"], args["from_user"], "hi", 1))
    key = "ToUserName" if field == "to_user" else "FromUserName"
    assert fields[key] == "x]]><evil/>"
    assert "evil" not in fields


def test_create_time_must_be_an_integer() -> None:
    with pytest.raises((TypeError, ValueError)):
        text_reply(OPENID, GH, "hi", "1</CreateTime><x>")  # type: ignore[arg-type]


# --- news ---------------------------------------------------------------------------


def _article(i: int) -> Article:
    return Article(
        title=f"第{i}条]]>通知\x00",
        description=f"说明 {i} <b>",
        url=f"https://example.org/{i}?a=1&b=2",
        pic_url=f"https://example.org/{i}.jpg",
    )


@pytest.mark.parametrize("count,rendered", [(1, 1), (3, 3), (8, 8), (9, 8), (20, 8)])
def test_news_reply(count: int, rendered: int) -> None:
    xml = news_reply(OPENID, GH, [_article(i) for i in range(count)], 1700000000)
    fields = parse_xml_dict(xml)
    assert fields["MsgType"] == "news"
    assert fields["ArticleCount"] == str(rendered)
    items = fields["Articles"]["item"]
    items = items if isinstance(items, list) else [items]
    assert len(items) == rendered
    for i, item in enumerate(items):
        assert item == {
            "Title": f"第{i}条]]>通知",
            "Description": f"说明 {i} <b>",
            "PicUrl": f"https://example.org/{i}.jpg",
            "Url": f"https://example.org/{i}?a=1&b=2",
        }


def test_news_reply_needs_an_article() -> None:
    with pytest.raises(ValueError):
        news_reply(OPENID, GH, [], 1)


def test_article_defaults() -> None:
    fields = parse_xml_dict(news_reply(OPENID, GH, [Article("标题")], 1))
    expected = {"Title": "标题", "Description": "", "PicUrl": "", "Url": ""}
    assert fields["Articles"]["item"] == expected


# --- sizes and splitting ---------------------------------------------------------------


@pytest.mark.parametrize(
    "text,size", [("", 0), ("a", 1), ("é", 2), ("泉", 3), ("😀", 4), ("泉州 bus 🚌", 15)]
)
def test_utf8_len(text: str, size: int) -> None:
    assert utf8_len(text) == size


PARAGRAPH = "泉州市交通运输局提醒：春运期间请提前购票，合理安排出行时间。" * 12  # ~1 KB
LONG_TEXTS = {
    "paragraphs": "\n\n".join(f"{i}. {PARAGRAPH}" for i in range(6)),
    "lines": "\n".join(f"线路{i}：{'站点、' * 60}终点站" for i in range(20)),
    "sentences": "请注意安全。" * 1000,
    "no-breaks-chinese": "泉" * 3000,
    "emoji": "🚌" * 1500,
    "mixed-emoji": ("泉州🚌a" * 700),
    "ascii-words": " ".join(["bus"] * 3000),
    "one-huge-word": "x" * 5000,
    "zwj": "\U0001f9d1\u200d\U0001f692" * 500,
    "crlf": "\r\n".join(["公交线路调整通知，" * 30] * 10),
}


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


@pytest.mark.parametrize("text", LONG_TEXTS.values(), ids=list(LONG_TEXTS))
@pytest.mark.parametrize("limit", [2048, 600, 7])
def test_split_text_respects_limit(text: str, limit: int) -> None:
    chunks = split_text(text, limit)
    assert len(chunks) >= 2
    for chunk in chunks:
        assert 0 < utf8_len(chunk) <= limit
        chunk.encode("utf-8")  # whole code points only
        assert chunk.strip()
    assert _squash("".join(chunks)) == _squash(text)  # nothing lost, order kept


def test_split_text_prefers_paragraphs() -> None:
    paragraphs = [f"第{i}段：{PARAGRAPH}" for i in range(6)]
    chunks = split_text("\n\n".join(paragraphs))
    assert all(utf8_len(p) < 2048 for p in paragraphs)
    for chunk in chunks:  # every chunk is made of whole paragraphs
        assert all(part in paragraphs for part in chunk.split("\n\n"))
    assert "\n\n".join(chunks) == "\n\n".join(paragraphs)


def test_split_text_prefers_lines_over_characters() -> None:
    lines = [f"{i:03d} " + "路" * 100 for i in range(60)]
    chunks = split_text("\n".join(lines), 2048)
    assert "\n".join(chunks) == "\n".join(lines)
    assert all(line in lines for chunk in chunks for line in chunk.split("\n"))


def test_split_text_fills_chunks() -> None:
    chunks = split_text("泉" * 3000)  # 9000 bytes, no break points: 682 chars per chunk
    assert [utf8_len(c) for c in chunks] == [2046, 2046, 2046, 2046, 816]


@pytest.mark.parametrize("text", ["短消息", "x" * 2048, "泉" * 682, ""])
def test_split_text_short_is_unchanged(text: str) -> None:
    assert split_text(text) == ([text] if text else [])


def test_split_text_of_blanks_still_returns_chunks() -> None:
    chunks = split_text(" " * 5000)
    assert chunks and all(utf8_len(c) <= 2048 for c in chunks)


@pytest.mark.parametrize("limit", [0, 1, 3])
def test_split_text_limit_must_fit_a_code_point(limit: int) -> None:
    with pytest.raises(ValueError):
        split_text("泉州", limit)
