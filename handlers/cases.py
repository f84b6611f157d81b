"""Casework in the chat (issue 10 items 2-4): 留言, 查询, 申请公开 and the 回访 rating.

- "留言 <内容>" files a 网民留言 (category 咨询, or the first word when it names one:
  "留言 投诉 …" -> 投诉举报) and answers with its number and 查询码 (shown once);
  "留言" alone explains how, with a signed link to the H5 留言 form.
- "查询 <编号>" answers the state, last step and due date of the citizen's own case;
  another's case needs its 查询码: "查询 <编号> <查询码>". "查询" alone (or 我的办件) lists
  the citizen's own cases. "查询 <anything else>" is a question for the search: not ours.
- "申请公开" (and the menu action "case:apply") answers with a signed link to the H5
  application form (cases/links.py); "case:message" and "case:query" are menu actions too.
- "满意" / "基本满意" / "不满意" rate the citizen's newest case awaiting 回访; without one
  the text is not ours (small talk answers it).

Thin adapter over cases/actions.py (the service layer); the webhook commits. The receipt a
citizen reads in the reply is recorded as the "received" notice shown (cases.notify).
"""

from __future__ import annotations

import logging
import unicodedata

from redis.exceptions import RedisError

from bot.errors import CaseInvalid, InvalidTransition, NotFound
from bot.router import Context, Reply
from bot.store.queries import record_interaction
from bot.vocab import RATINGS, CaseKind, QuestionOutcome
from bot.wechat.messages import Message
from bot.wechat.replies import split_text
from cases import actions, links, notify
from cases.messages import limits
from cases.numbers import normalise
from handlers.navigation import configured_menu
from push.consent import redirect_scene

log = logging.getLogger("qzbot.cases")

MESSAGE, QUERY = "留言", "查询"
APPLY_WORDS = frozenset({"申请公开", "依申请公开", "申请信息公开", "申请政府信息公开",
                         "我要申请公开", "政府信息公开申请"})
MINE_WORDS = frozenset({"查询", "我的办件", "我的留言", "我的申请", "办件查询"})
# the first word of a 留言 that names its category
CATEGORY_WORDS = {"咨询": "咨询", "建议": "建议", "投诉": "投诉举报", "举报": "投诉举报",
                  "投诉举报": "投诉举报", "求助": "求助"}
DEFAULT_CATEGORY = "咨询"
_SEPARATORS = " \t:：,，"
_TRIM = " \t\r\n\u3000。.!！~～"
MENU_VERB = "case"


def _clean(text: str) -> str:
    kept = "".join(" " if unicodedata.category(ch)[0] == "C" else ch for ch in text or "")
    return " ".join(kept.split())


def _said(msg: Message) -> str | None:
    if msg.msg_type == "text":
        return msg.content
    if msg.msg_type == "voice":
        return msg.recognition
    return None


def _after(text: str, word: str) -> str | None:
    """The rest after a leading command word ("" for the word alone), None if not it."""
    if text == word:
        return ""
    if text.startswith(word) and text[len(word)] in _SEPARATORS:
        return text[len(word):].strip(_SEPARATORS + "\u3000")
    return None


def is_case_text(msg: Message) -> bool:
    """Route predicate: a text (or recognised voice) that may be a casework command."""
    text = _said(msg)
    if text is None:
        return False
    text = _clean(text).strip(_TRIM)
    return (text.startswith((MESSAGE, QUERY)) or text in APPLY_WORDS or text in MINE_WORDS
            or text in RATINGS)


def handle_text(msg: Message, ctx: Context) -> Reply | None:
    """The casework commands; None (not mine) for everything else."""
    raw = _clean(_said(msg) or "")
    text = raw.strip(_TRIM)
    openid = msg.from_user
    if text in RATINGS:
        return rate(text, openid, ctx)
    if text in APPLY_WORDS:
        return _intent(ctx, apply_link(openid, ctx))
    if text in MINE_WORDS:
        return _intent(ctx, mine(openid, ctx))
    rest = _after(raw.strip(), MESSAGE)
    if rest is not None:
        return _intent(ctx, leave_message(rest, openid, ctx) if rest else message_help(openid, ctx))
    rest = _after(raw.strip(), QUERY)
    if rest:
        parts = rest.split()
        number = normalise(parts[0]) if parts else ""
        if not number or len(parts) > 2:
            return None  # "查询 公交线路": a question for the search
        return _intent(ctx, query(number, parts[1] if len(parts) == 2 else None, openid, ctx))
    return None


def _intent(ctx: Context, text: str) -> Reply:
    ctx.notes["outcome"] = QuestionOutcome.INTENT
    ctx.notes["cases"] = True
    chunks = split_text(text, ctx.settings.bot.reply_limit_bytes)
    return Reply(text=chunks[0], followups=tuple(chunks[1:]))


# --- 留言 ------------------------------------------------------------------------------------


def _consent_line(openid: str, ctx: Context) -> str:
    """A one-time consent link for progress notices, when one can be made."""
    spec = notify.notice_template(ctx.settings)
    if not spec or spec.get("channel", "subscribe") != "subscribe" or spec.get("long_term"):
        return ""
    scene = redirect_scene(ctx.session, openid, spec["template_id"])
    url = links.consent_url(ctx.settings, openid, spec["template_id"], scene or "", ctx.now)
    if not url:
        return ""
    return (f'\n超过48小时未与本号互动时，<a href="{url}">点此允许接收一条办理进度通知</a>'
            "（每确认一次可接收一条）。")


def message_help(openid: str, ctx: Context) -> str:
    """How to leave a 留言, with the H5 form's link when one can be made."""
    days = "、".join(f"{c}{n}个工作日" for c, n in _limits(ctx).items())
    lines = ["请回复“留言 + 您的内容”，例如：",
             "· 留言 请问公交卡可以在哪里充值",
             "· 留言 投诉 某路公交车到站不停（类别：咨询、建议、投诉、举报、求助，默认咨询）",
             f"受理后的答复时限：{days}。"]
    url = links.form_url(ctx.settings, "message", openid, ctx.now)
    if url:
        lines.append(f'也可以<a href="{url}">点此填写留言表</a>（可选择类别、留下联系方式）。')
    lines.append("如需申请政府信息公开，请回复“申请公开”。")
    return "\n".join(lines)


def _limits(ctx: Context) -> dict[str, int]:
    return limits(ctx.settings)


def split_category(rest: str) -> tuple[str, str]:
    """(category, content): the first word picks the category when it names one."""
    word, _, remainder = rest.partition(" ")
    for sep in ("：", ":", "，", ","):
        if sep in word:
            word, _, more = word.partition(sep)
            remainder = (more + " " + remainder).strip()
            break
    category = CATEGORY_WORDS.get(word)
    if category is not None and remainder.strip():
        return category, remainder.strip()
    return DEFAULT_CATEGORY, rest


def leave_message(rest: str, openid: str, ctx: Context) -> str:
    """File a 留言 and answer with its number and 查询码."""
    category, content = split_category(rest)
    try:
        result = actions.create_message(ctx.session, ctx.settings, ctx.now, channel="chat",
                                        openid=openid, category=category, content=content)
    except CaseInvalid as exc:
        log.info("留言 refused oh=%s: %s", ctx.openid_hash, "; ".join(exc.problems)[:200])
        if any(p.startswith("limit:") for p in exc.problems):
            return DAILY_LIMIT
        return "留言未能提交：内容不能为空，且不超过2000字。请修改后重新发送“留言 + 内容”。"
    notify.mark_shown(ctx.session, result.notices, "chat_reply", ctx.now)
    case = result.case
    days = _limits(ctx).get(category)
    return (f"您的留言已提交（{category}）。\n编号：{case.number}\n"
            f"查询码：{result.query_code}（请保存，仅显示这一次；他人代查时需要）\n"
            f"我们受理后{days}个工作日内答复，进展会通过本号通知您。"
            f"回复“查询 {case.number}”可查看办理进度。" + _consent_line(openid, ctx))


# --- 查询 ------------------------------------------------------------------------------------


def _date(value) -> str:
    return f"{value.year}年{value.month}月{value.day}日" if value else ""


def describe(view: actions.CitizenCaseView) -> str:
    """A case as its citizen may see it: state, last step, due date, the answer if given."""
    what = "政府信息公开申请" if view.kind == CaseKind.APPLICATION else f"留言（{view.category}）"
    lines = [f"编号：{view.number}（{what}）", f"当前状态：{view.state_label}",
             f"提交时间：{_date(view.submitted_at.date()) if view.submitted_at else ''}"]
    if view.received_on and view.kind == CaseKind.APPLICATION:
        lines.append(f"收到申请之日：{_date(view.received_on)}")
    if view.due_on:
        mark = "（预计，节假日安排待正式公布）" if view.due_provisional else ""
        lines.append(f"答复期限：{_date(view.due_on)}{mark}")
    if view.answer_type:
        lines.append(f"答复类型：{view.answer_type}")
    if view.answer_text:
        lines.append("答复内容：\n" + view.answer_text)
    if view.rating:
        lines.append(f"您的评价：{view.rating}")
    elif view.can_rate:
        lines.append("请回复“满意”“基本满意”或“不满意”对答复作出评价。")
    return "\n".join(lines)


DAILY_LIMIT = ("今天通过本号提交的留言和申请已达上限，请明天再提交；"
               "如有紧急情况请拨打12345。")


# A 查询码 has ~30 bits and case numbers are sequential: wrong codes are limited per citizen
# and per case number (Redis counters), and with Redis away code lookups are refused.
GUESSES_PER_OPENID = 10  # wrong codes per citizen per hour
GUESSES_PER_NUMBER = 30  # wrong codes for one case number per day, from anyone
TOO_MANY = "查询码输入错误次数过多，请稍后再试；本人提交的办件可直接发送“查询 编号”。"


def _guess_keys(number: str, ctx: Context) -> tuple[tuple[str, int], tuple[str, int]]:
    return ((f"qzbot:cases:guess:o:{ctx.openid_hash}", 3600),
            (f"qzbot:cases:guess:n:{normalise(number) or number}", 86400))


def _guesses_left(number: str, ctx: Context) -> bool:
    (by_openid, _), (by_number, _) = _guess_keys(number, ctx)
    counts = ctx.redis.mget([by_openid, by_number])
    return (int(counts[0] or 0) < GUESSES_PER_OPENID
            and int(counts[1] or 0) < GUESSES_PER_NUMBER)


def _count_wrong_code(number: str, ctx: Context) -> None:
    pipe = ctx.redis.pipeline(transaction=False)
    for key, ttl in _guess_keys(number, ctx):
        pipe.incr(key)
        pipe.expire(key, ttl, nx=True)
    pipe.execute()


def query(number: str, code: str | None, openid: str, ctx: Context) -> str:
    """查询 <编号> [查询码]: own cases, or anyone's with the right 查询码 (wrong codes limited)."""
    view = actions.find_for_citizen(ctx.session, number, openid, None)
    if view is None and code:
        try:
            if not _guesses_left(number, ctx):
                log.warning("查询码 guesses over the limit oh=%s", ctx.openid_hash)
                return TOO_MANY
            view = actions.find_for_citizen(ctx.session, number, openid, code)
            if view is None:
                _count_wrong_code(number, ctx)
        except RedisError:
            log.warning("查询码 lookup refused: Redis unavailable oh=%s", ctx.openid_hash)
            return "暂时无法凭查询码查询，请稍后再试；本人提交的办件可直接发送“查询 编号”。"
    if view is None:
        log.info("查询 refused or unknown oh=%s with_code=%s", ctx.openid_hash, bool(code))
        return ("没有找到该编号的办件，或查询码不正确。\n查询他人提交的办件，请同时发送查询码："
                "查询 编号 查询码")
    return describe(view)


def mine(openid: str, ctx: Context) -> str:
    """The citizen's newest cases."""
    views = actions.cases_of_citizen(ctx.session, openid)
    if not views:
        return ("您还没有通过本号提交的留言或申请。\n回复“留言 + 内容”提交留言，"
                "回复“申请公开”申请政府信息公开；查询他人办件请发送“查询 编号 查询码”。")
    lines = ["您的办件（最近5件）："]
    for v in views:
        due = f"，期限{_date(v.due_on)}" if v.due_on else ""
        lines.append(f"· {v.number} {v.state_label}{due}")
    lines.append("回复“查询 编号”查看详情。")
    return "\n".join(lines)


# --- 回访 ------------------------------------------------------------------------------------


def rate(word: str, openid: str, ctx: Context) -> Reply | None:
    """满意 / 基本满意 / 不满意 for the newest case awaiting 回访; None when there is none."""
    waiting = [v for v in actions.cases_of_citizen(ctx.session, openid, limit=20) if v.can_rate]
    if not waiting:
        return None
    number = waiting[0].number
    try:
        actions.rate_case(ctx.session, openid, number, word, ctx.now)
    except (NotFound, InvalidTransition, CaseInvalid):
        return None
    ctx.notes["outcome"] = QuestionOutcome.INTENT
    return Reply(text=f"感谢您的评价（{word}）。留言 {number} 的回访已记录。")


# --- 申请公开 and the menu -------------------------------------------------------------------


def apply_link(openid: str, ctx: Context) -> str:
    """The signed link to the application form, or how to apply without it."""
    days = ctx.settings.cases.application_days
    url = links.form_url(ctx.settings, "apply", openid, ctx.now)
    offline = ("也可以通过信函、传真、电子邮件或当面向本局政府信息公开办公室提出申请。"
               f"我们在收到申请之日起{days}个工作日内答复（节假日不计）。")
    if not url:
        return "网上申请暂未开通。" + offline
    return (f'<a href="{url}">点此填写政府信息公开申请表</a>（链接仅供您本人使用，两天内有效）。\n'
            "请准备好身份证明的照片或PDF文件。" + offline)


def handle_click(msg: Message, ctx: Context) -> Reply | None:
    """Menu CLICK whose configured action is case:apply | case:message | case:query."""
    action = configured_menu(ctx).get(msg.event_key or "")
    if not action:
        return None
    verb, _, arg = action.partition(":")
    if verb != MENU_VERB:
        return None
    record_interaction(ctx.session, msg.from_user, "click", {"key": msg.event_key}, ctx.now)
    openid = msg.from_user
    arg = arg.strip()
    if arg == "apply":
        return _intent(ctx, apply_link(openid, ctx))
    if arg == "message":
        return _intent(ctx, message_help(openid, ctx))
    if arg == "query":
        return _intent(ctx, mine(openid, ctx))
    log.error("menu case action not understood: %r", action)
    return Reply(text="该菜单暂不可用，请直接输入您的问题。")
