"""Answer documents per answer type (art. 36): the standard 答复书 text a handler starts from.

`render(answer_type, reason, fields)` fills a template with the case's facts; the handler
edits the result before it goes to review (先审查后发布). Reasons are shown with the yearly
report's row wording (bot.vocab.ANSWER_REASON_LABELS).
"""

from __future__ import annotations

from string import Template

from bot.vocab import ANSWER_REASON_LABELS, ANSWER_TYPES

HEAD = "${applicant}：\n本机关于${received}收到您提出的政府信息公开申请（编号${number}），" \
       "申请获取“${subject}”。经审查，现答复如下：\n"
TAIL = "\n如对本答复不服，可以自收到本答复之日起六十日内依法申请行政复议，或者在六个月内" \
       "依法提起行政诉讼。\n\n泉州市交通运输局\n${date}"

BODIES: dict[str, str] = {
    "已主动公开": "您申请获取的信息已经主动公开，可通过${where}查阅获取。",
    "予以公开": "您申请获取的信息属于公开范围，根据《中华人民共和国政府信息公开条例》"
               "第三十六条第（二）项的规定，现予以公开，随本答复书一并提供（或按您选择的"
               "方式提供）。",
    "部分公开": "您申请获取的信息中含有不应当公开的内容（${reason}），根据《中华人民共和国"
               "政府信息公开条例》第三十七条的规定，本机关对可以公开的部分予以提供，"
               "对不应当公开的部分不予公开并说明理由。",
    "不予公开": "您申请获取的信息${reason}，根据《中华人民共和国政府信息公开条例》"
               "第三十六条第（三）项的规定，不予公开。",
    "无法提供": "经检索，${reason}，根据《中华人民共和国政府信息公开条例》第三十六条的"
               "规定，本机关无法提供。${holder}",
    "不予处理": "您的申请属于${reason}情形，根据《中华人民共和国政府信息公开条例》的"
               "有关规定，本机关不予处理。",
    "其他处理": "您的申请因${reason}，本机关不再处理。",
}
assert set(BODIES) == set(ANSWER_TYPES)


def render(answer_type: str, reason: str | None, fields: dict[str, str]) -> str:
    """The answer document for a type and reason, filled with `fields` (applicant, received,
    number, subject, date; optional where, holder). Missing fields stay visible as ${name}
    placeholders for the handler to fill."""
    values = {"where": "本局门户网站政府信息公开专栏", "holder": "", **fields,
              "reason": ANSWER_REASON_LABELS.get(reason or "", reason or "")}
    return Template(HEAD + BODIES[answer_type] + TAIL).safe_substitute(values)
