"""Generate a synthetic content pack for benchmarks: `python bench/genpack.py N OUT.toml`.

The pack starts with every record of bot/data/sample_pack.toml (so tests/eval/questions.toml
stays meaningful at scale), then adds synthetic records of all kinds in realistic
proportions, assembled from Quanzhou vocabulary. Output is deterministic for a given seed
and valid against shared/docs/content-pack.md. Importable: `generate(n, seed=7) -> str`.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tomllib
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

SAMPLE_PACK = Path(__file__).resolve().parent.parent / "bot" / "data" / "sample_pack.toml"
KIND_ORDER = ("hotline", "guide", "policy", "disclosure", "project", "notice", "faq", "synonym")
WEIGHTS = {"guide": 22, "notice": 22, "faq": 18, "disclosure": 16, "policy": 9, "project": 7,
           "hotline": 2, "synonym": 1.5}
TITLE_FIELD = {"hotline": "name", "guide": "title", "policy": "title", "disclosure": "title",
               "project": "name", "notice": "title", "faq": "question"}
TODAY = datetime(2026, 11, 27)  # fixed, so the share of expired notices never drifts

TOWNS = {
    "鲤城区": ["开元街道", "海滨街道", "江南街道", "浮桥街道"],
    "丰泽区": ["东海街道", "城东街道", "北峰街道", "华大街道"],
    "洛江区": ["双阳街道", "河市镇", "马甲镇", "罗溪镇"],
    "泉港区": ["山腰街道", "南埔镇", "界山镇", "涂岭镇"],
    "晋江市": ["池店镇", "安海镇", "磁灶镇", "陈埭镇", "东石镇"],
    "石狮市": ["宝盖镇", "蚶江镇", "永宁镇", "祥芝镇"],
    "南安市": ["水头镇", "石井镇", "官桥镇", "洪濑镇", "丰州镇"],
    "惠安县": ["螺城镇", "崇武镇", "东岭镇", "黄塘镇"],
    "安溪县": ["凤城镇", "城厢镇", "龙门镇", "湖头镇", "蓬莱镇"],
    "永春县": ["桃城镇", "五里街镇", "蓬壶镇", "达埔镇"],
    "德化县": ["浔中镇", "龙浔镇", "上涌镇", "水口镇"],
    "泉州台商投资区": ["洛阳镇", "东园镇", "张坂镇"],
    "泉州经济技术开发区": ["清濛街道"],
}
DISTRICTS = list(TOWNS)
ROADS = ["国道G324线", "国道G228线", "国道G355线", "省道S206线", "省道S308线", "省道S212线"]
WORKS = ["路面改造", "桥梁维修", "边坡加固", "管线迁改", "交通安全设施完善", "排水改造"]
MEASURES = ["实行半幅封闭施工", "夜间全封闭施工", "实行单向通行", "限制货车通行", "分时段交通管制"]
SUBJECTS = ["农村客运班线", "城市公交线路", "道路货运车辆", "驾驶员培训机构", "机动车维修企业",
            "客运码头", "出租汽车经营权", "普通货运站场", "汽车租赁企业", "港口经营",
            "道路客运企业", "危险货物运输车辆", "城市公交企业", "船舶营运证"]
ACTIONS = ["经营许可变更", "备案注销", "经营期限延续", "信息变更", "停业申请", "许可注销",
           "年度核查", "经营范围调整", "经营者名称变更", "法定代表人变更", "经营地址变更"]
MATERIALS = ["申请表", "营业执照", "经办人身份证明和授权委托书", "原许可证件", "场地使用证明",
             "车辆行驶证", "安全生产管理制度文本", "情况说明", "从业人员名册", "技术设备清单"]
STEPS = ["网上申报或窗口提交材料", "受理审查", "实地核查", "作出决定", "领取证件或决定书",
         "归档公示"]
TOPICS = ["农村客运发展", "公交站点建设", "货运物流降本增效", "交通运输安全生产", "公路养护",
          "交通运输执法规范", "绿色出行", "智慧交通建设", "港口集疏运", "交通运输信用体系",
          "城乡公交一体化", "出租汽车行业改革", "网约车规范管理", "水路客运安全", "超限超载治理",
          "驾培行业监管", "维修行业提质", "交通运输应急保障", "公路安全生命防护",
          "道路运输从业人员培训"]
DOCTYPES = ["实施意见", "工作方案", "管理办法", "若干措施", "通知", "实施细则"]
PREFIXES = ["泉交运", "泉交建", "泉交规", "泉交办", "泉交路", "泉交水"]
CATEGORIES = ["规划计划", "行政许可", "财政资金", "行政处罚", "人事信息", "监督检查",
              "建议提案办理", "统计信息", "应急管理"]
FACILITIES = ["公交首末站", "农村客运招呼站", "公交候车亭", "新能源公交充电站", "客运站",
              "货车停车场"]
STATIONS = {"晋江客运站": "晋江市", "石狮客运站": "石狮市", "南安客运站": "南安市",
            "安溪客运站": "安溪县", "永春客运站": "永春县", "德化客运站": "德化县",
            "惠安客运站": "惠安县", "泉港客运站": "泉港区"}
RAIL = {"泉州站": "丰泽区", "泉州东站": "洛江区", "晋江站": "晋江市", "南安北站": "南安市",
        "惠安站": "惠安县", "泉港站": "泉港区"}
PIERS = {"崇武渡口": "惠安县", "祥芝渡口": "石狮市", "大岞渡口": "惠安县", "秀涂码头": "泉港区",
         "围头渡口": "晋江市"}
OFFICES = ["运输管理股", "综合执法大队", "行政服务窗口", "公路管理站", "值班室"]
TOWN_OFFICES = ["交通运输服务站", "农村客运服务点", "公路养护站"]


def _pick(rng: random.Random, seq: list[str] | tuple[str, ...]) -> str:
    return seq[rng.randrange(len(seq))]


def _place(rng: random.Random) -> tuple[str, str]:
    district = _pick(rng, DISTRICTS)
    return district, _pick(rng, TOWNS[district])


def _day(rng: random.Random, start: date, span_days: int) -> date:
    return start + timedelta(days=rng.randrange(span_days))


def _hotline(rng: random.Random, rid: str) -> dict[str, Any]:
    district, town = _place(rng)
    office = _pick(rng, OFFICES) if rng.random() < 0.4 else town + _pick(rng, TOWN_OFFICES)
    number = f"0595-{rng.choice('3678')}{rng.randrange(10**6, 10**7)}"
    name = f"{district}交通运输局{office}" if office in OFFICES else f"{district}{office}"
    return {"id": rid, "name": name, "number": number,
            "hours": "法定工作日8:30—12:00，14:30—17:30",
            "scope": f"{district}范围内{_pick(rng, SUBJECTS)}等事项的咨询和投诉。"}


def _guide(rng: random.Random, rid: str) -> dict[str, Any]:
    district, _ = _place(rng)
    subject, action = _pick(rng, SUBJECTS), _pick(rng, ACTIONS)
    materials = rng.sample(MATERIALS, rng.randint(3, 6))
    steps = [s for s in STEPS if rng.random() < 0.8] or STEPS[:2]
    return {"id": rid, "title": f"{district}{subject}{action}",
            "department": f"{district}交通运输局", "materials": materials, "steps": steps,
            "time_limit": f"承诺时限{rng.choice([1, 3, 5, 10])}个工作日", "fee": "不收费",
            "where": f"{district}行政服务中心交通运输窗口"}


def _policy(rng: random.Random, rid: str, serial: int) -> dict[str, Any]:
    topic, doctype = _pick(rng, TOPICS), _pick(rng, DOCTYPES)
    issued = _day(rng, date(2019, 1, 1), 2880)
    disclosure = rng.choices(["主动公开", "依申请公开", "不予公开"], [90, 6, 4])[0]
    rec: dict[str, Any] = {
        "id": rid, "title": f"泉州市交通运输局关于推进{issued.year}年{topic}的{doctype}",
        "doc_number": f"{_pick(rng, PREFIXES)}〔{issued.year}〕{100 + serial}号",
        "issuer": "泉州市交通运输局", "issued_on": issued, "disclosure": disclosure,
        "summary": f"围绕{topic}，明确工作目标、主要任务、责任分工和保障措施，"
                   f"重点推进{_pick(rng, SUBJECTS)}和{_pick(rng, FACILITIES)}相关工作。",
    }
    if disclosure == "主动公开" and rng.random() < 0.3:
        rec["interpretation"] = {"title": f"关于推进{topic}的{doctype}解读",
                                 "summary": f"解读{topic}政策的背景依据、主要内容和适用范围。"}
    return rec


def _disclosure(rng: random.Random, rid: str) -> dict[str, Any]:
    formed = _day(rng, date(2022, 1, 1), 1790)
    category = _pick(rng, CATEGORIES)
    disclosure = rng.choices(["主动公开", "依申请公开", "不予公开"], [88, 7, 5])[0]
    rec: dict[str, Any] = {
        "id": rid, "title": f"{formed.year}年{formed.month}月{_pick(rng, TOPICS)}{category}信息",
        "category": category, "issuer": "泉州市交通运输局", "formed_on": formed,
        "disclosure": disclosure,
    }
    if disclosure == "主动公开":
        rec["published_on"] = formed + timedelta(days=rng.randrange(1, 28))
        rec["summary"] = f"公开{formed.year}年{formed.month}月{category}相关信息。"
    return rec


def _project(rng: random.Random, rid: str) -> dict[str, Any]:
    district, town = _place(rng)
    stage = rng.choices(["前期", "在建", "完工"], [25, 55, 20])[0]
    low, high = {"前期": (0, 20), "在建": (20, 95), "完工": (100, 100)}[stage]
    progress = rng.randint(low, high)
    return {"id": rid, "name": f"{_pick(rng, ROADS)}{district}{town}段{_pick(rng, WORKS)}工程",
            "district": district, "stage": stage, "progress_percent": progress,
            "summary": f"{stage}阶段，总体形象进度{progress}%，"
                       f"{_pick(rng, MEASURES)}期间请注意绕行。",
            "updated_on": _day(rng, date(2026, 1, 5), 320)}


def _notice_text(rng: random.Random, kind: str, district: str, town: str,
                 starts: datetime) -> tuple[str, str]:
    """Title and body of a synthetic notice of `kind` (the district of a named site is its own)."""
    when = f"{starts.month}月{starts.day}日起"
    if kind == "road":
        road, work, measure = _pick(rng, ROADS), _pick(rng, WORKS), _pick(rng, MEASURES)
        return (f"{road}{district}{town}段{work}{measure}",
                f"因{work}，{road}{town}段{measure}，请过往车辆减速慢行或提前绕行。")
    if kind == "bus":
        line = rng.randint(2, 899)
        return (f"{district}{line}路公交临时绕行",
                f"受{town}道路施工影响，{line}路公交临时绕行，沿线部分站点暂停停靠。")
    if kind == "coach":
        station = _pick(rng, list(STATIONS))
        return (f"{station}{when}至{town}方向班线发车时刻调整",
                f"{station}至{town}方向班线发车时刻调整，请以车站公告为准。")
    if kind == "ferry":
        pier = _pick(rng, list(PIERS))
        return (f"{pier}{when}航班临时调整",
                f"受潮汐和风浪影响，{pier}航班临时调整，请旅客留意码头公告。")
    if kind == "taxi":
        return (f"{district}{town}{when}设置出租车临时候客点",
                f"{town}设置出租车临时候客点，请乘客按指引排队候车。")
    if kind == "rail":
        station = _pick(rng, list(RAIL))
        return (f"{station}{when}进站口临时调整",
                f"因站房改造，{station}进站口临时调整，请旅客预留进站时间。")
    return (f"{district}交通运输窗口{when}服务时间调整",
            f"{district}行政服务中心交通运输窗口服务时间临时调整，可通过网上办事大厅办理。")


def _notice(rng: random.Random, rid: str) -> dict[str, Any]:
    kind = rng.choices(["road", "bus", "coach", "ferry", "taxi", "rail", "other"],
                       [35, 25, 12, 6, 8, 6, 8])[0]
    district, town = _place(rng)
    starts = datetime(2026, 1, 1, rng.choice([0, 6, 8, 22])) + timedelta(days=rng.randrange(329))
    title, body = _notice_text(rng, kind, district, town, starts)
    site = {**STATIONS, **RAIL, **PIERS}
    district = next((d for name, d in site.items() if title.startswith(name)), district)
    rec: dict[str, Any] = {"id": rid, "title": title, "kind": kind, "district": district,
                           "body": body, "starts_at": starts}
    roll = rng.random()
    if roll < 0.15:  # expired by TODAY
        # starts_at is at most 2026-11-25T22:00, so this stays after starts_at
        rec["ends_at"] = min(starts + timedelta(days=rng.randint(1, 60)),
                             TODAY - timedelta(hours=1))
    elif roll < 0.8:
        rec["ends_at"] = datetime(2026, 12, 1, 18) + timedelta(days=rng.randrange(390))
    if rng.random() < 0.1:
        rec["urgent"] = True
    return rec


def _faq(rng: random.Random, rid: str) -> dict[str, Any]:
    district, town = _place(rng)
    facility = _pick(rng, FACILITIES)
    roll = rng.random()
    if roll < 0.25:
        station = _pick(rng, list(STATIONS))
        return {"id": rid, "question": f"{station}到{town}的班车一天几班？",
                "answer": f"{station}至{town}每天发车{rng.randint(2, 12)}班，"
                          "首班7:00，具体以车站当日公告为准。"}
    if roll < 0.45:
        subject, action = _pick(rng, SUBJECTS), _pick(rng, ACTIONS)
        return {"id": rid, "question": f"在{district}办{subject}{action}要多久？",
                "answer": f"材料齐全的，{district}行政服务中心交通运输窗口"
                          f"{rng.choice([1, 3, 5])}个工作日内办结，不收费。"}
    if roll < 0.7:
        _, other = _place(rng)
        line = rng.randint(2, 899)
        return {"id": rid, "question": f"从{town}到{other}有没有公交？",
                "answer": f"可乘坐{district}{line}路公交，首班6:30，末班19:00，约30分钟一班。"}
    return {"id": rid, "question": f"{district}{town}的{facility}什么时候投用？",
            "answer": f"{town}{facility}正在建设，预计{rng.randint(2027, 2028)}年投入使用，"
                      f"具体以{district}交通运输局公告为准。"}


def _synonym_pool() -> list[list[str]]:
    """Every synthetic synonym group, in a fixed order (roads, districts, towns)."""
    pool = [[road, road[2:-1], f"{road[3:-1]}{road[:2]}"] for road in ROADS]  # G324, 324国道
    pool += [[d, d.removesuffix("市").removesuffix("县").removesuffix("区")]
             for d in DISTRICTS if len(d) == 3]
    pool += [["泉州台商投资区", "台商区"], ["泉州经济技术开发区", "泉州经开区", "经开区"]]
    for district, towns in TOWNS.items():
        for town in towns:
            short = town.removesuffix("街道").removesuffix("镇")
            pool.append([town, f"{short}片区", f"{district}{short}"])
    return pool


SYNONYM_POOL = _synonym_pool()


def _synonym(rid: str, serial: int) -> dict[str, Any]:
    words = SYNONYM_POOL[serial % len(SYNONYM_POOL)]  # repeats only past the pool
    return {"id": rid, "words": list(words)}


def _make(kind: str, rng: random.Random, rid: str, serial: int) -> dict[str, Any]:
    if kind == "policy":
        return _policy(rng, rid, serial)
    if kind == "synonym":
        return _synonym(rid, serial)
    builders = {"hotline": _hotline, "guide": _guide, "disclosure": _disclosure,
                "project": _project, "notice": _notice, "faq": _faq}
    return builders[kind](rng, rid)


def _dedupe_title(kind: str, rec: dict[str, Any], seen: dict[str, int]) -> None:
    """Number repeated synthetic titles (……（2）) so no two records share one."""
    field = TITLE_FIELD.get(kind)
    if field is None:
        return
    title = rec[field]
    seen[title] = seen.get(title, 0) + 1
    if seen[title] > 1:
        rec[field] = f"{title}（{seen[title]}）"


def _value(v: Any) -> str:
    """One TOML value: strings, bools, ints, dates, local date-times, arrays of strings."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, datetime):
        return v.replace(microsecond=0).isoformat()
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # JSON string escapes are valid TOML
    raise TypeError(f"unsupported value {v!r}")


def dumps(records: dict[str, list[dict[str, Any]]]) -> str:
    """Serialise {kind: [record, ...]} as a content pack (sub-tables after scalars)."""
    out: list[str] = []
    for kind in KIND_ORDER:
        for rec in records.get(kind, []):
            out.append(f"\n[[{kind}]]")
            tables = {k: v for k, v in rec.items() if isinstance(v, dict)}
            out += [f"{k} = {_value(v)}" for k, v in rec.items() if k not in tables]
            for name, table in tables.items():
                out.append(f"[{kind}.{name}]")
                out += [f"{k} = {_value(v)}" for k, v in table.items()]
    return "\n".join(out) + "\n"


def _sample_records() -> list[tuple[str, dict[str, Any]]]:
    doc = tomllib.loads(SAMPLE_PACK.read_text(encoding="utf-8"))
    return [(kind, rec) for kind in KIND_ORDER for rec in doc.get(kind, [])]


def generate(n: int, seed: int = 7) -> str:
    """A valid pack of `n` records as TOML text: the sample pack first, then synthetic ones."""
    rng = random.Random(seed)
    chosen = _sample_records()[: max(n, 0)]
    kinds, weights = list(WEIGHTS), list(WEIGHTS.values())
    seen: dict[str, int] = {}
    for kind, rec in chosen:
        _dedupe_title(kind, dict(rec), seen)  # register sample titles; never renamed
    per_kind: dict[str, int] = {}
    for serial in range(n - len(chosen)):
        kind = rng.choices(kinds, weights)[0]
        per_kind[kind] = per_kind.get(kind, 0) + 1
        rid = f"gen-{kind}-{serial:06d}"
        for _ in range(8):  # re-draw a few times before numbering a repeated title
            rec = _make(kind, rng, rid, per_kind[kind] - 1)
            if rec.get(TITLE_FIELD.get(kind, "")) not in seen:
                break
        _dedupe_title(kind, rec, seen)
        chosen.append((kind, rec))
    grouped: dict[str, list[dict[str, Any]]] = {}
    for kind, rec in chosen:
        grouped.setdefault(kind, []).append(rec)
    header = (f"# SYNTHETIC content pack for benchmarks: {n} records, seed {seed}.\n"
              "# Generated by bench/genpack.py; not official information. Starts with\n"
              "# bot/data/sample_pack.toml (itself SAMPLE content).\n")
    return header + dumps(grouped)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point: write the generated pack to OUT."""
    parser = argparse.ArgumentParser(description="Generate a synthetic qzbot content pack.")
    parser.add_argument("n", type=int, help="number of records")
    parser.add_argument("out", type=Path, help="output .toml file")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    text = generate(args.n, args.seed)
    args.out.write_text(text, encoding="utf-8")
    counts = {k: len(v) for k, v in tomllib.loads(text).items()}
    print(f"wrote {args.out}: {sum(counts.values())} records {counts}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
