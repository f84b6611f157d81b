"""The domain lexicon loader: validation, and the lexicon applied to every index."""

from __future__ import annotations

from pathlib import Path

import pytest

from handlers.search import SearchIndex, doc_from_record
from handlers.search import domain as domain_mod
from handlers.search.domain import (
    EMPTY,
    DomainLexicon,
    LexiconError,
    load_lexicon,
    parse_lexicon,
)

GOOD = """
# test lexicon
version = 1

[[group]]
domain = "taxi"
official = "出租汽车"
everyday = ["出租车", "的士", "打车"]
source = "《巡游出租汽车经营服务管理规定》"

[[group]]
domain = "freight"
official = "道路货物运输"
everyday = ["拉货", "货运", "ETC"]
source = "《道路货物运输及站场管理规定》"
"""


def group(**fields: object) -> str:
    """A one-group lexicon with the given fields over valid defaults."""
    values = {"domain": "taxi", "official": "出租汽车", "everyday": ["的士"], "source": "规定"}
    values.update(fields)
    lines = ["version = 1", "[[group]]"]
    for key, value in values.items():
        if isinstance(value, list):
            lines.append(f"{key} = [{', '.join(repr(v) for v in value)}]".replace("'", '"'))
        else:
            lines.append(f'{key} = "{value}"')
    return "\n".join(lines)


def test_parse_good_lexicon() -> None:
    lexicon = parse_lexicon(GOOD)
    assert [g.official for g in lexicon.groups] == ["出租汽车", "道路货物运输"]
    assert lexicon.pairs == 6
    # words are normalised like questions are (ETC -> etc), and every word marks transport
    assert {"出租汽车", "打车", "拉货", "etc"} <= lexicon.words
    assert lexicon.synonym_groups()[0] == ("出租汽车", "出租车", "的士", "打车")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (group(domain="weather"), "unknown domain 'weather'"),
        (group(everyday=["的"]), "not a whole word"),
        (group(everyday=["打 车"]), "not a whole word"),
        (group(everyday=["的士，打的"]), "not a whole word"),
        (group(official="车"), "not a whole word"),
        (group(everyday=[]), "non-empty array"),
        (group(everyday=["的士", "的士"]), "repeated in the group"),
        (group(source=""), "source is required"),
        (group(colour="red"), "unknown keys ['colour']"),
        (group().replace("version = 1", "version = 2"), "version must be 1"),
        ("version = 1\n[[group\n", "not valid TOML"),
    ],
)
def test_invalid_lexicon_is_refused(text: str, message: str) -> None:
    with pytest.raises(LexiconError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_lexicon(text)


def test_everyday_word_in_two_groups_is_refused() -> None:
    text = GOOD + """
[[group]]
domain = "ridehail"
official = "网络预约出租汽车"
everyday = ["网约车", "打车"]
source = "《网络预约出租汽车经营服务管理暂行办法》"
"""
    with pytest.raises(LexiconError, match="'打车' already in group 0"):
        parse_lexicon(text)


def test_every_problem_is_listed() -> None:
    text = group(domain="x", source="", everyday=["a"])
    with pytest.raises(LexiconError) as caught:
        parse_lexicon(text)
    assert all(part in str(caught.value) for part in ("unknown domain", "source", "whole word"))


def test_load_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "lexicon.toml"
    path.write_text(group(domain="nope"), encoding="utf-8")
    with pytest.raises(LexiconError, match=str(path)):
        load_lexicon(path)
    with pytest.raises(LexiconError, match="cannot read"):
        load_lexicon(tmp_path / "missing.toml")
    path.write_text(GOOD, encoding="utf-8")
    assert load_lexicon(path).pairs == 6


def test_shipped_lexicon_loads_once_per_process() -> None:
    if not domain_mod.LEXICON_PATH.exists():
        pytest.fail(f"the engine ships its domain lexicon: {domain_mod.LEXICON_PATH}")
    domain_mod.domain_lexicon.cache_clear()
    first = domain_mod.domain_lexicon()
    assert first.pairs >= 400  # "several hundred pairs" (issue 8, item 6)
    assert domain_mod.domain_lexicon() is first
    assert {g.domain for g in first.groups} <= domain_mod.DOMAINS


RECORDS = [
    ("faq", {"id": "ts", "question": "出租汽车拒载怎么投诉",
             "answer": "记下车牌号，拨打交通运输服务监督电话投诉。"}),
    ("guide", {"id": "hy", "title": "道路货物运输经营许可", "materials": ["申请表"],
               "steps": ["提交申请", "领证"]}),
    ("guide", {"id": "sb", "title": "公交IC卡补办", "materials": ["身份证"],
               "steps": ["到服务网点补办"]}),
]


def index(lexicon: DomainLexicon, synonyms: list[list[str]] | None = None) -> SearchIndex:
    """An index over RECORDS with the given lexicon."""
    return SearchIndex([doc_from_record(k, r) for k, r in RECORDS], synonyms or [],
                       lexicon=lexicon)


def test_lexicon_applies_to_a_pack_without_synonyms() -> None:
    lexicon = parse_lexicon(GOOD)
    with_lexicon = index(lexicon).search("打车被拒载了")
    assert with_lexicon.hits and with_lexicon.hits[0].key == "faq:ts"
    assert index(lexicon).search("我想拉货要办什么").hits[0].key == "guide:hy"
    assert not index(EMPTY).search("我想拉货要办什么").hits  # nothing shared without it


def test_pack_synonyms_add_to_the_lexicon() -> None:
    lexicon = parse_lexicon(GOOD)
    both = index(lexicon, [["公交卡", "公交ic卡", "一卡通"]])
    assert both.search("一卡通补办").hits[0].key == "guide:sb"
    assert both.search("的士拒载").hits[0].key == "faq:ts"


def test_lexicon_words_mark_transport() -> None:
    lexicon = parse_lexicon(GOOD)
    assert index(lexicon).search("拉货的车能进城吗").transport
    assert not index(lexicon).search("明天会下雨吗").transport
    assert not index(EMPTY).search("拉货的车能进城吗").transport


@pytest.mark.parametrize("word", ["国道", "省道", "公路", "班车", "交通", "共享单车", "校车"])
def test_shipped_lexicon_knows_everyday_transport_words(word: str) -> None:
    # standalone words: each marks a question as transport (the fallback names 12328)
    assert word in domain_mod.domain_lexicon().words


def test_shipped_lexicon_maps_national_roads_to_the_official_term() -> None:
    groups = [set(g) for g in domain_mod.domain_lexicon().synonym_groups()]
    assert any({"国道", "省道", "国省道"} <= g for g in groups)
