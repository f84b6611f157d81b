"""Parsing inbound XML: every message type and event, consent events, and hostile XML."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import MalformedMessage
from bot.wechat.messages import ConsentItem, Message, parse, parse_xml_dict

DATA = Path(__file__).parent / "data"
OPENID = "oyORnuP8q7ou2gfYjqLzSIWZf0rs"
GH = "gh_10f6c3c3ac5a"
TPL1 = "VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc"
TPL2 = "9nLIlbOQZC5Y89AZteFEux3WCXRRRG5Wfzkpssu4bLI"
TICKET = (
    "gQH47joAAAAAAAAAASxodHRwOi8vd2VpeGluLnFxLmNvbS9xL2taZ2Z3TVRtNzJXV1Brb3ZhYmJJ"
    "AAIEZ23sUwMEmm3sUw=="
)


def sample(name: str) -> Message:
    """Parse a recorded sample from tests/data."""
    return parse((DATA / f"{name}.xml").read_bytes())


SAMPLES = {
    "text": {
        "msg_type": "text",
        "content": "泉州到厦门的城际公交几点发车？",
        "msg_id": "24351234567890123456",
    },
    "image": {
        "msg_type": "image",
        "pic_url": "http://mmbiz.qpic.cn/mmbiz_jpg/abc123/0",
        "media_id": "media_id_image_1",
    },
    "voice": {
        "msg_type": "voice",
        "media_id": "media_id_voice_1",
        "format": "amr",
        "recognition": "驾驶证怎么换证",
    },
    "video": {"msg_type": "video", "media_id": "media_id_video_1"},
    "shortvideo": {"msg_type": "shortvideo", "media_id": "media_id_shortvideo_1"},
    "location": {
        "msg_type": "location",
        "location_x": "24.874452",
        "location_y": "118.675676",
        "scale": "15",
        "label": "福建省泉州市鲤城区",
    },
    "link": {
        "msg_type": "link",
        "title": "泉州交通出行指南",
        "description": "公交、出租、网约车一览",
        "url": "https://mp.weixin.qq.com/s/example",
    },
    "event_subscribe": {"msg_type": "event", "event": "subscribe", "event_key": ""},
    "event_subscribe_qrscene": {
        "event": "subscribe",
        "event_key": "qrscene_station_12",
        "ticket": TICKET,
    },
    "event_unsubscribe": {"event": "unsubscribe"},
    "event_scan": {"event": "scan", "event_key": "station_12", "ticket": TICKET},
    "event_location": {
        "event": "location",
        "latitude": "24.874452",
        "longitude": "118.675676",
        "precision": "65.000000",
    },
    "event_click": {"event": "click", "event_key": "MENU_ROAD_STATUS"},
    "event_view": {"event": "view", "event_key": "https://jtj.quanzhou.gov.cn/"},
    "event_templatesendjobfinish": {"event": "templatesendjobfinish", "msg_id": "200163836"},
    "event_masssendjobfinish": {"event": "masssendjobfinish", "msg_id": "1000001625"},
    "unknown_type": {"msg_type": "miniprogrampage", "title": "泉州公交", "event": ""},
    "unknown_event": {"msg_type": "event", "event": "scancode_push", "event_key": "MENU_SCAN"},
}


@pytest.mark.parametrize("name,expected", SAMPLES.items(), ids=list(SAMPLES))
def test_recorded_samples_parse(name: str, expected: dict[str, object]) -> None:
    msg = sample(name)
    assert (msg.to_user, msg.from_user) == (GH, OPENID)
    assert isinstance(msg.create_time, int) and msg.create_time > 1_600_000_000
    for attr, value in expected.items():
        assert getattr(msg, attr) == value, attr
    assert msg.consent == ()


def test_raw_keeps_unflattened_fields() -> None:
    assert sample("video").raw["ThumbMediaId"] == "thumb_media_id_1"
    assert sample("event_templatesendjobfinish").raw["Status"] == "success"
    assert sample("event_masssendjobfinish").raw["SentCount"] == "75"
    assert sample("unknown_event").raw["ScanCodeInfo"] == {
        "ScanType": "qrcode",
        "ScanResult": "https://example.org/",
    }


def test_bytes_and_str_parse_alike() -> None:
    body = (DATA / "text.xml").read_bytes()
    assert parse(body) == parse(body.decode("utf-8"))


def test_content_kept_verbatim() -> None:
    body = (
        "<xml><ToUserName>gh</ToUserName><FromUserName>o1</FromUserName><CreateTime>1</CreateTime>"
        "<MsgType>TEXT</MsgType><Content><![CDATA[  a <b> & ]]]]><![CDATA[> \n]]></Content></xml>"
    )
    msg = parse(body)
    assert msg.msg_type == "text"
    assert msg.content == "  a <b> & ]]> \n"


def test_equality_ignores_raw_and_hash_works() -> None:
    a, b = sample("text"), sample("text")
    assert a == b and hash(a) == hash(b)
    assert "raw" not in repr(a)
    assert a != sample("image")


# --- dedupe keys --------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,key",
    [
        ("text", f"msg:{OPENID}:24351234567890123456"),
        ("voice", f"msg:{OPENID}:24351234567890123458"),
        ("event_click", f"evt:{OPENID}:1700000105:click:MENU_ROAD_STATUS"),
        ("event_subscribe_qrscene", f"evt:{OPENID}:1700000101:subscribe:qrscene_station_12"),
        ("event_subscribe", f"evt:{OPENID}:1700000100:subscribe:"),
        # events carrying MsgID still dedupe as events
        ("event_templatesendjobfinish", f"evt:{OPENID}:1700000107:templatesendjobfinish:"),
        # consent events add a digest of their entries: two in one second are two events
        ("consent_popup_one",
         f"evt:{OPENID}:1610969440:subscribe_msg_popup_event::87bf828178e04387"),
    ],
)
def test_dedupe_key(name: str, key: str) -> None:
    assert sample(name).dedupe_key == key


def test_dedupe_key_of_message_without_msgid_falls_back() -> None:
    msg = parse(
        "<xml><ToUserName>gh</ToUserName><FromUserName>o1</FromUserName>"
        "<CreateTime>7</CreateTime><MsgType>text</MsgType><Content>x</Content></xml>"
    )
    assert msg.dedupe_key == "evt:o1:7::"


def test_dedupe_key_differs_across_users_with_same_msgid() -> None:
    template = (
        "<xml><ToUserName>gh</ToUserName><FromUserName>{}</FromUserName><CreateTime>7"
        "</CreateTime><MsgType>text</MsgType><MsgId>42</MsgId></xml>"
    )
    assert parse(template.format("o1")).dedupe_key != parse(template.format("o2")).dedupe_key


# --- consent events -------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,event,items",
    [
        ("consent_popup_one", "subscribe_msg_popup_event", (ConsentItem(TPL1, "accept", "2"),)),
        (
            "consent_popup_many",
            "subscribe_msg_popup_event",
            (ConsentItem(TPL1, "accept", "2"), ConsentItem(TPL2, "reject", "2")),
        ),
        ("consent_change", "subscribe_msg_change_event", (ConsentItem(TPL1, "reject"),)),
        (
            "consent_change_popup_wrapper",
            "subscribe_msg_change_event",
            (ConsentItem(TPL1, "reject"),),
        ),
        (
            "consent_sent",
            "subscribe_msg_sent_event",
            (
                ConsentItem(
                    TPL1, "", msg_id="1700827132819554304", error_code="0", error_status="success"
                ),
            ),
        ),
        (
            "consent_sent_many",
            "subscribe_msg_sent_event",
            (
                ConsentItem(
                    TPL1, "", msg_id="1700827132819554304", error_code="0", error_status="success"
                ),
                ConsentItem(
                    TPL2,
                    "",
                    msg_id="1700827132819554305",
                    error_code="20001",
                    error_status="failed:user block",
                ),
            ),
        ),
    ],
)
def test_consent_events(name: str, event: str, items: tuple[ConsentItem, ...]) -> None:
    msg = sample(name)
    assert msg.msg_type == "event" and msg.event == event
    assert msg.consent == items


def test_consent_single_list_is_a_mapping_in_raw() -> None:
    """The reason normalisation is needed: one <List> parses to a dict, several to a list."""
    assert isinstance(sample("consent_popup_one").raw["SubscribeMsgPopupEvent"]["List"], dict)
    assert isinstance(sample("consent_popup_many").raw["SubscribeMsgPopupEvent"]["List"], list)


@pytest.mark.parametrize(
    "inner",
    [
        "",
        "<SubscribeMsgPopupEvent></SubscribeMsgPopupEvent>",
        "<SubscribeMsgPopupEvent><List>text</List></SubscribeMsgPopupEvent>",
        "<SubscribeMsgPopupEvent><List><PopupScene>2</PopupScene></List></SubscribeMsgPopupEvent>",
        "<SubscribeMsgSentEvent><List><TemplateId>T</TemplateId></List></SubscribeMsgSentEvent>",
    ],
    ids=["absent", "empty", "text-list", "no-template", "wrong-wrapper"],
)
def test_consent_event_without_usable_entries(inner: str) -> None:
    msg = parse(
        "<xml><ToUserName>gh</ToUserName><FromUserName>o1</FromUserName><CreateTime>1"
        "</CreateTime><MsgType>event</MsgType><Event>subscribe_msg_popup_event</Event>"
        f"{inner}</xml>"
    )
    assert msg.event == "subscribe_msg_popup_event"
    assert msg.consent == ()


# --- hostile and malformed XML ---------------------------------------------------------

HEAD = "<ToUserName>gh</ToUserName><FromUserName>o1</FromUserName>"
TAIL = "<CreateTime>1</CreateTime><MsgType>text</MsgType>"
BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<xml><ToUserName>gh</ToUserName><FromUserName>o1</FromUserName><CreateTime>1</CreateTime>
<MsgType>text</MsgType><Content>&lol9;</Content></xml>"""
XXE = f"""<?xml version="1.0"?>
<!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<xml>{HEAD}<CreateTime>1</CreateTime><MsgType>text</MsgType><Content>&xxe;</Content></xml>"""
XXE_PARAMETER = f"""<?xml version="1.0"?>
<!DOCTYPE xml [<!ENTITY % ext SYSTEM "http://127.0.0.1:1/evil.dtd"> %ext;]>
<xml>{HEAD}<CreateTime>1</CreateTime><MsgType>text</MsgType></xml>"""
DOCTYPE_ONLY = f"""<!DOCTYPE xml><xml>{HEAD}{TAIL}</xml>"""
EXTERNAL_DTD = f"""<!DOCTYPE xml SYSTEM "file:///etc/passwd">
<xml>{HEAD}<CreateTime>1</CreateTime><MsgType>text</MsgType></xml>"""
DEEP = f"<xml>{HEAD}{TAIL}" + "<a>" * 50 + "x" + "</a>" * 50 + "</xml>"

MALFORMED = {
    "empty": b"",
    "blank": b"  \n ",
    "not-xml": b"hello",
    "unclosed": b"<xml><ToUserName>gh</ToUserName>",
    "mismatched": b"<xml><a></b></xml>",
    "two-roots": b"<xml></xml><xml></xml>",
    "json": b'{"ToUserName": "gh"}',
    "wrong-root": f"<message>{HEAD}<CreateTime>1</CreateTime><MsgType>text</MsgType></message>",
    "billion-laughs": BILLION_LAUGHS,
    "xxe-file": XXE,
    "xxe-parameter": XXE_PARAMETER,
    "doctype": DOCTYPE_ONLY,
    "external-dtd": EXTERNAL_DTD,
    "too-deep": DEEP,
    "gbk-bytes": f"<xml>{HEAD}{TAIL}<Content>泉州</Content></xml>".encode("gbk"),
    "bad-utf8": b"<xml><Content>\xff\xfe</Content></xml>",
    "missing-to": f"<xml><FromUserName>o1</FromUserName>{TAIL}</xml>",
    "missing-from": f"<xml><ToUserName>gh</ToUserName>{TAIL}</xml>",
    "missing-time": f"<xml>{HEAD}<MsgType>text</MsgType></xml>",
    "missing-type": f"<xml>{HEAD}<CreateTime>1</CreateTime></xml>",
    "empty-type": f"<xml>{HEAD}<CreateTime>1</CreateTime><MsgType><![CDATA[ ]]></MsgType></xml>",
    "structured-from": "<xml><ToUserName>gh</ToUserName><FromUserName><a>o1</a></FromUserName>"
    "<CreateTime>1</CreateTime><MsgType>text</MsgType></xml>",
    "time-not-int": f"<xml>{HEAD}<CreateTime>soon</CreateTime><MsgType>text</MsgType></xml>",
    "time-negative": f"<xml>{HEAD}<CreateTime>-5</CreateTime><MsgType>text</MsgType></xml>",
    "time-float": f"<xml>{HEAD}<CreateTime>1.5</CreateTime><MsgType>text</MsgType></xml>",
}


@pytest.mark.parametrize("body", MALFORMED.values(), ids=list(MALFORMED))
def test_malformed_refused(body: bytes | str) -> None:
    with pytest.raises(MalformedMessage):
        parse(body)


@pytest.mark.parametrize(
    "body",
    [BILLION_LAUGHS, XXE, DOCTYPE_ONLY, "<root/>", b""],
    ids=["laughs", "xxe", "doctype", "root", "empty"],
)
def test_parse_xml_dict_refuses_too(body: bytes | str) -> None:
    with pytest.raises(MalformedMessage):
        parse_xml_dict(body)


def test_parse_xml_dict_shapes() -> None:
    parsed = parse_xml_dict(
        '<?xml version="1.0" encoding="UTF-8"?><xml><A>1</A><B/><C><D>x</D><D>y</D><D>z</D></C>'
        "<!-- note --><E><F><G>deep</G></F></E></xml>"
    )
    assert parsed == {"A": "1", "B": "", "C": {"D": ["x", "y", "z"]}, "E": {"F": {"G": "deep"}}}


def test_parse_xml_dict_depth_limit_is_configurable() -> None:
    body = "<xml><a><b><c>x</c></b></a></xml>"
    assert parse_xml_dict(body, max_depth=3) == {"a": {"b": {"c": "x"}}}
    with pytest.raises(MalformedMessage):
        parse_xml_dict(body, max_depth=2)


@pytest.mark.parametrize(
    "name", ["billion-laughs", "xxe-file", "xxe-parameter", "doctype", "external-dtd"]
)
def test_dtd_refused_before_any_expansion(name: str) -> None:
    """Refused as a forbidden construct, not by accident of a later check."""
    with pytest.raises(MalformedMessage, match="forbidden XML construct"):
        parse_xml_dict(MALFORMED[name])
