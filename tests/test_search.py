"""Unit tests of the query index on small hand-made records."""

from __future__ import annotations

import heapq
import logging
import random
import re
import threading
import time
from datetime import date, datetime

import numpy as np
import pytest

from handlers.search import SearchDoc, SearchIndex, doc_from_record
from handlers.search import score as search_score
from handlers.search import text as search_text
from handlers.search.domain import EMPTY
from handlers.search.query import parse_query
from handlers.search.rerank import abbreviated, title_named

RECORDS = [
    ("hotline", {"id": "jd", "name": "交通运输服务监督电话", "number": "12328",
                 "hours": "全天24小时", "scope": "交通运输行业投诉、举报、咨询和建议"}),
    ("hotline", {"id": "gj", "name": "公交集团客服热线", "number": "0595-22587000",
                 "hours": "8:00-18:00", "scope": "公交线路、公交卡业务咨询"}),
    ("guide", {"id": "ic-bb", "title": "公交IC卡挂失补办",
               "materials": ["身份证原件", "购卡凭证"],
               "steps": ["到公交集团客服中心挂失", "7个工作日后领取新卡"],
               "where": "泉州公交集团客服中心", "fee": "工本费20元"}),
    ("guide", {"id": "cyzg", "title": "出租汽车驾驶员从业资格证核发",
               "materials": ["驾驶证", "无犯罪记录证明"], "steps": ["报名考试", "领证"],
               "department": "市交通运输局行政审批科", "time_limit": "承诺时限5个工作日"}),
    ("policy", {"id": "wyc", "title": "泉州市网络预约出租汽车经营服务管理实施细则",
                "doc_number": "泉政办〔2020〕19号", "issuer": "泉州市人民政府办公室",
                "issued_on": date(2020, 5, 8), "disclosure": "主动公开",
                "summary": "规范网约车平台、车辆和驾驶员的许可条件",
                "interpretation": {"title": "解读", "summary": "车辆轴距要求", "url": "x"}}),
    ("policy", {"id": "xl", "title": "泉州市公路养护管理办法",
                "doc_number": "泉交〔2021〕7号", "issuer": "泉州市交通运输局",
                "issued_on": date(2021, 3, 1), "disclosure": "主动公开",
                "summary": "国省干线公路日常养护和路政巡查"}),
    ("notice", {"id": "tf", "title": "受台风影响石井至金门客运航线停航", "kind": "ferry",
                "body": "受台风影响，石井至金门航线今日起暂停运营，恢复时间另行通知。",
                "starts_at": datetime(2026, 9, 1, 8, 0)}),
    ("notice", {"id": "xc", "title": "刺桐大桥夜间封闭施工", "kind": "road",
                "body": "刺桐大桥因维修夜间封闭，车辆请绕行泉州大桥。",
                "starts_at": datetime(2026, 9, 1, 8, 0)}),
    ("project", {"id": "zq", "name": "兴泉铁路泉州段", "district": "南安市", "stage": "在建",
                 "progress_percent": 80, "summary": "正线铺轨完成八成",
                 "updated_on": date(2026, 10, 1)}),
    ("faq", {"id": "lnk", "question": "老年人乘坐公交车免费吗",
             "answer": "年满70周岁的老人凭敬老卡免费乘坐市区公交车。"}),
    ("faq", {"id": "chuzu", "question": "出租汽车拒载怎么投诉",
             "answer": "记下车牌号，拨打交通运输服务监督电话投诉。"}),
]
SYNONYMS = [["出租车", "出租汽车", "的士", "打的"], ["轮渡", "渡轮", "客渡"],
            ["公交卡", "公交IC卡"], ["丢了", "丢失", "挂失"], ["网约车", "网络预约出租汽车"]]


@pytest.fixture(scope="module")
def index() -> SearchIndex:
    """The index over the records above, with the synonym groups."""
    return SearchIndex([doc_from_record(kind, rec) for kind, rec in RECORDS], SYNONYMS)


def top(index: SearchIndex, query: str) -> str | None:
    """Key of the best hit, or None."""
    hits = index.search(query).hits
    return hits[0].key if hits else None


def test_doc_from_record_maps_fields() -> None:
    doc = doc_from_record("hotline", dict(RECORDS[0][1]))
    assert (doc.key, doc.kind, doc.title, doc.exact) == (
        "hotline:jd", "hotline", "交通运输服务监督电话", ("12328",))
    policy = doc_from_record("policy", dict(RECORDS[4][1]))
    assert policy.exact == ("泉政办〔2020〕19号",)
    assert "2020-05-08" not in policy.text and "主动公开" not in policy.text
    assert "车辆轴距要求" in policy.text
    assert doc_from_record("faq", dict(RECORDS[-1][1])).title == "出租汽车拒载怎么投诉"


def test_doc_from_record_rejects_unknown_kind() -> None:
    with pytest.raises(ValueError):
        doc_from_record("synonym", {"id": "x", "words": ["a", "b"]})


def test_len_and_repeated_key_keeps_last() -> None:
    docs = [SearchDoc("faq:a", "faq", "旧问题", "旧答案"), SearchDoc("faq:a", "faq", "新问题", "x")]
    index = SearchIndex(docs)
    assert len(index) == 1
    assert top(index, "新问题") == "faq:a"


def test_synonyms_expand_query_terms(index: SearchIndex) -> None:
    assert top(index, "的士拒载去哪投诉") == "faq:chuzu"
    assert top(index, "打的被拒载") == "faq:chuzu"
    docs = [SearchDoc("faq:a", "faq", "出租汽车拒载怎么投诉", "拨打监督电话"),
            SearchDoc("faq:b", "faq", "公交卡挂失", "到服务网点办理")]
    assert SearchIndex(docs, lexicon=EMPTY).search("的士").hits == []
    result = SearchIndex(docs, [["出租汽车", "的士"]], lexicon=EMPTY).search("的士")
    assert result.hits[0].key == "faq:a" and result.confident
    # the engine's own domain lexicon knows 的士 = 出租汽车 without any pack synonym
    assert SearchIndex(docs).search("的士").hits[0].key == "faq:a"


@pytest.mark.parametrize("query", [
    "泉政办〔2020〕19号", "泉政办[2020]19号", "泉政办(2020)19号", "泉政办（2020）19号",
    "泉政办【2020】19号", "泉政办2020 19号", "泉政办2020年第19号", "泉政办 〔 2020 〕 19 号",
    "请问泉政办[2020]19号文件讲什么",
])
def test_wenhao_variants_match_exactly(index: SearchIndex, query: str) -> None:
    result = index.search(query)
    assert result.hits[0].key == "policy:wyc"
    assert result.confident


def test_wenhao_needs_same_issuer_and_number(index: SearchIndex) -> None:
    for query in ("泉政办〔2020〕91号", "泉交〔2020〕19号"):
        result = index.search(query)
        assert not result.confident and all(hit.score < 1000 for hit in result.hits)
    assert top(index, "泉交[2021]7号") == "policy:xl"


@pytest.mark.parametrize("query,key", [
    ("12328", "hotline:jd"), ("打12328几点有人接", "hotline:jd"),
    ("0595-22587000", "hotline:gj"), ("22587000是哪里的电话", "hotline:gj"),
    ("０５９５ ２２５８７０００", "hotline:gj"),
])
def test_hotline_number_ranks_first(index: SearchIndex, query: str, key: str) -> None:
    result = index.search(query)
    assert result.hits[0].key == key and result.confident


@pytest.mark.parametrize(
    "query", ["泉政办〔2020〕99号", "泉交〔2020〕19号", "12306", "0595-12345678"]
)
def test_unknown_identifier_is_never_confident(index: SearchIndex, query: str) -> None:
    result = index.search(query)
    assert not result.confident
    assert all(hit.score < 1000 for hit in result.hits)


def test_shared_number_is_not_confident() -> None:
    docs = [SearchDoc("hotline:a", "hotline", "客运站服务电话", "购票", exact=("0595-1111",)),
            SearchDoc("hotline:b", "hotline", "码头服务电话", "船票", exact=("0595-1111",))]
    result = SearchIndex(docs).search("0595-1111")
    assert {h.key for h in result.hits[:2]} == {"hotline:a", "hotline:b"}
    assert not result.confident


def test_title_match_beats_body_match() -> None:
    docs = [SearchDoc("guide:body", "guide", "机动车维修经营备案", "驾驶员培训机构也可申请此项"),
            SearchDoc("guide:title", "guide", "驾驶员培训经营备案", "向交通运输局提交材料")]
    assert top(SearchIndex(docs), "驾驶员培训") == "guide:title"


@pytest.mark.parametrize("query", [
    "公交卡丢了去哪补", "请问我想问一下公交卡丢了怎么办呢", "你好，公交卡丢了咋办啊？",
])
def test_colloquial_questions(index: SearchIndex, query: str) -> None:
    result = index.search(query)
    assert result.hits[0].key == "guide:ic-bb"
    assert result.confident


@pytest.mark.parametrize("query,key", [
    ("刮台风渡轮还开不开", "notice:tf"), ("兴泉铁路什么时候通车", "project:zq"),
    ("网约车有什么规定", "policy:wyc"), ("老人坐公交要钱吗", "faq:lnk"),
    ("刺桐大桥晚上能走吗", "notice:xc"), ("开出租要考什么证", "guide:cyzg"),
])
def test_everyday_questions(index: SearchIndex, query: str, key: str) -> None:
    assert top(index, query) == key


def test_filler_and_question_words_are_stripped() -> None:
    query = parse_query("请问我想问一下公交卡丢了怎么办呢", {})
    required = [unit.word for unit in query.units if not unit.optional]
    assert not {"请问", "我想", "问一下", "怎么办", "呢", "了"} & set(required)
    assert "丢" in required or "丢了" in required
    assert {"办理", "流程"} <= {unit.word for unit in query.units if unit.optional}
    assert query.boosts["guide"] > 1.0


def test_colloquial_verbs_and_relative_years() -> None:
    query = parse_query("今年的预算，证丢了怎么补", {}, today=date(2026, 11, 27))
    alts = {unit.word: {term for term, _ in unit.alts} for unit in query.units}
    assert "2026" in alts["今年"]
    assert {"补办", "补发"} <= alts["补"]


def test_phone_question_prefers_the_hotline() -> None:
    docs = [SearchDoc("faq:a", "faq", "客运站行李寄存", "客运站一楼设有行李寄存处"),
            SearchDoc("hotline:b", "hotline", "客运站行李寄存", "客运站一楼设有行李寄存处")]
    index = SearchIndex(docs)
    assert index.search("客运站行李寄存打什么电话").hits[0].key == "hotline:b"
    hits = index.search("客运站行李寄存在哪里").hits
    assert hits[0].score == hits[1].score


def test_abbreviation_matches_title() -> None:
    docs = [SearchDoc("hotline:zx", "hotline", "泉州汽车客运中心站服务电话", "班车时刻咨询"),
            SearchDoc("notice:x", "notice", "东海客运枢纽开工", "汽车 客运 车站 新建")]
    assert top(SearchIndex(docs), "汽车站电话") == "hotline:zx"


def test_unknown_compound_is_asked_through_its_parts() -> None:
    docs = [SearchDoc("guide:ky", "guide", "道路客运经营许可", "客运公司申请"),
            SearchDoc("guide:hy", "guide", "道路货运经营许可", "货运企业申请")]
    assert top(SearchIndex(docs), "开客运公司要什么许可") == "guide:ky"


@pytest.mark.parametrize("query,key", [
    ("刺桐大乔晚上封闭", "notice:xc"), ("兴泉铁陆进度", "project:zq"),
    ("网约车实施细责", "policy:wyc"), ("出租汽车驾使员从业资格证", "guide:cyzg"),
    ("公交卡挂矢", "guide:ic-bb"),
])
def test_typos_fall_back_to_ngrams(index: SearchIndex, query: str, key: str) -> None:
    assert top(index, query) == key


def test_filler_alone_finds_nothing_confident(index: SearchIndex) -> None:
    result = index.search("请问一下，谢谢您好吗呢")
    assert not result.confident


@pytest.mark.parametrize("query", ["今天吃什么", "帮我订一张去北京的机票", "股票明天会涨吗",
                                   "你是机器人吗"])
def test_off_topic_is_not_confident(index: SearchIndex, query: str) -> None:
    assert not index.search(query).confident


def test_close_runner_up_is_not_confident() -> None:
    docs = [SearchDoc("notice:a", "notice", "东海大街临时交通管制", "施工期间绕行"),
            SearchDoc("notice:b", "notice", "东海大街临时交通管制", "活动期间绕行")]
    result = SearchIndex(docs).search("东海大街交通管制")
    assert len(result.hits) == 2 and not result.confident


GARBAGE = ["", " ", "\x00\x01\x7f\u200b", "😀" * 50, "a" * 10_000, "公交" * 5_000,
           "泉政办〔" * 2_000, "1" * 10_000, "\ud800", "<xml>]]></xml>", "的了吗呢" * 100,
           "\n\t\r", "🚌🚕⛴️", "Ⅻ℃㎡", "　　"]


@pytest.mark.parametrize("query", GARBAGE)
def test_garbage_never_raises_and_stays_fast(index: SearchIndex, query: str) -> None:
    started = time.perf_counter()
    result = index.search(query)
    assert time.perf_counter() - started < 0.2
    assert isinstance(result.hits, list)


@pytest.mark.parametrize("query", [None, 12328, b"\xe5\x85\xac"])
def test_non_string_query_never_raises(index: SearchIndex, query: object) -> None:
    index.search(query)  # type: ignore[arg-type]


def test_limit_is_respected(index: SearchIndex) -> None:
    assert len(index.search("泉州 公交 出租 台风 铁路 网约车", limit=3).hits) <= 3
    assert len(index.search("公交", limit=0).hits) <= 1
    assert index.search("公交", limit="x").hits  # type: ignore[arg-type]


def test_empty_index() -> None:
    result = SearchIndex([]).search("公交卡")
    assert result.hits == [] and not result.confident


def test_domain_words_stay_whole(index: SearchIndex) -> None:
    with search_text.using(index._segmenter):
        words = [group[0] for group in search_text.cut_words("网约车和公交ic卡")]
    assert "网约车" in words and "公交ic卡" in words


def test_indexes_do_not_share_domain_words(index: SearchIndex) -> None:
    """Words one index adds never change how another cuts text (no order dependence)."""
    SearchIndex([SearchDoc("faq:x", "faq", "公交卡丢了怎么补办", "答")])
    other = SearchIndex([SearchDoc("faq:y", "faq", "渡轮", "答")])
    with search_text.using(other._segmenter):
        words = [group[0] for group in search_text.cut_words("公交卡丢了怎么补办")]
    assert "公交卡丢了怎么补办" not in words


def test_jieba_loaded_once_and_quiet(index: SearchIndex) -> None:
    assert search_text.tokenizer() is search_text.tokenizer()
    assert logging.getLogger("jieba").getEffectiveLevel() >= logging.WARNING


def test_concurrent_searches_agree(index: SearchIndex) -> None:
    queries = ["公交卡丢了去哪补", "12328", "刮台风渡轮还开不开", "泉政办[2020]19号", "今天吃什么"]
    expected = {q: index.search(q) for q in queries}
    errors: list[str] = []

    def worker() -> None:
        for _ in range(100):
            for q in queries:
                if index.search(q) != expected[q]:
                    errors.append(q)

    def rebuild() -> None:
        # Another index adding its words to the shared jieba dictionary meanwhile.
        SearchIndex([SearchDoc("faq:z", "faq", "甲乙丙丁戊己庚辛", "壬癸子丑寅卯")])

    threads = [threading.Thread(target=worker) for _ in range(8)]
    threads.append(threading.Thread(target=rebuild))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_repeated_questions_are_cached_per_index(index: SearchIndex) -> None:
    first = index.search("公交卡丢了怎么补办")
    first.hits.clear()  # a caller's list is its own
    again = index.search("公交卡丢了怎么补办")
    assert again.hits and index._cached.cache_info().hits >= 1
    fresh = SearchIndex([SearchDoc("faq:z", "faq", "公交卡丢了怎么补办", "答")])
    assert fresh._cached.cache_info().currsize == 0  # a rebuilt index starts empty


# Questions sharing words (公交卡, 出租车/的士, 投诉, 电话): the unit memo is reused.
SHARED_WORDS = ["公交卡丢了去哪补", "公交卡多少钱", "出租车拒载投诉", "的士怎么投诉", "汽车站电话",
                "网约车细则", "刮台风渡轮还开不开", "12328", "今天吃什么", "老人坐公交车免费吗",
                "公路养护", "公交电话"]


def _ranked(index: SearchIndex, query: str) -> tuple[list[tuple[str, float]], bool, bool]:
    """The uncached answer (no per-question cache) as comparable values."""
    result = index._rank(query, 5)
    return [(h.key, h.score) for h in result.hits], result.confident, result.transport


def _docs() -> list[SearchDoc]:
    return [doc_from_record(kind, rec) for kind, rec in RECORDS]


def test_unit_memo_never_changes_an_answer() -> None:
    # a unit is scored once per index (score.UnitMemo); reusing it, after other questions
    # (and rerank's updates of their strengths) must answer exactly as a fresh index does
    warm = SearchIndex(_docs(), SYNONYMS)
    for query in SHARED_WORDS * 2:
        warm._rank(query, 5)
    assert warm._units.match.cache_info().hits > 0
    assert warm._units.titles.named.cache_info().hits > 0
    for query in SHARED_WORDS:
        assert _ranked(warm, query) == _ranked(SearchIndex(_docs(), SYNONYMS), query), query


def test_concurrent_uncached_searches_agree() -> None:
    expected = {q: _ranked(SearchIndex(_docs(), SYNONYMS), q) for q in SHARED_WORDS}
    shared = SearchIndex(_docs(), SYNONYMS)  # its unit memo fills while the threads race
    errors: list[str] = []

    def worker(seed: int) -> None:
        queries = SHARED_WORDS * 20
        random.Random(seed).shuffle(queries)
        errors.extend(q for q in queries if _ranked(shared, q) != expected[q])

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_shared_arrays_are_read_only(index: SearchIndex) -> None:
    # concurrent searches share the postings and the remembered unit matches: none of
    # them may be written (a query writes only its own vectors)
    tables = index._tables
    unit = parse_query("公交卡", index._synonyms).units[0]
    match = search_score.match_unit(tables, unit)
    arrays = [tables.words.docs, tables.words.sats, tables.grams.docs, tables.grams.sats,
              tables.title_words.docs, tables.title_grams.docs, match.docs, match.best,
              match.strength, *title_named(tables, unit), abbreviated(tables, "汽车站")]
    assert len(match.docs) > 0
    assert not any(array.flags.writeable for array in arrays)


def test_postings_hold_each_document_once_in_order(index: SearchIndex) -> None:
    grams = index._tables.grams
    texts = [search_text.normalize(f"{d.title} {' '.join(d.keywords)} {d.text}") for d in _docs()]
    for gram in ("公交", "台风", "出租", "投诉", "养护"):
        docs, sats = grams.postings(grams[gram])
        assert docs.tolist() == [i for i, text in enumerate(texts) if gram in text], gram
        assert len(sats) == len(docs) and bool((sats > 0.0).all())
    assert "不存在的词" not in grams and grams.get("不存在的词") is None


def test_abbreviated_titles_are_those_the_pattern_finds(index: SearchIndex) -> None:
    # the memo checks only titles holding every character; the result must be the same as
    # searching every title
    titles = index._tables.title_text
    for word in ("公交挂失", "监督电话", "汽车站", "公路养护", "渡轮"):
        pattern = re.compile(".{0,4}".join(map(re.escape, word)))
        expected = [i for i, title in enumerate(titles) if pattern.search(title)]
        assert abbreviated(index._tables, word).tolist() == expected, word
    assert abbreviated(index._tables, "公交挂失").tolist() == [2]  # 公交IC卡挂失补办


@pytest.mark.parametrize("seed", range(5))
def test_candidates_ordered_as_heapq_would(seed: int) -> None:
    # the best scores first, the earlier record first among equal scores (many ties here)
    rng = random.Random(seed)
    for _ in range(100):
        values = [rng.choice([0.0, 0.5, 1.0, 2.0, rng.random()]) for _ in range(rng.randint(0, 90))]
        expected = heapq.nlargest(30, [(i, v) for i, v in enumerate(values) if v > 0.0],
                                  key=lambda item: (item[1], -item[0]))
        assert search_score._top(np.array(values), 30) == expected
