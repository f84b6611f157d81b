"""The three outcomes of a question, decided by the engine (issue 8, item 1).

A confident answer, a list of only the relevant records (never padded), or no hits at all
(the honest fallback), plus the transport flag that picks the fallback's hotline.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from handlers.search import SearchIndex, doc_from_record, outcome
from handlers.search.domain import parse_lexicon
from handlers.search.text import normalize

LEXICON = parse_lexicon("""
version = 1

[[group]]
domain = "taxi"
official = "出租汽车"
everyday = ["出租车", "的士", "打车"]
source = "《巡游出租汽车经营服务管理规定》"

[[group]]
domain = "bus"
official = "交通一卡通"
everyday = ["公交卡", "ic卡", "交通卡"]
source = "《城市公共汽车和电车客运管理规定》"

[[group]]
domain = "rail_air"
official = "民用机场"
everyday = ["机场", "飞机场"]
source = "《民用机场管理条例》"
""")

RECORDS = [
    ("guide", {"id": "gjk", "title": "公交IC卡挂失和补办",
               "materials": ["本人身份证原件"], "steps": ["到服务网点挂失", "7个工作日后补办领卡"],
               "where": "公交集团客服中心"}),
    ("guide", {"id": "cyzg", "title": "道路运输从业人员从业资格证补发",
               "materials": ["身份证", "营业执照复印件"], "steps": ["提交申请", "领取补发的证件"]}),
    ("guide", {"id": "lnk", "title": "老年人乘车卡办理",
               "conditions": ["本市户籍或持有居住证的老年人"], "materials": ["身份证", "居住证"],
               "steps": ["到公交网点填表", "当场领卡"]}),
    ("faq", {"id": "czc-ts", "question": "坐出租车被多收钱、绕路或者拒载，怎么投诉？",
             "answer": "记下车牌号和发票，拨打出租汽车服务质量监督电话投诉。"}),
    ("faq", {"id": "czc-sw", "question": "东西落在出租车上了，怎么找回来？",
             "answer": "凭车费发票联系出租汽车公司或拨打监督电话。"}),
    ("hotline", {"id": "taxi", "name": "出租汽车服务质量监督电话", "number": "0595-22180128",
                 "scope": "出租车拒载、绕路、乱收费的投诉"}),
    ("hotline", {"id": "12395", "name": "水上遇险求救电话", "number": "12395",
                 "scope": "海上遇险、有人落水、船舶失火等水上险情的报警求救"}),
    ("policy", {"id": "yj", "title": "泉州市区巡游出租汽车运价调整方案", "issuer": "泉州市发改委",
                "disclosure": "主动公开", "summary": "出租汽车起步价和里程价调整"}),
    ("notice", {"id": "tf", "title": "台风天气泉金航线停航", "kind": "ferry",
                "body": "受台风影响，石井至金门航线停航，复航时间另行通知。",
                "starts_at": datetime(2026, 9, 1, 8, 0)}),
    ("faq", {"id": "gzh", "question": "“泉州交通运输”公众号能做什么？",
             "answer": "可以查询办事指南、政策文件、出行资讯，"
                       "例如“公交卡丢了怎么补”“出租车怎么投诉”。"}),
]
TEXT = {f"{kind}:{rec['id']}": normalize(" ".join(str(v) for v in rec.values()))
        for kind, rec in RECORDS}


@pytest.fixture(scope="module")
def index() -> SearchIndex:
    """The records above with the small lexicon and no pack synonyms."""
    return SearchIndex([doc_from_record(kind, rec) for kind, rec in RECORDS], (),
                       lexicon=LEXICON)


def keys(index: SearchIndex, question: str) -> list[str]:
    """Keys of the hits for a question, as the chat asks (up to 20)."""
    return [hit.key for hit in index.search(question, limit=20).hits]


def test_clear_question_gets_one_confident_answer(index: SearchIndex) -> None:
    result = index.search("出租车拒载怎么投诉", limit=20)
    assert result.confident and result.hits[0].key == "faq:czc-ts"
    assert result.transport


def test_several_relevant_records_make_a_list_not_padded(index: SearchIndex) -> None:
    result = index.search("出租车", limit=20)
    found = [hit.key for hit in result.hits]
    assert not result.confident and len(found) >= 3
    assert all("出租" in TEXT[key] for key in found)  # every one is about taxis
    assert len(found) < len(RECORDS)  # not padded up to the limit


@pytest.mark.parametrize(
    "question",
    ["社保卡丢了怎么补办",  # shares 丢/补办 with the bus-card guide, but is another agency's
     "居住证怎么办理",  # a material the bus-card guide mentions in passing
     "营业执照怎么办",
     "医保报销比例是多少",
     "明天泉州会下雨吗",
     "公积金怎么提取",
     "给我讲个笑话"],
)
def test_out_of_scope_question_gets_no_hits(index: SearchIndex, question: str) -> None:
    result = index.search(question, limit=20)
    assert result.hits == [] and not result.confident


@pytest.mark.parametrize(
    ("question", "transport"),
    [("打车去飞机场大概多少钱", True),  # a lexicon word: about transport, unanswered here
     ("出租车拒载怎么投诉", True),
     ("明天泉州会下雨吗", False),
     ("医保报销比例是多少", False),
     ("孩子上小学怎么报名", False),
     ("公积金怎么提取", False)],
)
def test_transport_flag(index: SearchIndex, question: str, transport: bool) -> None:
    assert index.search(question, limit=20).transport is transport


def test_record_matching_strongly_marks_transport_without_lexicon_word(
        index: SearchIndex) -> None:
    result = index.search("海上有人落水了打什么电话", limit=20)
    assert result.hits and result.hits[0].key == "hotline:12395"  # its scope says so
    assert result.transport


def test_meta_faq_never_tops_ordinary_questions(index: SearchIndex) -> None:
    # the meta FAQ mentions 公交卡/丢了/补 and 出租车/投诉 in its answer
    assert "faq:gzh" not in keys(index, "公交卡丢了怎么补")
    assert "faq:gzh" not in keys(index, "出租车怎么投诉")
    assert keys(index, "这个公众号能做什么")[0] == "faq:gzh"
    assert keys(index, "你们能查什么")[:1] == ["faq:gzh"]


@pytest.mark.parametrize(
    ("question", "shared"),
    [("公交卡丢了怎么补", ("公交", "ic卡", "补办", "挂失")),
     ("的士乱收费打哪个电话", ("出租",)),
     ("台风天去金门的船还开吗", ("台风", "金门", "航线")),
     ("出租车起步价多少钱", ("出租", "起步价"))],
)
def test_list_never_holds_a_record_sharing_no_meaningful_term(
        index: SearchIndex, question: str, shared: tuple[str, ...]) -> None:
    found = keys(index, question)
    assert found
    for key in found:
        assert any(word in TEXT[key] for word in shared), key


def test_lone_common_character_is_no_match(index: SearchIndex) -> None:
    # 卡, 证, 车 alone appear in many records: none of them is an answer
    assert keys(index, "卡") == []
    assert keys(index, "证怎么办") == []


def test_empty_index_still_tells_transport() -> None:
    empty = SearchIndex([], (), lexicon=LEXICON)
    assert empty.search("打车去机场多少钱").transport
    assert not empty.search("公积金怎么提取").transport
    assert empty.search("打车去机场多少钱").hits == []


# --- referrals, documents and list length (issue 8 follow-ups) -------------------------

REF_LEXICON = parse_lexicon("""
version = 1

[[group]]
domain = "coach"
official = "客票"
everyday = ["汽车票", "班车票", "车票"]
source = "《道路旅客运输及客运站管理规定》"

[[group]]
domain = "general"
official = "交通运输"
everyday = ["交通"]
source = "《中华人民共和国道路运输条例》"
""")

REF_RECORDS = [
    ("faq", {"id": "ky-tp", "question": "汽车票买了还能退吗？要扣多少手续费？",
             "answer": "开车前2小时以上退票收取票价5%的退票费，开车后可当日改签一次。"}),
    ("hotline", {"id": "12328", "name": "交通运输服务监督电话", "number": "12328",
                 "scope": "受理出租车、公交、道路客运等交通运输服务的投诉、举报和咨询。"}),
    ("faq", {"id": "ref-huoche", "question": "火车票、高铁票怎么买？退票改签找谁问？",
             "answer": "【非交通运输局业务】购票、退票、改签请通过铁路12306办理。",
             "keywords": ["火车票", "高铁票", "火车", "高铁"]}),
    ("faq", {"id": "ref-qita", "question": "不归交通运输局管的事情，该找哪个部门？",
             "answer": "【非交通运输局业务】本号只答复交通运输方面的咨询，其他部门的业务请拨打"
                       "12345政务服务便民热线。",
             "keywords": ["其他部门", "找哪个部门", "不归你们管"]}),
    ("faq", {"id": "ref-ddc", "question": "电动自行车（电动车）怎么上牌？",
             "answer": "【非交通运输局业务】到当地交警指定的登记点办理。",
             "keywords": ["电动车", "电动自行车", "电瓶车"]}),
]


@pytest.fixture(scope="module")
def referrals() -> SearchIndex:
    """Our own coach-ticket FAQ and the 12328 hotline beside three referral records."""
    return SearchIndex([doc_from_record(kind, rec) for kind, rec in REF_RECORDS], (),
                       lexicon=REF_LEXICON)


@pytest.mark.parametrize(
    ("question", "own", "referral"),
    [("班车票改签要收钱吗", "faq:ky-tp", "faq:ref-huoche"),  # 车票 inside 火车票
     ("交通方面的投诉电话是多少", "hotline:12328", "faq:ref-qita")],  # the catch-all's words
)
def test_referral_never_outranks_our_own_answer(referrals: SearchIndex, question: str,
                                                own: str, referral: str) -> None:
    found = keys(referrals, question)
    assert found[:1] == [own]
    assert referral not in found


@pytest.mark.parametrize(
    ("question", "referral"),
    [("火车票怎么买", "faq:ref-huoche"),
     ("高铁票退票找谁", "faq:ref-huoche"),
     ("这事不归你们管，该找哪个部门", "faq:ref-qita"),
     ("电动车怎么上牌", "faq:ref-ddc")],
)
def test_question_naming_a_referral_topic_gets_the_referral(
        referrals: SearchIndex, question: str, referral: str) -> None:
    assert keys(referrals, question)[:1] == [referral]


@pytest.mark.parametrize(
    "question",
    ["身份证丢了怎么补",  # the bus-card guide lists 身份证 among its materials
     "身份证丢了补办要多久",
     "身份证过期了补办",
     "居住证丢了怎么补办"],  # a material of the 老年人乘车卡 guide
)
def test_question_about_another_document_gets_no_hits(index: SearchIndex,
                                                      question: str) -> None:
    assert keys(index, question) == []


@pytest.mark.parametrize(
    ("question", "expect"),
    [("从业资格证丢了怎么补", "guide:cyzg"),
     ("公交卡丢了怎么补办", "guide:gjk"),
     ("老年人乘车卡怎么办", "guide:lnk")],
)
def test_question_about_the_records_document_still_answered(
        index: SearchIndex, question: str, expect: str) -> None:
    assert keys(index, question)[:1] == [expect]


@pytest.mark.parametrize(
    ("word", "document"),
    [("身份证", True), ("火车票", True), ("公交卡", True), ("驾照", True),
     ("买票", False), ("补卡", False), ("办证", False), ("证", False), ("公交", False)],
)
def test_names_document(word: str, document: bool) -> None:
    assert outcome.names_document(word) is document


@pytest.mark.parametrize("question", ["出租车", "的士乱收费打哪个电话", "公交卡丢了怎么补"])
def test_list_holds_no_record_far_below_the_best(index: SearchIndex, question: str) -> None:
    hits = index.search(question, limit=20).hits
    assert hits
    assert all(hit.score >= outcome.LIST_SHARE * hits[0].score for hit in hits)
    assert outcome.LIST_SHARE >= 0.5
