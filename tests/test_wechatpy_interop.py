"""wechatpy as the independent peer: our crypto, replies and parser agree with it on the wire,
and bot.wechat.sdk's wechatpy client runs on our shared token against the simulator."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidSignatureException, WeChatClientException
from wechatpy.replies import ArticlesReply, TextReply, deserialize_reply

from bot.errors import MalformedMessage, SignatureError
from bot.wechat.client import WeChatClient
from bot.wechat.crypto import MessageCrypto
from bot.wechat.messages import parse, parse_xml_dict
from bot.wechat.replies import Article, news_reply, text_reply
from bot.wechat.sdk import SharedTokenWeChatPy, wechatpy_client
from push.token import MemoryTokenSource
from wechatsim import SimConfig, create_simulator, start_in_thread

DATA = Path(__file__).parent / "data"
TOKEN = "spamtest"
KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
APPID = "wx2c2769f8efd9abc2"
TIMESTAMP, NONCE = "1409735669", "1320562132"
ACCOUNT, CITIZEN = "gh_10f6c3c3ac5a", "oyORnuP8q7ou2gfYjqLzSIWZf0rs"
TEXTS = ["泉州到厦门的城际公交几点发车？", "a]]>b <x> & \"q\"", "x" * 3000, "换行\n\n第二段"]
SAFE_TEXTS = [t for t in TEXTS if "]]>" not in t]  # what wechatpy's renderer survives
SAMPLES = sorted(p.name for p in DATA.glob("*.xml") if p.name != "encrypted_official.xml")


# --- crypto: both directions ---------------------------------------------------------------


@pytest.mark.parametrize("text", TEXTS)
def test_we_encrypt_wechatpy_decrypts(text):
    ours = MessageCrypto(TOKEN, [KEY], APPID)
    xml = text_reply(CITIZEN, ACCOUNT, text, 1409735669)
    envelope = ours.encrypt_reply(xml, TIMESTAMP, NONCE)
    signature = parse_xml_dict(envelope)["MsgSignature"]
    peer = WeChatCrypto(TOKEN, KEY, APPID)
    assert peer.decrypt_message(envelope, signature, TIMESTAMP, NONCE) == xml


@pytest.mark.parametrize("text", TEXTS)
def test_wechatpy_encrypts_we_decrypt(text):
    xml = TextReply(source=ACCOUNT, target=CITIZEN, content=text, time=1409735669).render()
    envelope = WeChatCrypto(TOKEN, KEY, APPID).encrypt_message(xml, NONCE, TIMESTAMP)
    signature = parse_xml_dict(envelope)["MsgSignature"]
    ours = MessageCrypto(TOKEN, [KEY], APPID)
    assert ours.decrypt_message(envelope, signature, TIMESTAMP, NONCE) == xml


def test_official_envelope_reads_the_same_in_both():
    envelope = (DATA / "encrypted_official.xml").read_bytes()
    signature = "5d197aaffba7e9b25a30732f161a50dee96bd5fa"
    peer = WeChatCrypto(TOKEN, KEY, APPID).decrypt_message(envelope, signature, TIMESTAMP, NONCE)
    ours = MessageCrypto(TOKEN, [KEY], APPID).decrypt_message(envelope, signature, TIMESTAMP,
                                                              NONCE)
    assert ours == peer


def test_both_refuse_a_wrong_signature():
    envelope = WeChatCrypto(TOKEN, KEY, APPID).encrypt_message("<xml/>", NONCE, TIMESTAMP)
    with pytest.raises(SignatureError):
        MessageCrypto(TOKEN, [KEY], APPID).decrypt_message(envelope, "0" * 40, TIMESTAMP, NONCE)
    with pytest.raises(InvalidSignatureException):
        WeChatCrypto(TOKEN, KEY, APPID).decrypt_message(envelope, "0" * 40, TIMESTAMP, NONCE)


# --- replies: our XML read by wechatpy, wechatpy's XML read by us -----------------------------


@pytest.mark.parametrize("text", TEXTS)
def test_our_text_reply_reads_back_in_wechatpy(text):
    reply = deserialize_reply(text_reply(CITIZEN, ACCOUNT, text, 1700000000))
    assert isinstance(reply, TextReply)
    assert (reply.target, reply.source, reply.time, reply.content) == (
        CITIZEN, ACCOUNT, 1700000000, text)


def test_our_news_reply_reads_back_in_wechatpy():
    articles = [Article("停运通知", "台风停航", "https://example.org/a?x=1&y=2", "https://e.org/p.png"),
                Article("恢复", url="https://example.org/b")]
    reply = deserialize_reply(news_reply(CITIZEN, ACCOUNT, articles, 1700000000))
    assert isinstance(reply, ArticlesReply)
    assert [(a["title"], a["description"] or "", a["url"], a["image"] or "")
            for a in reply.articles] == [
        (a.title, a.description, a.url, a.pic_url) for a in articles]


@pytest.mark.parametrize("text", SAFE_TEXTS)
def test_wechatpy_text_reply_parses_in_ours(text):
    xml = TextReply(source=ACCOUNT, target=CITIZEN, content=text, time=1700000000).render()
    msg = parse(xml)
    assert (msg.to_user, msg.from_user, msg.create_time, msg.msg_type, msg.content) == (
        CITIZEN, ACCOUNT, 1700000000, "text", text)


def test_cdata_end_breaks_wechatpy_replies_not_ours():
    """Why our replies stay hand-written: wechatpy puts "]]>" into CDATA as is."""
    text = "见 a]]>b"
    with pytest.raises(MalformedMessage):
        parse(TextReply(source=ACCOUNT, target=CITIZEN, content=text, time=1).render())
    assert parse(text_reply(CITIZEN, ACCOUNT, text, 1)).content == text


def test_wechatpy_news_reply_parses_in_ours():
    reply = ArticlesReply(source=ACCOUNT, target=CITIZEN, time=1700000000)
    reply.add_article({"title": "停运", "description": "d", "image": "https://e.org/p.png",
                       "url": "https://e.org/a"})
    raw = parse_xml_dict(reply.render())
    item = raw["Articles"]["item"]
    assert (raw["MsgType"], raw["ArticleCount"], item["Title"], item["Url"]) == (
        "news", "1", "停运", "https://e.org/a")
    assert raw == parse_xml_dict(news_reply(CITIZEN, ACCOUNT, [Article(
        "停运", "d", "https://e.org/a", "https://e.org/p.png")], 1700000000))


# --- inbound messages: the recorded samples read the same in both parsers --------------------


@pytest.mark.parametrize("name", SAMPLES)
def test_inbound_samples_parse_alike(name):
    xml = (DATA / name).read_bytes()
    ours, peer = parse(xml), parse_message(xml)
    assert (ours.to_user, ours.from_user, ours.create_time) == (
        peer.target, peer.source, peer.time)
    if ours.is_event:
        # wechatpy renames a qrscene_ subscribe and strips the prefix of its key
        assert peer.type == "unknown" or peer.event in (ours.event, "subscribe_scan")
        return
    assert ours.msg_type == peer.type or peer.type == "unknown"
    for field, attr in (("content", "content"), ("media_id", "media_id"),
                        ("recognition", "recognition"), ("label", "label"),
                        ("title", "title"), ("url", "url")):
        value = getattr(peer, attr, None)
        if value is not None and peer.type != "unknown":
            assert getattr(ours, field) == value, field
    if ours.msg_id and peer.type != "unknown":
        assert int(ours.msg_id) == peer.id


# --- bot.wechat.sdk: wechatpy on our shared token and base URL --------------------------------


@pytest.fixture
def sim():
    """The simulator on a loopback port (wechatpy talks HTTP through its own session)."""
    running = start_in_thread(create_simulator(SimConfig(app_id="wxtestapp0000001",
                                                         app_secret="test-secret")))
    yield running
    running.stop()


def _stats(url: str) -> dict:
    return requests.get(f"{url}/_sim/stats", timeout=5).json()


def _ours(url: str) -> WeChatClient:
    holder: list[WeChatClient] = []
    tokens = MemoryTokenSource(lambda: holder[0].fetch_stable_token())
    holder.append(WeChatClient(url, "wxtestapp0000001", "test-secret", tokens, (1.0, 2.0)))
    return holder[0]


def test_sdk_client_uses_our_token_and_base_url(sim):
    ours = _ours(sim.url)
    peer = wechatpy_client(ours)
    assert isinstance(peer, SharedTokenWeChatPy) and peer.timeout == (1.0, 2.0)
    menu = {"button": [{"type": "click", "name": "查询", "key": "Q"}]}
    assert peer.menu.create(menu)["errcode"] == 0
    assert ours.get_menu() == {"menu": menu}  # the same account, seen through our client
    assert peer.tag.create("通勤")["name"] == "通勤"
    assert [t["name"] for t in peer.tag.get()] == ["通勤"]
    assert _stats(sim.url)["tokens"]["issued"] == 1  # one token, fetched by our source
    assert peer.access_token == ours.tokens.get()
    ours.close()


def test_sdk_client_refreshes_through_our_source_once(sim):
    ours = _ours(sim.url)
    peer = wechatpy_client(ours)
    first = ours.tokens.get()
    requests.post(f"{sim.url}/_sim/invalidate_token", json={}, timeout=5)
    assert peer.menu.create({"button": [{"type": "click", "name": "查", "key": "Q"}]})[
        "errcode"] == 0
    assert ours.tokens.get() != first  # the shared source was refreshed, and ours uses it
    assert ours.get_menu()["menu"]["button"][0]["key"] == "Q"
    assert _stats(sim.url)["tokens"]["issued"] == 2
    ours.close()


def test_sdk_client_stops_when_the_refreshed_token_is_refused_too():
    class Refused:
        """A token source whose every token WeChat refuses."""

        calls = 0

        def get(self) -> str:
            return "stale"

        def invalidate(self, failed: str) -> None:
            self.calls += 1

    source = Refused()
    peer = SharedTokenWeChatPy("http://127.0.0.1:9", "wxtestapp0000001", source, (0.5, 0.5))
    assert peer.access_token == "stale"
    peer.fetch_access_token()
    with pytest.raises(WeChatClientException):
        peer.fetch_access_token()
    assert source.calls == 1
