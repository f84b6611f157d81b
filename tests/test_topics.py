"""The seed's two other push topics, 市场监管动态 and 便民惠企措施 (实施细则 (八), issue 8 item 5),
in every place topics live: vocabulary and record -> topic rule, citizens' subscriptions,
templates and rendering, automatic drafts, and the sample pack that feeds them.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from bot.content.pack import SAMPLE_PACK, import_pack
from bot.settings import load_settings
from bot.store.models import Campaign, Follower
from bot.vocab import (
    DISTRICT_TOPICS,
    TOPIC_ALIASES,
    TOPIC_ORDER,
    Topic,
    record_topic,
    topic_named,
    topic_of_record,
)
from push import subscriptions as subs
from push.audience import preview
from push.campaigns import Audience, create_campaign
from push.drafts import drafts_for_changes
from push.render import source_value
from tests.wx import CITIZEN

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "config.example.toml"
MARKET, BENEFIT = Topic.MARKET.value, Topic.BENEFIT.value


# --- vocabulary ----------------------------------------------------------------------------


def test_the_seed_topics_are_topics_with_names_codes_and_an_order():
    assert (MARKET, BENEFIT) == ("市场监管动态", "便民惠企措施")
    assert TOPIC_ORDER[-2:] == (MARKET, BENEFIT) and len(TOPIC_ORDER) == len(Topic)
    assert topic_named("market") is Topic.MARKET and topic_named("benefit") is Topic.BENEFIT
    assert topic_named("市场监管动态") is Topic.MARKET
    assert TOPIC_ALIASES[MARKET][0] == MARKET and TOPIC_ALIASES[BENEFIT][0] == BENEFIT
    assert MARKET not in DISTRICT_TOPICS and BENEFIT not in DISTRICT_TOPICS


@pytest.mark.parametrize("kind, data, topic", [
    ("disclosure", {"category": "行政处罚"}, Topic.MARKET),
    ("disclosure", {"category": "行政许可"}, Topic.MARKET),
    ("disclosure", {"category": "“双随机、一公开”抽查"}, Topic.MARKET),
    ("disclosure", {"category": "监督检查"}, Topic.MARKET),
    ("disclosure", {"category": "信用信息"}, Topic.MARKET),
    ("disclosure", {"category": "财政资金"}, Topic.GOV),  # unchanged
    ("disclosure", {"category": "便民惠企措施"}, Topic.BENEFIT),
    # the flag is explicit, so it wins over the category and the 解读
    ("disclosure", {"category": "行政许可", "keywords": ["便民惠企"]}, Topic.BENEFIT),
    ("policy", {"keywords": ["货运", "惠企"]}, Topic.BENEFIT),
    ("policy", {"keywords": ["便民措施"], "interpretation": {"title": "t"}}, Topic.BENEFIT),
    ("policy", {"keywords": ["货运"], "interpretation": {"title": "t"}}, Topic.POLICY),
    ("policy", {"keywords": ["便民"]}, Topic.GOV),  # 便民 alone is not the flag
    ("notice", {"keywords": ["便民惠企"]}, Topic.TRAVEL),  # notices stay travel notices
    ("guide", {"keywords": ["便民惠企"]}, None),
])
def test_which_records_feed_the_new_topics(kind, data, topic):
    assert topic_of_record(kind, data) == topic


def test_record_topic_keeps_its_old_call():
    """push/campaigns.py still calls record_topic(kind, interpreted): same answers as before."""
    assert record_topic("disclosure") is Topic.GOV
    assert record_topic("policy", True) is Topic.POLICY


# --- the sample pack feeds them ------------------------------------------------------------


def test_the_sample_pack_has_public_records_for_each_new_topic():
    pack = tomllib.loads(SAMPLE_PACK.read_text(encoding="utf-8"))
    fed: dict[Topic, list[str]] = {}
    for kind in ("policy", "disclosure"):
        for record in pack[kind]:
            if record["disclosure"] == "主动公开":
                fed.setdefault(topic_of_record(kind, record), []).append(record["id"])
    assert {"disc-cf-2026-10", "disc-xkgs-2026q3", "disc-xypj-2025"} <= set(fed[Topic.MARKET])
    assert {"policy-bmhq-2026", "disc-jfqd-2026"} <= set(fed[Topic.BENEFIT])
    assert "disc-ajpc-ysq" not in fed.get(Topic.MARKET, [])  # 依申请公开: never pushed


# --- templates and rendering ---------------------------------------------------------------


def test_the_example_config_has_a_template_for_every_topic():
    templates = load_settings(EXAMPLE, env={}).push.templates
    assert set(templates) == {t.value for t in Topic}
    assert templates[MARKET]["fields"]["thing2"] == "category"


def test_category_source_names_the_disclosure_category_else_the_kind():
    def record(kind: str, **data: str) -> SimpleNamespace:
        return SimpleNamespace(kind=kind, data=data, district=None, notice_kind=None)

    disclosure = record("disclosure", category="行政处罚", published_on="2026-11-06")
    assert source_value("category", [disclosure], "t", None) == "行政处罚"
    assert source_value("category", [record("policy", issued_on="2026-11-20")], "t",
                        None) == "政策文件"


# --- subscriptions -------------------------------------------------------------------------


@pytest.mark.parametrize("text, confirmed", [
    ("订阅 市场监管", "已订阅：市场监管动态"),
    ("订阅 行政处罚", "已订阅：市场监管动态"),
    ("订阅 便民惠企措施", "已订阅：便民惠企措施"),
    ("订阅惠企政策", "已订阅：便民惠企措施"),
])
def test_citizens_subscribe_to_the_new_topics(wechat, runtime, text, confirmed):
    assert wechat.text(text).splitlines()[0] == confirmed
    with runtime.sessions() as s:
        assert [r.topic for r in subs.list_for(s, CITIZEN)] == [confirmed.split("：")[1]]


def test_the_new_topics_take_no_district(wechat, runtime):
    reply = wechat.text("订阅 市场监管 丰泽区")
    assert reply.startswith("“市场监管动态”不分县区")
    with runtime.sessions() as s:
        assert subs.list_for(s, CITIZEN) == []


# --- automatic drafts ----------------------------------------------------------------------

PACK = """
[[disclosure]]
id = "d-cf"
title = "2026年11月交通运输行政处罚决定信息公示"
category = "行政处罚"
issuer = "泉州市交通运输局"
formed_on = 2026-11-20
published_on = 2026-11-21
disclosure = "主动公开"
summary = "公示11月行政处罚决定。"

[[policy]]
id = "p-hq"
title = "货运便民惠企措施"
issuer = "泉州市交通运输局"
issued_on = 2026-11-20
disclosure = "主动公开"
keywords = ["便民惠企"]
summary = "证件全程网办。"
"""


def test_import_drafts_a_campaign_for_each_new_topic_with_its_template(runtime):
    runtime.settings = runtime.settings.replace(
        push={"templates": load_settings(EXAMPLE, env={}).push.templates})
    with runtime.sessions() as s:
        s.add(Follower(openid=CITIZEN, active=True))
        subs.subscribe(s, CITIZEN, MARKET, now=runtime.now())
        report = import_pack(s, tomllib.loads(PACK), source="t", now=runtime.now(),
                             districts=runtime.settings.bot.districts)
        ids = drafts_for_changes(s, runtime.settings, runtime.now(), report.changed_public)
        s.commit()
        drafts = {c.topic: c for c in s.scalars(select(Campaign).where(Campaign.id.in_(ids)))}
        assert set(drafts) == {MARKET, BENEFIT}
        market, benefit = drafts[MARKET], drafts[BENEFIT]
        assert market.record_keys == ["disclosure:d-cf"] and market.district is None
        assert benefit.record_keys == ["policy:p-hq"]
        template = market.payload["template"]
        assert template["template_id"] == "TPL_MARKET_SUPERVISION_DEMO"
        assert template["data"]["thing2"] == {"value": "行政处罚"}
        assert template["data"]["date3"] == {"value": "2026-11-21"}
        assert benefit.payload["template"]["template_id"] == "TPL_BENEFIT_MEASURE_DEMO"
        assert (preview(s, market), preview(s, benefit)) == (1, 0)  # the subscriber is counted


def test_a_campaign_to_everyone_with_a_market_record_uses_the_market_template(runtime):
    # no --topic: the template comes from the first record's topic (topic_of_record), so a
    # 行政处罚 disclosure pushed with --all must not pick the 政务公开 template
    runtime.settings = runtime.settings.replace(
        push={"templates": load_settings(EXAMPLE, env={}).push.templates})
    with runtime.sessions() as s:
        import_pack(s, tomllib.loads(PACK), source="t", now=runtime.now(),
                    districts=runtime.settings.bot.districts)
        campaign = create_campaign(s, runtime.settings, runtime.now(), actor="wang",
                                   refs=["disclosure:d-cf"], audience=Audience(all_followers=True),
                                   overrides={"thing1": "11月行政处罚公示"})
        assert campaign.payload["template"]["template_id"] == "TPL_MARKET_SUPERVISION_DEMO"
