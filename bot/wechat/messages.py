"""Parse inbound WeChat XML into a frozen Message, safely.

Hand-written rather than wechatpy's parser because (wechat-platform.md, "Inbound messages"
and "Subscription consent"): XML must be parsed with DTDs, entity expansion and external
entities off (XXE in WeChat callbacks was a real 2018 advisory), and wechatpy 1.8.18
returns UnknownMessage for the three subscribe-notification consent events, whose single
``<List>`` parses to a mapping rather than a list. Pure standard library plus defusedxml.
"""

from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

import defusedxml
import defusedxml.ElementTree as DET

from bot.errors import MalformedMessage

__all__ = ["ConsentItem", "Message", "parse", "parse_xml_dict", "CONSENT_EVENTS", "consent_digest"]

# Nesting below <xml>: the deepest known shape is SendPicsInfo/PicList/item/PicMd5Sum (4).
DEFAULT_MAX_DEPTH = 6

# Event (lowercased) -> the wrapper element(s) holding its <List> entries, preferred first.
# The change event is also accepted inside <SubscribeMsgPopupEvent> (an old doc example).
CONSENT_EVENTS: dict[str, tuple[str, ...]] = {
    "subscribe_msg_popup_event": ("SubscribeMsgPopupEvent",),
    "subscribe_msg_change_event": ("SubscribeMsgChangeEvent", "SubscribeMsgPopupEvent"),
    "subscribe_msg_sent_event": ("SubscribeMsgSentEvent",),
}

_CREATE_TIME = re.compile(r"[0-9]{1,12}")

# Longest accepted value per field: the columns they end up in (openid String(64),
# consent template_id String(128), scene String(64)), with room for WeChat's own values.
# Refused at parse time (a 4xx) so that no later write can fail on an overlong value.
FIELD_LIMITS: dict[str, int] = {
    "ToUserName": 64, "FromUserName": 64, "MsgType": 32, "Event": 64, "EventKey": 1024,
    "MsgId": 64, "MsgID": 64, "Ticket": 256, "MediaId": 256, "Format": 32, "PicUrl": 1024,
    "Url": 2048, "Location_X": 32, "Location_Y": 32, "Latitude": 32, "Longitude": 32,
    "Precision": 32, "Scale": 32, "Label": 512, "Title": 1024, "Description": 4096,
    "TemplateId": 128, "SubscribeStatusString": 32, "PopupScene": 64, "ErrorCode": 32,
    "ErrorStatus": 128,
}

XmlValue = str | dict[str, "XmlValue"] | list["XmlValue"]


def _element_to_value(elem: ET.Element, depth: int, max_depth: int) -> XmlValue:
    """Turn an element into text (leaf) or a dict of children (repeated tags -> list)."""
    children = list(elem)
    if not children:
        return elem.text or ""
    if depth >= max_depth:
        raise MalformedMessage(f"XML nested deeper than {max_depth} levels")
    out: dict[str, XmlValue] = {}
    for child in children:
        if not isinstance(child.tag, str):  # comments / processing instructions
            continue
        value = _element_to_value(child, depth + 1, max_depth)
        if child.tag in out:
            previous = out[child.tag]
            if isinstance(previous, list):
                previous.append(value)
            else:
                out[child.tag] = [previous, value]
        else:
            out[child.tag] = value
    return out


_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")

# The fast path: the flat shape every citizen message has (<xml> holding leaf elements whose
# value is one CDATA section or plain text without markup, entities or references). Such a
# document cannot carry a DTD, an entity or a nested element, so reading it with these
# patterns is as safe as the parser and yields the same dict; any other shape (attributes,
# comments, nesting, repeated tags, `&`) goes to the defusedxml parser below.
_XML_SPACE = "[ \t\r\n]*"  # XML's white space (not str.isspace: U+3000 is text to XML)
_FLAT_OPEN = re.compile(_XML_SPACE + "<xml>")
_FLAT_CLOSE = re.compile(_XML_SPACE + "</xml>" + _XML_SPACE)
_FLAT_FIELD = re.compile(_XML_SPACE + r"<([A-Za-z_][A-Za-z0-9_]{0,63})>(?:<!\[CDATA\["
                         r"([^\]]*(?:\](?!\]>)[^\]]*)*)\]\]>|([^<>&\]]*))</\1>")


def _flat_dict(text: str) -> dict[str, object] | None:
    """The fields of a flat message document, or None when it is not of that shape."""
    start = _FLAT_OPEN.match(text)
    if start is None:
        return None
    out: dict[str, object] = {}
    pos = start.end()
    while (field_ := _FLAT_FIELD.match(text, pos)) is not None:
        tag, cdata, plain = field_.groups()
        if tag in out:  # repeated element: the parser makes a list of it
            return None
        value = cdata or plain or ""
        # XML end-of-line handling, as the parser does (CDATA included)
        out[tag] = value.replace("\r\n", "\n").replace("\r", "\n") if "\r" in value else value
        pos = field_.end()
    return out if _FLAT_CLOSE.fullmatch(text, pos) else None


def parse_xml_dict(data: bytes | str, max_depth: int = DEFAULT_MAX_DEPTH) -> dict[str, object]:
    """Parse a WeChat <xml> document into a dict; MalformedMessage on anything unsafe or bad."""
    if isinstance(data, bytes | bytearray | memoryview):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedMessage("body is not UTF-8") from exc
    elif isinstance(data, str):
        text = data
    else:
        raise MalformedMessage(f"body has type {type(data).__name__}")
    if not text.strip():
        raise MalformedMessage("empty body")
    # A citizen's text may carry control characters that XML 1.0 cannot hold; drop them
    # rather than refuse the whole message (the signature does not cover the body).
    text = _XML_ILLEGAL.sub("", text)
    flat = _flat_dict(text)
    if flat is not None:
        return flat
    try:
        # Platform rule: no DTD, no entity expansion, no external entities (XXE).
        root = DET.fromstring(text, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except defusedxml.DefusedXmlException as exc:
        raise MalformedMessage(f"forbidden XML construct: {type(exc).__name__}") from exc
    except (ET.ParseError, ValueError) as exc:
        raise MalformedMessage(f"not well-formed XML: {exc}") from exc
    if root.tag != "xml":
        raise MalformedMessage(f"root element is <{root.tag}>, not <xml>")
    value = _element_to_value(root, 0, max_depth)
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class ConsentItem:
    """One template entry of a subscribe-notification consent event."""

    template_id: str
    status: str  # "accept" / "reject" (popup, change); "" for the sent event
    popup_scene: str = ""
    msg_id: str = ""
    error_code: str = ""
    error_status: str = ""


@dataclass(frozen=True)
class Message:
    """An inbound message or event, flattened; `raw` keeps every field as parsed."""

    to_user: str
    from_user: str
    create_time: int
    msg_type: str
    msg_id: str = ""
    content: str = ""
    event: str = ""
    event_key: str = ""
    recognition: str = ""
    media_id: str = ""
    format: str = ""
    pic_url: str = ""
    location_x: str = ""
    location_y: str = ""
    scale: str = ""
    label: str = ""
    latitude: str = ""
    longitude: str = ""
    precision: str = ""
    url: str = ""
    title: str = ""
    description: str = ""
    ticket: str = ""
    consent: tuple[ConsentItem, ...] = ()
    raw: dict[str, object] = field(default_factory=dict, compare=False, hash=False, repr=False)

    @property
    def is_event(self) -> bool:
        """True for events (MsgType event), false for citizen messages."""
        return self.msg_type == "event"

    @property
    def dedupe_key(self) -> str:
        """Retry-dedupe key: From+MsgId for messages, From+CreateTime+Event+EventKey otherwise."""
        # Platform rule: MsgId alone has collided across users; events carry no MsgId.
        if not self.is_event and self.msg_id:
            return f"msg:{self.from_user}:{self.msg_id}"
        key = f"evt:{self.from_user}:{self.create_time}:{self.event}:{self.event_key}"
        # consent events have no EventKey: two in one second differ only by their <List>
        return f"{key}:{consent_digest(self.consent)}" if self.consent else key


def consent_digest(items: tuple[ConsentItem, ...]) -> str:
    """A short digest of a consent event's entries: equal for a retry, not for another event."""
    text = "\n".join("\t".join((i.template_id, i.status, i.popup_scene, i.msg_id,
                                i.error_code, i.error_status)) for i in items)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _text(raw: dict[str, object], key: str) -> str:
    """An optional scalar field; absent or structured values read as ""; overlong refused."""
    value = raw.get(key, "")
    if not isinstance(value, str):
        return ""
    _check_length(key, value)
    return value


def _check_length(key: str, value: str) -> None:
    limit = FIELD_LIMITS.get(key)
    if limit is not None and len(value) > limit:
        raise MalformedMessage(f"field {key} longer than {limit} characters")


# XML tag -> (Message field, stripped) for the optional scalar fields `parse` copies.
_OPTIONAL: dict[str, tuple[str, bool]] = {
    "Content": ("content", False), "EventKey": ("event_key", True),
    "Recognition": ("recognition", False), "MediaId": ("media_id", True),
    "Format": ("format", True), "PicUrl": ("pic_url", True),
    "Location_X": ("location_x", True), "Location_Y": ("location_y", True),
    "Scale": ("scale", True), "Label": ("label", False), "Latitude": ("latitude", True),
    "Longitude": ("longitude", True), "Precision": ("precision", True), "Url": ("url", True),
    "Title": ("title", False), "Description": ("description", False),
    "Ticket": ("ticket", True),
}


def _optional_fields(raw: dict[str, object]) -> dict[str, str]:
    """The optional scalar fields the message holds, by Message field name: one pass over
    what is there rather than a lookup per known field (absent or structured: the default
    ""; overlong: refused)."""
    out: dict[str, str] = {}
    for tag, value in raw.items():
        spec = _OPTIONAL.get(tag)
        if spec is not None and value and isinstance(value, str):
            _check_length(tag, value)
            out[spec[0]] = value.strip() if spec[1] else value
    return out


def _required(raw: dict[str, object], key: str) -> str:
    """A required scalar field, stripped; MalformedMessage when absent, empty or structured."""
    value = _text(raw, key).strip()
    if not value:
        raise MalformedMessage(f"missing field {key}")
    return value


def _as_list(value: object) -> list[object]:
    """Normalise a repeated element: one entry parses to a mapping, several to a list."""
    if isinstance(value, list):
        return value
    if value in (None, ""):
        return []
    return [value]


def _consent_items(raw: dict[str, object], event: str) -> tuple[ConsentItem, ...]:
    """Collect the <List> entries of a consent event from whichever wrapper carries them."""
    for wrapper in CONSENT_EVENTS.get(event, ()):
        container = raw.get(wrapper)
        if not isinstance(container, dict):
            continue
        items = []
        for entry in _as_list(container.get("List")):
            if not isinstance(entry, dict):
                continue
            template_id = _text(entry, "TemplateId").strip()
            if not template_id:  # nothing a handler could act on
                continue
            items.append(
                ConsentItem(
                    template_id=template_id,
                    status=_text(entry, "SubscribeStatusString").strip().lower(),
                    popup_scene=_text(entry, "PopupScene").strip(),
                    msg_id=(_text(entry, "MsgID") or _text(entry, "MsgId")).strip(),
                    error_code=_text(entry, "ErrorCode").strip(),
                    error_status=_text(entry, "ErrorStatus").strip(),
                )
            )
        return tuple(items)
    return ()


def parse(data: bytes | str) -> Message:
    """Parse an inbound (already decrypted) WeChat XML body into a Message."""
    raw = parse_xml_dict(data)
    create_time = _required(raw, "CreateTime")
    if not _CREATE_TIME.fullmatch(create_time):
        raise MalformedMessage("CreateTime is not an integer")
    msg_type = _required(raw, "MsgType").lower()
    event = _text(raw, "Event").strip().lower() if msg_type == "event" else ""
    return Message(
        to_user=_required(raw, "ToUserName"),
        from_user=_required(raw, "FromUserName"),
        create_time=int(create_time),
        msg_type=msg_type,
        # TEMPLATESENDJOBFINISH and MASSSENDJOBFINISH spell it MsgID.
        msg_id=(_text(raw, "MsgId") or _text(raw, "MsgID")).strip(),
        event=event,
        consent=_consent_items(raw, event),
        raw=raw,
        **_optional_fields(raw),
    )
