"""The service's vocabulary, defined once: topics, record kinds, notice kinds, districts, staff
roles and campaign/delivery states, their Chinese labels and the words citizens use for them.

Every module imports these names from here (bot.store.models re-exports the enums it stores,
so `from bot.store.models import Topic` keeps working). This module imports nothing of the
project: it is the bottom of the foundation. Values stored in the database or written in
content packs keep their exact strings; the label and alias tables are keyed by plain `str`
values, so what they yield can go to the database as it is.

Where earlier copies disagreed, the word chosen is the one a Quanzhou citizen reads:
- rail notices are 铁路 (not 轨道交通 or 轨道/铁路): Quanzhou has no metro, its rail notices
  are about 国铁 trains (泉州站, 泉州南站, 动车);
- ferry notices are 轮渡 (not 轮渡/水运), the word citizens subscribe with;
- record kind -> topic (`record_topic`): a policy published with its 解读 goes to 政策解读
  (the bureau publishes a policy together with its interpretation, and 政策解读 subscribers
  want exactly those); a policy without one, and every other disclosure-catalogue entry, goes
  to 政务公开; notices to 出行资讯, projects to 项目进展; guides, hotlines and FAQs to no topic.
- the seed's two other topics (实施细则 (八): 市场监管动态, 便民惠企措施) are decided from fields
  every pack already has, so packs keep their format: a policy or disclosure entry is a
  便民惠企 measure when one of its `keywords` (or a disclosure entry's `category`) contains
  便民惠企, 惠企, 便民措施 or 惠民措施 (an explicit flag, so it wins over the rules below and
  above); a disclosure entry whose `category` names market supervision — 行政许可, 行政处罚,
  行政检查, 监督检查, 双随机(一公开) or 信用 — goes to 市场监管动态.
  Earlier push/campaigns.py sent every policy to 政务公开 (only for choosing a template when a
  campaign has no topic audience); push/drafts.py's answer above is the one kept.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

# --- records -----------------------------------------------------------------------------


class Kind(StrEnum):
    """Content-pack record kinds."""

    HOTLINE = "hotline"
    GUIDE = "guide"
    POLICY = "policy"
    DISCLOSURE = "disclosure"
    PROJECT = "project"
    NOTICE = "notice"
    FAQ = "faq"
    SYNONYM = "synonym"


# The kinds citizens are answered with, in the order search lists them (synonyms are not).
ANSWER_KINDS = (Kind.HOTLINE, Kind.GUIDE, Kind.POLICY, Kind.DISCLOSURE, Kind.PROJECT,
                Kind.NOTICE, Kind.FAQ)
KIND_LABEL: dict[str, str] = {
    Kind.GUIDE.value: "办事指南", Kind.HOTLINE.value: "咨询电话",
    Kind.POLICY.value: "政策文件", Kind.DISCLOSURE.value: "政府信息公开",
    Kind.PROJECT.value: "重点项目", Kind.NOTICE.value: "出行资讯", Kind.FAQ.value: "常见问题",
}

# The disclosure attribute every record carries; only 主动公开 is ever shown or pushed.
PUBLIC = "主动公开"
DISCLOSURE_VALUES = (PUBLIC, "依申请公开", "不予公开")


class NoticeKind(StrEnum):
    """What a travel notice is about."""

    ROAD = "road"
    BUS = "bus"
    COACH = "coach"
    FERRY = "ferry"
    TAXI = "taxi"
    RAIL = "rail"
    OTHER = "other"


NOTICE_KINDS: tuple[str, ...] = tuple(k.value for k in NoticeKind)
NOTICE_KIND_LABEL: dict[str, str] = {
    NoticeKind.ROAD.value: "道路", NoticeKind.BUS.value: "公交", NoticeKind.COACH.value: "客运",
    NoticeKind.FERRY.value: "轮渡", NoticeKind.TAXI.value: "出租车", NoticeKind.RAIL.value: "铁路",
    NoticeKind.OTHER.value: "其他",
}
# Words citizens use for a notice kind after 订阅/退订 (the label among them).
NOTICE_KIND_ALIASES: dict[str, tuple[str, ...]] = {
    NoticeKind.ROAD.value: ("道路", "封路", "路况", "道路施工"),
    NoticeKind.BUS.value: ("公交", "公交车"),
    NoticeKind.COACH.value: ("客运", "长途", "长途客运", "长途汽车"),
    NoticeKind.FERRY.value: ("轮渡", "渡轮"),
    NoticeKind.TAXI.value: ("出租", "出租车", "的士"),
    NoticeKind.RAIL.value: ("铁路", "地铁", "火车"),
    NoticeKind.OTHER.value: ("其他", "其它"),
}

# --- topics --------------------------------------------------------------------------------


class Topic(StrEnum):
    """What citizens subscribe to."""

    GOV = "政务公开"
    PROJECT = "项目进展"
    TRAVEL = "出行资讯"
    POLICY = "政策解读"
    MARKET = "市场监管动态"
    BENEFIT = "便民惠企措施"


# The order topics are listed to citizens.
TOPIC_ORDER = (Topic.TRAVEL.value, Topic.PROJECT.value, Topic.GOV.value, Topic.POLICY.value,
               Topic.MARKET.value, Topic.BENEFIT.value)
# Words citizens use for a topic after 订阅/退订 (the topic's own name first).
TOPIC_ALIASES: dict[str, tuple[str, ...]] = {
    Topic.GOV.value: ("政务公开", "公开", "信息公开", "政府信息公开", "政务"),
    Topic.PROJECT.value: ("项目进展", "项目", "重点项目", "工程进展"),
    Topic.TRAVEL.value: ("出行资讯", "出行", "交通出行", "出行信息"),
    Topic.POLICY.value: ("政策解读", "解读", "政策"),
    Topic.MARKET.value: ("市场监管动态", "市场监管", "监管动态", "监管", "执法动态", "行政处罚",
                         "处罚公示", "行政许可", "许可公示", "双随机", "信用监管"),
    Topic.BENEFIT.value: ("便民惠企措施", "便民惠企", "便民措施", "惠企措施", "惠民措施",
                          "惠企政策", "便民", "惠企", "惠民"),
}
# Staff name a topic by its value or by this short code (`qzbot push create --topic travel`).
TOPIC_CODES: dict[str, Topic] = {t.name.lower(): t for t in Topic}
# Which filters make sense for which topic: notice kinds exist only for travel notices,
# districts for travel notices and projects.
DISTRICT_TOPICS = frozenset({Topic.TRAVEL.value, Topic.PROJECT.value})
KIND_TOPICS = frozenset({Topic.TRAVEL.value})


def topic_named(name: str) -> Topic | None:
    """The topic staff named by its value (政务公开) or code (gov), or None."""
    if name in TOPIC_CODES:
        return TOPIC_CODES[name]
    try:
        return Topic(name)
    except ValueError:
        return None


# What marks a record as a 便民惠企 measure (in a keyword, or a disclosure entry's category)
# and a disclosure category as market supervision: substrings, see the module docstring.
BENEFIT_MARKERS = ("便民惠企", "惠企", "便民措施", "惠民措施")
MARKET_CATEGORIES = ("行政许可", "行政处罚", "行政检查", "监督检查", "双随机", "信用")


def record_topic(kind: str, interpreted: bool = False, category: str = "",
                 keywords: Sequence[str] = ()) -> Topic | None:
    """The topic a record of this kind is pushed to (`interpreted`: a policy with its 解读;
    `category`: a disclosure entry's catalogue category; `keywords`: the record's)."""
    if kind in (Kind.POLICY, Kind.DISCLOSURE) and any(
            marker in word for word in (*keywords, category) for marker in BENEFIT_MARKERS):
        return Topic.BENEFIT
    if kind == Kind.DISCLOSURE and any(c in category for c in MARKET_CATEGORIES):
        return Topic.MARKET
    if kind == Kind.NOTICE:
        return Topic.TRAVEL
    if kind == Kind.PROJECT:
        return Topic.PROJECT
    if kind == Kind.POLICY and interpreted:
        return Topic.POLICY
    if kind in (Kind.POLICY, Kind.DISCLOSURE):
        return Topic.GOV
    return None


def topic_of_record(kind: str, data: Mapping[str, Any]) -> Topic | None:
    """record_topic for a record's pack fields (`data`): what drafts and campaigns use."""
    return record_topic(kind, bool(data.get("interpretation")), str(data.get("category") or ""),
                        tuple(str(k) for k in data.get("keywords") or ()))


# --- districts -----------------------------------------------------------------------------

# Quanzhou's districts, county-level cities and counties, and its two zones: the default of
# [bot] districts (a content pack's `district` must be one of the configured ones).
DEFAULT_DISTRICTS = (
    "鲤城区", "丰泽区", "洛江区", "泉港区", "晋江市", "石狮市", "南安市", "惠安县",
    "安溪县", "永春县", "德化县", "泉州台商投资区", "泉州经济技术开发区",
)
# Short names for the two zones whose official names citizens rarely type in full.
DISTRICT_SHORT_NAMES: dict[str, tuple[str, ...]] = {
    "泉州台商投资区": ("台商投资区", "台商区", "台商"),
    "泉州经济技术开发区": ("经济技术开发区", "经开区", "开发区"),
}

# --- staff and campaigns -------------------------------------------------------------------


class Role(StrEnum):
    """Staff roles: editors write campaigns, reviewers approve, admins do both and manage staff."""

    EDITOR = "editor"
    REVIEWER = "reviewer"
    ADMIN = "admin"


ROLE_LABELS: dict[str, str] = {"editor": "编辑", "reviewer": "审核", "admin": "管理员"}


class CampaignStatus(StrEnum):
    """draft -> submitted -> approved | rejected -> scheduled -> sending -> done | cancelled."""

    DRAFT = "draft"
    SUBMITTED = "submitted"
    APPROVED = "approved"
    REJECTED = "rejected"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    DONE = "done"
    CANCELLED = "cancelled"
    STOPPED = "stopped"  # a campaign-level WeChat error (47003, 48001) halted it


class DeliveryStatus(StrEnum):
    """One recipient's delivery state."""

    PENDING = "pending"
    SENDING = "sending"  # claimed by a worker, outcome not yet recorded
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"
    UNKNOWN = "unknown"  # ambiguous outcome (timeout): never blind-retried


# --- citizens' questions (issue 9: the console's questions page) ---------------------------


class QuestionOutcome(StrEnum):
    """What became of a citizen's text (or recognised voice) message, counted per day.

    Handlers name it in `ctx.notes["outcome"]`; the webhook counts it after the answer."""

    ANSWER = "answer"  # one record answered
    LIST = "list"  # a numbered list of relevant records
    FALLBACK = "fallback"  # nothing relevant: the honest fallback (recorded as unanswered)
    SMALLTALK = "smalltalk"  # greetings, thanks, English
    NAVIGATION = "navigation"  # 菜单, 更多/上一页, a list's name (通知, 项目...)
    PICK = "pick"  # a number chosen from a list
    INTENT = "intent"  # 订阅/退订 commands and the same in natural words
    EMPTY = "empty"  # nothing left after cleaning
    ERROR = "error"  # a handler failed or the database was down: the apology
    OTHER = "other"  # anything a handler did not name (e.g. unrecognised voice)


OUTCOME_LABELS: dict[str, str] = {
    "answer": "已回答", "list": "列表供选择", "fallback": "未能回答", "smalltalk": "寒暄闲聊",
    "navigation": "菜单翻页", "pick": "选择编号", "intent": "订阅办理", "empty": "空消息",
    "error": "系统故障", "other": "其他",
}
