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


# --- casework (issue 10): 依申请公开 applications and 网民留言 -----------------------------
# Stored strings are the English values; the labels are what staff and citizens read. The
# answer types and their reasons are the exact row names of the yearly report's table 三
# (国办公开办函〔2021〕30号), so the report counts cases by these strings as they are.


class CaseKind(StrEnum):
    """What a case is: an application under the 2019 regulation, or a citizen's message."""

    APPLICATION = "application"
    MESSAGE = "message"


CASE_KIND_LABELS: dict[str, str] = {"application": "依申请公开", "message": "网民留言"}


class CaseRole(StrEnum):
    """Casework roles (Staff.case_roles), beside the console role: the registrar takes cases
    in and routes them, a handler works the cases of his department, the head of the
    disclosure office reviews answers and approves extensions (art. 33)."""

    REGISTRAR = "registrar"
    HANDLER = "handler"
    OFFICE_HEAD = "office_head"


CASE_ROLE_LABELS: dict[str, str] = {"registrar": "登记员", "handler": "承办人",
                                    "office_head": "公开办负责人"}


class ApplicationState(StrEnum):
    """registered (online, receipt not yet confirmed: art. 31) -> reviewing (receipt date set,
    answer clock running) -> [correction -> reviewing] -> handling (assigned to a department)
    [-> consultation -> handling] -> answer_drafted -> answer_review -> delivering ->
    archived; closed = 其他处理 (e.g. no correction in time). An extension is an event on
    handling, not a state."""

    REGISTERED = "registered"
    REVIEWING = "reviewing"
    CORRECTION = "correction"
    HANDLING = "handling"
    CONSULTATION = "consultation"
    ANSWER_DRAFTED = "answer_drafted"
    ANSWER_REVIEW = "answer_review"
    DELIVERING = "delivering"
    ARCHIVED = "archived"
    CLOSED = "closed"


APPLICATION_STATE_LABELS: dict[str, str] = {
    "registered": "登记", "reviewing": "审核", "correction": "补正中", "handling": "办理",
    "consultation": "征求第三方意见", "answer_drafted": "答复拟稿", "answer_review": "答复审核",
    "delivering": "送达", "archived": "归档", "closed": "其他处理",
}
APPLICATION_FINAL_STATES = frozenset({"archived", "closed"})


class MessageState(StrEnum):
    """submitted -> accepted | rejected (reason) ; accepted -> transferred (department,
    sign-for deadline) -> signed | returned (-> transferred again) ; signed -> handling
    (reply drafted; extension request) -> reply_review -> replied (the citizen sees it only
    after review) -> visited (the citizen's rating) -> closed (办结) | redo (重办) -> handling."""

    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    TRANSFERRED = "transferred"
    SIGNED = "signed"
    RETURNED = "returned"
    HANDLING = "handling"
    REPLY_REVIEW = "reply_review"
    REPLIED = "replied"
    VISITED = "visited"
    REDO = "redo"
    CLOSED = "closed"


MESSAGE_STATE_LABELS: dict[str, str] = {
    "submitted": "已提交", "accepted": "已受理", "rejected": "不予受理", "transferred": "转办",
    "signed": "已签收", "returned": "退回", "handling": "办理中", "reply_review": "答复审核",
    "replied": "已答复", "visited": "已回访", "redo": "重办", "closed": "办结",
}
MESSAGE_FINAL_STATES = frozenset({"rejected", "closed"})


def case_state_label(kind: str, state: str) -> str:
    """The Chinese name of a case's state (the stored value when it is unknown)."""
    labels = APPLICATION_STATE_LABELS if kind == CaseKind.APPLICATION else MESSAGE_STATE_LABELS
    return labels.get(state, state)


# Answer types (art. 36) = the result rows of the yearly report's table 三, with their reasons
# (sub-rows) in the report's order; a type with no reasons takes none. The stored strings are
# the short names of ../shared/docs/disclosure-rules.md; ANSWER_REASON_LABELS gives each the
# row wording of the 2021 report template, for answer documents and the report.
ANSWER_TYPES: tuple[str, ...] = ("已主动公开", "予以公开", "部分公开", "不予公开", "无法提供",
                                 "不予处理", "其他处理")
ANSWER_REASONS: dict[str, tuple[str, ...]] = {
    "已主动公开": (),
    "予以公开": (),
    "部分公开": (),
    "不予公开": ("国家秘密", "其他法律行政法规禁止", "危及\"三安全一稳定\"", "保护第三方合法权益",
                 "三类内部事务信息", "四类过程性信息", "行政执法案卷", "行政查询事项"),
    "无法提供": ("本机关不掌握", "没有现成信息需另行制作", "补正后仍不明确"),
    "不予处理": ("信访举报投诉类", "重复申请", "要求提供公开出版物", "无正当理由大量反复申请",
                 "要求确认或重新出具已获取信息"),
    "其他处理": ("逾期不补正", "逾期不缴费", "其他"),
}
ANSWER_REASON_LABELS: dict[str, str] = {
    "国家秘密": "属于国家秘密", "其他法律行政法规禁止": "其他法律行政法规禁止公开",
    "危及\"三安全一稳定\"": "危及“三安全一稳定”", "保护第三方合法权益": "保护第三方合法权益",
    "三类内部事务信息": "属于三类内部事务信息", "四类过程性信息": "属于四类过程性信息",
    "行政执法案卷": "属于行政执法案卷", "行政查询事项": "属于行政查询事项",
    "本机关不掌握": "本机关不掌握相关政府信息",
    "没有现成信息需另行制作": "没有现成信息需要另行制作",
    "补正后仍不明确": "补正后申请内容仍不明确", "信访举报投诉类": "信访举报投诉类申请",
    "重复申请": "重复申请", "要求提供公开出版物": "要求提供公开出版物",
    "无正当理由大量反复申请": "无正当理由大量反复申请",
    "要求确认或重新出具已获取信息": "要求行政机关确认或重新出具已获取信息",
    "逾期不补正": "申请人无正当理由逾期不补正、行政机关不再处理其政府信息公开申请",
    "逾期不缴费": "申请人逾期未按收费通知要求缴纳费用、行政机关不再处理其政府信息公开申请",
    "其他": "其他",
}
# the reason the alert job records when no correction arrived in time (art. 30)
LAPSED_CORRECTION_REASON = "逾期不补正"
# the applicant columns of table 三
APPLICANT_TYPES: tuple[str, ...] = ("自然人", "商业企业", "科研机构", "社会公益组织",
                                    "法律服务机构", "其他")

CASE_CHANNELS: dict[str, str] = {"h5": "网上申请", "chat": "微信留言", "letter": "信函",
                                 "fax": "传真", "email": "电子邮件", "in_person": "当面提交"}
STAFF_CHANNELS = ("letter", "fax", "email", "in_person")  # registered by staff (art. 29, 31)
DELIVERY_FORMS: tuple[str, ...] = ("纸质", "电子")
DELIVERY_WAYS: tuple[str, ...] = ("邮寄", "自取", "电子邮件", "微信")

# 网民留言 categories: working-day limits in [cases] message_limits
MESSAGE_CATEGORIES: tuple[str, ...] = ("咨询", "建议", "投诉举报", "求助")
RATINGS: tuple[str, ...] = ("满意", "基本满意", "不满意")


class ClockKind(StrEnum):
    """A CaseClock segment: the answer period (applications), the applicant's 补正 limit,
    a third-party consultation, a 留言's sign-for limit and its reply limit."""

    ANSWER = "answer"
    CORRECTION = "correction"
    CONSULTATION = "consultation"
    SIGN_FOR = "sign_for"
    REPLY = "reply"


CLOCK_KIND_LABELS: dict[str, str] = {"answer": "答复期限", "correction": "补正期限",
                                     "consultation": "征求意见期限", "sign_for": "签收期限",
                                     "reply": "答复期限"}


class ClockStatus(StrEnum):
    """running (counts), paused (consultation or 补正: `paused_on` set), done, lapsed."""

    RUNNING = "running"
    PAUSED = "paused"
    DONE = "done"
    LAPSED = "lapsed"


ALERT_LEVELS: tuple[str, ...] = ("T-5", "T-2", "T-0", "overdue")
ALERT_LEVEL_LABELS: dict[str, str] = {"T-5": "5个工作日内到期", "T-2": "2个工作日内到期",
                                      "T-0": "今日到期", "overdue": "已超期"}


class CaseNotice(StrEnum):
    """What a citizen is told about his case (CaseEvent.detail["notify"]; cases/notify.py)."""

    RECEIVED = "received"  # an application's receipt confirmed / a 留言 registered
    ACCEPTED = "accepted"  # a 留言 accepted
    REJECTED = "rejected"  # a 留言 not accepted (reason)
    CORRECTION = "correction"  # 补正 needed (what, and by when)
    EXTENDED = "extended"  # answer period extended (art. 33), new due date
    ANSWERED = "answered"  # the answer (application delivered by WeChat, or 留言 reply)
    CLOSED = "closed"  # closed without an answer (其他处理, e.g. no correction in time)
    VISIT = "visit"  # 回访: please rate the reply (满意 / 基本满意 / 不满意)


CASE_NOTICE_LABELS: dict[str, str] = {
    "received": "已收到", "accepted": "已受理", "rejected": "不予受理", "correction": "需要补正",
    "extended": "延期答复", "answered": "已答复", "closed": "已终止", "visit": "请评价",
}
