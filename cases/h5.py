"""The citizen's H5 forms on the webhook app: /h5/apply (依申请公开), /h5/message (留言) and
/h5/consent (the one-time progress-consent redirect). Registered by bot/app.py.

Access: the signed link from the chat (cases/links.py: openid + expiry, HMAC with [security]
secret_key). A forged, expired or borrowed link gets a 403 page, logged with the openid's
pseudonym only. Each rendered form carries a form token bound to the link; a POST needs both
(no cookies, so nothing for another site to ride: CSRF-safe), and the form token is taken
once (Redis SET NX), so a double submit files nothing twice.

Input: the article-29 fields (政府信息公开条例 2019) with labels, checked on the server; every
problem is listed and nothing is stored on error. The identity proof is accepted as JPEG,
PNG or PDF by its first bytes (never by its name or declared type), at most [cases]
max_upload_mb (the body is cut off above that: 413), and stored by cases/actions.py under
[cases] upload_dir (outside any static folder) with a random name and its sha256.

Output: plain server-rendered HTML (zh-CN, 360 px phones, no script, no external asset;
a CSP without script-src), the receipt with the number and 查询码 (shown once), and a link
asking one-time consent for progress notices outside the 48-hour window.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import redis as redis_lib
from flask import Blueprint, Response, current_app, render_template, request
from sqlalchemy.orm import Session
from werkzeug.exceptions import RequestEntityTooLarge

from bot.errors import CaseInvalid
from bot.runtime import Runtime, openid_hash
from bot.settings import Settings
from bot.store.queries import record_interaction
from bot.vocab import APPLICANT_TYPES, DELIVERY_FORMS, DELIVERY_WAYS, MESSAGE_CATEGORIES
from cases import actions, links, notify
from cases.messages import CONTENT_MAX, limits
from push.consent import decide_redirect, redirect_decision, redirect_scene, template_spec

log = logging.getLogger("qzbot.cases.h5")
bp = Blueprint("cases_h5", __name__, template_folder="h5_templates")

RUNTIME = "qzbot.runtime"
FORM_ONCE = "qzbot:cases:h5form:"
ID_TYPES = ("居民身份证", "护照", "港澳居民来往内地通行证", "台湾居民来往大陆通行证",
            "统一社会信用代码", "其他")
# the first bytes of the accepted identity-proof files
SIGNATURES = ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"),
              (b"%PDF-", "application/pdf"))
CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
AGAIN = "请回到“泉州交通运输”公众号，回复“申请公开”或“留言”获取新的链接。"
# field -> (label, required, max length)
APPLY_FIELDS: dict[str, tuple[str, bool, int]] = {
    "name": ("姓名或单位名称", True, 60), "id_type": ("证件类型", True, 20),
    "id_number": ("证件号码", True, 40), "phone": ("联系电话", True, 30),
    "address": ("通信地址", False, 200), "email": ("电子邮箱", False, 120),
    "organisation_code": ("统一社会信用代码（单位）", False, 40),
    "contact_person": ("联系人（单位）", False, 60),
}
MESSAGE_FIELDS = {"name": ("称呼", False, 60), "phone": ("联系电话", False, 30)}
LABELS = {key: spec[0] for key, spec in APPLY_FIELDS.items()} | {
    "applicant_type": "申请人类型", "subject": "所需信息的描述", "document_no": "文号",
    "delivery_form": "获取信息的形式", "delivery_way": "获取信息的途径", "files": "身份证明",
    "proof": "身份证明", "category": "类别", "content": "留言内容", "contact": "联系方式"}


def _rt() -> Runtime:
    return current_app.extensions[RUNTIME]


def _page(template: str, status: int = 200, **context: Any) -> Response:
    """An H5 page: never cached, no referrer (the URL holds the openid and token), no script."""
    resp = Response(render_template(template, **context), status=status, mimetype="text/html")
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Referrer-Policy"] = "no-referrer"
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["X-Frame-Options"] = "DENY"
    resp.headers["Content-Security-Policy"] = CSP
    return resp


def _message_page(title: str, body: str, status: int) -> Response:
    return _page("h5_page.html", status, title=title, body=body)


def _refuse(status: int, reason: str, openid: str, body: str) -> Response:
    log.warning("h5 refused %s oh=%s path=%s", reason, openid_hash(openid) if openid else "-",
                request.path)
    title = {403: "链接无效", 409: "请勿重复提交", 413: "文件过大"}.get(status, "请求有误")
    return _message_page(title, body, status)


def _link(form: str) -> tuple[str, str] | Response:
    """(openid, link token) of a valid link, or the 403 page."""
    openid = request.values.get("openid", "")[:64]
    token = request.values.get("t", "")[:80]
    try:
        links.check_link_token(_rt().settings, token, form, openid, _rt().now())
    except links.LinkInvalid as exc:
        return _refuse(403, f"link_{exc.reason}", openid, "该链接已过期或不属于您。" + AGAIN)
    return openid, token


def sniff(data: bytes) -> str | None:
    """The content type the bytes are (JPEG, PNG, PDF), whatever the file is called."""
    return next((kind for magic, kind in SIGNATURES if data.startswith(magic)), None)


def _upload_limit(settings: Settings) -> int:
    return settings.cases.max_upload_mb * 1024 * 1024


def _form_context(settings: Settings, form: str, openid: str, token: str,
                  values: dict[str, str], problems: list[str]) -> dict[str, Any]:
    return {"openid": openid, "t": token, "values": values, "problems": problems,
            "ft": links.issue_form_token(settings, token, openid, _rt().now()),
            "applicant_types": APPLICANT_TYPES, "id_types": ID_TYPES,
            "delivery_forms": DELIVERY_FORMS, "delivery_ways": DELIVERY_WAYS,
            "categories": MESSAGE_CATEGORIES, "limits": limits(settings),
            "fields": APPLY_FIELDS if form == "apply" else MESSAGE_FIELDS,
            "max_mb": settings.cases.max_upload_mb, "content_max": CONTENT_MAX,
            "days": settings.cases.application_days}


def _translate(problems: list[str]) -> list[str]:
    """The service's problems ("applicant.name: required") in the citizen's words."""
    said = []
    for problem in problems:
        key, _, detail = problem.partition(": ")
        field = key.rsplit(".", 1)[-1]
        label = LABELS.get(field)
        if key == "limit":
            said.append("今天通过本号提交的留言和申请已达上限，请明天再提交；"
                        "如有紧急情况请拨打12345。")
        elif label is None:
            said.append(f"提交的内容有误：{problem}")
        elif detail == "required" or detail.startswith("required"):
            said.append(f"请填写{label}。")
        else:
            said.append(f"{label}填写有误（{detail}）。")
    return said


def _take_form_token(rt: Runtime, ft: str) -> bool | None:
    """Claim a form token once: True, False when already used, None when Redis is down."""
    key = FORM_ONCE + hashlib.sha256(ft.encode()).hexdigest()[:32]
    try:
        return bool(rt.redis.set(key, "1", nx=True, ex=links.FORM_TTL + 60))
    except redis_lib.RedisError:
        return None


def _release_form_token(rt: Runtime, ft: str) -> None:
    try:
        rt.redis.delete(FORM_ONCE + hashlib.sha256(ft.encode()).hexdigest()[:32])
    except redis_lib.RedisError:
        pass


def consent_link(session: Session, settings: Settings, openid: str, now) -> str:
    """The one-time progress-consent link for the receipt page ("" when none applies)."""
    spec = notify.notice_template(settings)
    if not spec or spec.get("channel", "subscribe") != "subscribe" or spec.get("long_term"):
        return ""
    scene = redirect_scene(session, openid, spec["template_id"])
    return links.consent_url(settings, openid, spec["template_id"], scene or "", now)


def _checked_post(form: str) -> tuple[str, str, str] | Response:
    """The link and the form token of a POST (the body limited first): (openid, t, ft)."""
    rt = _rt()
    most = _upload_limit(rt.settings) + 256 * 1024  # the file and the form's text fields
    request.max_content_length = most  # also cuts off a body sent without Content-Length
    request.max_form_memory_size = 64 * 1024
    try:
        if (request.content_length or 0) > most:  # refused before any of it is parsed
            raise RequestEntityTooLarge()
        request.form.get("ft")
    except RequestEntityTooLarge:
        return _refuse(413, "too_large", request.args.get("openid", ""),
                       f"上传的文件超过{rt.settings.cases.max_upload_mb}MB，请压缩后重新提交。")
    linked = _link(form)
    if isinstance(linked, Response):
        return linked
    openid, token = linked
    ft = request.form.get("ft", "")[:80]
    try:
        links.check_form_token(rt.settings, ft, token, openid, rt.now())
    except links.LinkInvalid as exc:
        return _refuse(403, exc.reason, openid, "表单已过期或无效，请重新打开链接填写。" + AGAIN)
    return openid, token, ft


# --- 依申请公开 -------------------------------------------------------------------------------


def check_apply(settings: Settings, values: dict[str, str],
                proof: tuple[str, bytes] | None) -> list[str]:
    """Every problem with the application form, in Chinese (empty when it may be filed)."""
    problems = []
    for key, (label, required, most) in APPLY_FIELDS.items():
        value = values.get(key, "")
        if required and not value:
            problems.append(f"请填写{label}。")
        elif len(value) > most:
            problems.append(f"{label}不能超过{most}个字。")
    if values.get("id_type") and values["id_type"] not in ID_TYPES:
        problems.append("请选择证件类型。")
    if values.get("applicant_type") not in APPLICANT_TYPES:
        problems.append("请选择申请人类型。")
    if not values.get("subject") and not values.get("document_no"):
        problems.append("请描述所需的政府信息，或填写其文号。")
    if len(values.get("subject", "")) > 2000 or len(values.get("document_no", "")) > 64:
        problems.append("所需信息的描述不能超过2000字，文号不能超过64个字。")
    if values.get("delivery_form") not in DELIVERY_FORMS:
        problems.append("请选择获取信息的形式。")
    if values.get("delivery_way") not in DELIVERY_WAYS:
        problems.append("请选择获取信息的途径。")
    if values.get("delivery_way") == "邮寄" and not values.get("address"):
        problems.append("选择邮寄时请填写通信地址。")
    if values.get("delivery_way") == "电子邮件" and not values.get("email"):
        problems.append("选择电子邮件时请填写电子邮箱。")
    if values.get("email") and "@" not in values["email"]:
        problems.append("电子邮箱格式不正确。")
    if proof is None:
        problems.append("请上传身份证明（身份证、营业执照等的照片或PDF）。")
    else:
        name, data = proof
        if len(data) > _upload_limit(settings):
            problems.append(f"身份证明文件超过{settings.cases.max_upload_mb}MB。")
        elif sniff(data) is None:
            problems.append("身份证明只接受JPG、PNG图片或PDF文件。")
    return problems


def _proof() -> tuple[str, bytes] | None:
    upload = request.files.get("proof")
    if upload is None or not upload.filename:
        return None
    return upload.filename[:200], upload.read()


@bp.route("/h5/apply", methods=["GET", "POST"])
def apply() -> Response:
    """The 政府信息公开申请表 (art. 29)."""
    rt = _rt()
    if request.method == "GET":
        linked = _link("apply")
        if isinstance(linked, Response):
            return linked
        return _page("h5_apply.html", **_form_context(rt.settings, "apply", *linked, {}, []))
    checked = _checked_post("apply")
    if isinstance(checked, Response):
        return checked
    openid, token, ft = checked
    values = {key: request.form.get(key, "").strip()
              for key in (*APPLY_FIELDS, "applicant_type", "subject", "document_no",
                          "delivery_form", "delivery_way")}
    proof = _proof()
    problems = check_apply(rt.settings, values, proof)
    if problems:
        return _page("h5_apply.html", 400, **_form_context(rt.settings, "apply", openid, token,
                                                           values, problems))
    taken = _take_form_token(rt, ft)
    if taken is None:
        return _message_page("暂时无法提交", "系统繁忙，请稍后再试。", 503)
    if not taken:
        return _refuse(409, "form_reused", openid, "该申请表已经提交过。" + AGAIN)
    name, data = proof
    applicant = {k: values[k] for k in APPLY_FIELDS if values.get(k)}
    with rt.sessions() as session:
        try:
            result = actions.create_application(
                session, rt.settings, rt.now(), channel="h5", openid=openid,
                applicant=applicant, applicant_type=values["applicant_type"],
                subject=values["subject"], document_no=values["document_no"] or None,
                delivery_form=values["delivery_form"], delivery_way=values["delivery_way"],
                files=(actions.Upload(name, sniff(data) or "", data, "identity_proof"),))
        except CaseInvalid as exc:
            session.rollback()
            _release_form_token(rt, ft)
            return _page("h5_apply.html", 400, **_form_context(
                rt.settings, "apply", openid, token, values, _translate(exc.problems)))
        notify.mark_shown(session, result.notices, "h5_receipt", rt.now())
        record_interaction(session, openid, "case_h5", {"form": "apply",
                                                        "number": result.case.number}, rt.now())
        consent = consent_link(session, rt.settings, openid, rt.now())
        session.commit()
    log.info("h5 application %s oh=%s", result.case.number, openid_hash(openid))
    return _page("h5_receipt.html", kind="apply", number=result.case.number,
                 code=result.query_code, consent=consent,
                 days=rt.settings.cases.application_days)


# --- 留言 -------------------------------------------------------------------------------------


@bp.route("/h5/message", methods=["GET", "POST"])
def message() -> Response:
    """The 留言 form: category, content, optional contact."""
    rt = _rt()
    if request.method == "GET":
        linked = _link("message")
        if isinstance(linked, Response):
            return linked
        return _page("h5_message.html", **_form_context(rt.settings, "message", *linked,
                                                        {"category": "咨询"}, []))
    checked = _checked_post("message")
    if isinstance(checked, Response):
        return checked
    openid, token, ft = checked
    values = {key: request.form.get(key, "").strip()
              for key in ("category", "content", *MESSAGE_FIELDS)}
    problems = []
    if values["category"] not in limits(rt.settings):
        problems.append("请选择留言类别。")
    if not values["content"]:
        problems.append("请填写留言内容。")
    elif len(values["content"]) > CONTENT_MAX:
        problems.append(f"留言内容不能超过{CONTENT_MAX}字。")
    for key, (label, _, most) in MESSAGE_FIELDS.items():
        if len(values[key]) > most:
            problems.append(f"{label}不能超过{most}个字。")
    if problems:
        return _page("h5_message.html", 400, **_form_context(rt.settings, "message", openid,
                                                             token, values, problems))
    taken = _take_form_token(rt, ft)
    if taken is None:
        return _message_page("暂时无法提交", "系统繁忙，请稍后再试。", 503)
    if not taken:
        return _refuse(409, "form_reused", openid, "该留言已经提交过。" + AGAIN)
    contact = {k: values[k] for k in MESSAGE_FIELDS if values[k]}
    with rt.sessions() as session:
        try:
            result = actions.create_message(session, rt.settings, rt.now(), channel="h5",
                                            openid=openid, category=values["category"],
                                            content=values["content"], contact=contact)
        except CaseInvalid as exc:
            session.rollback()
            _release_form_token(rt, ft)
            return _page("h5_message.html", 400, **_form_context(
                rt.settings, "message", openid, token, values, _translate(exc.problems)))
        notify.mark_shown(session, result.notices, "h5_receipt", rt.now())
        consent = consent_link(session, rt.settings, openid, rt.now())
        session.commit()
    log.info("h5 message %s oh=%s", result.case.number, openid_hash(openid))
    return _page("h5_receipt.html", kind="message", number=result.case.number,
                 code=result.query_code, consent=consent,
                 days=limits(rt.settings).get(values["category"]))


# --- the progress-consent redirect -------------------------------------------------------------


@bp.get(links.CONSENT_PATH)
def consent() -> Response:
    """WeChat's redirect after the citizen confirmed or cancelled one progress notice."""
    rt = _rt()
    args = {k: request.args.get(k, "")[:128].strip()
            for k in ("openid", "template_id", "action", "scene", "reserved")}
    openid = args["openid"]
    if not openid or not args["template_id"] or not links.valid_scene(args["scene"]) \
            or args["action"] not in ("confirm", "cancel"):
        return _refuse(400, "consent_bad_args", openid, "链接缺少必要的参数。" + AGAIN)
    spec = notify.notice_template(rt.settings)
    if spec is None or spec["template_id"] != args["template_id"] \
            or template_spec(rt.settings, args["template_id"]) is None:
        return _refuse(400, "consent_unknown_template", openid, "该通知模板已停用。")
    now = rt.now()
    try:
        links.check_consent_reserved(rt.settings, args["reserved"], openid,
                                     args["template_id"], args["scene"], now)
    except links.LinkInvalid as exc:
        return _refuse(403, f"consent_{exc.reason}", openid, "该链接已过期或不属于您。" + AGAIN)
    with rt.sessions() as session:
        decided = decide_redirect(session, openid, args["template_id"], args["scene"],
                                  args["action"], now)
        if not decided and redirect_decision(session, openid, args["template_id"],
                                             args["scene"]) != args["action"]:
            session.rollback()
            return _refuse(403, "consent_other_action", openid,
                           "此链接已用于另一项选择，不能更改。" + AGAIN)
        record_interaction(session, openid, "case_consent",
                           {"action": args["action"], "scene": args["scene"],
                            "changed": decided}, now)
        session.commit()
    log.info("case consent %s oh=%s scene=%s changed=%s", args["action"], openid_hash(openid),
             args["scene"], decided)
    if args["action"] == "confirm":
        return _message_page("已允许", "您已同意接收一条办理进度通知。办件有新进展时，"
                             "我们会通过公众号通知您。", 200)
    return _message_page("已取消", "您未同意接收办理进度通知。您仍可在公众号回复"
                         "“查询 编号”查看进度。", 200)
