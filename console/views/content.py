"""Console pages: content records — list and filter, record page (fields, source, policy <->
解读 pairing, history), draft -> review -> publish, diffs, pack import (dry run, then confirm)
and export.

Thin adapter over editorial.actions (no SQL here): it parses forms, calls one service
function, commits, and maps errors (PermissionDenied 403, NotFound 404; a refused
transition or invalid draft is flashed on the page it came from). The coexistence rule with
pack imports ("a console edit wins") is stated on the import page and in editorial/__init__.
An uploaded pack waits for its confirmation in Redis (30 minutes, tied to the uploader).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.wrappers import Response as WerkzeugResponse

from bot.content.schema import KINDS
from bot.errors import InvalidTransition, NotFound, PackInvalid, PermissionDenied
from bot.vocab import DISCLOSURE_VALUES
from console.web import actor, db, has_role, roles_required, rt
from editorial import actions
from editorial import revisions as rv

bp = Blueprint("content", __name__, url_prefix="/content")
UPLOAD_KEY = "qzbot:console:pack-upload:"
UPLOAD_TTL = 30 * 60
STATUS_LABELS = {"": "全部线上记录", "unpaired": "缺少解读的政策", "draft": "草稿",
                 "in_review": "待审核", "rejected": "已退回"}


@bp.context_processor
def _helpers() -> dict[str, Any]:
    return {"KIND_LABELS": rv.KIND_LABELS,
            "STATE_LABELS": rv.STATE_LABELS, "FIELD_LABELS": rv.FIELD_LABELS,
            "value_text": rv.value_text}


def _districts() -> tuple[str, ...]:
    return rt().settings.bot.districts


def _denied(exc: Exception) -> None:
    """Abort for errors that are not the user's to fix on the page."""
    if isinstance(exc, PermissionDenied):
        abort(403, description=str(exc))
    if isinstance(exc, NotFound):
        abort(404, description=str(exc))


def _do(call: Callable[[], Any], back: str, ok: str | Callable[[Any], str]) -> WerkzeugResponse:
    """Run a state change, commit, flash the outcome and go `back`."""
    try:
        result = call()
    except (PermissionDenied, NotFound) as exc:
        db().rollback()
        _denied(exc)
        raise
    except PackInvalid as exc:
        db().rollback()
        flash("未通过校验：" + "；".join(exc.problems), "error")
        return redirect(back)
    except InvalidTransition as exc:
        db().rollback()
        flash(str(exc), "error")
        return redirect(back)
    db().commit()
    flash(ok(result) if callable(ok) else ok, "success")
    return redirect(back)


# --- list, record, history ---------------------------------------------------------------


@bp.get("/")
@roles_required()
def index() -> str:
    args = request.args
    status = args.get("status", "")
    filters = actions.RecordFilters(
        kind=args.get("kind", "") if args.get("kind", "") in KINDS else "",
        disclosure=args.get("disclosure", "") if args.get("disclosure") in DISCLOSURE_VALUES
        else "", district=args.get("district", "") if args.get("district") in _districts()
        else "", status=status if status in STATUS_LABELS else "", q=args.get("q", "")[:100])
    page = actions.list_records(db(), actor(), filters, page=args.get("page", 1, type=int) or 1)
    query = {k: v for k, v in filters.__dict__.items() if v}
    return render_template("content/index.html", page=page, filters=filters, query=query,
                           kinds=list(KINDS), disclosures=DISCLOSURE_VALUES,
                           districts=_districts(), statuses=STATUS_LABELS,
                           me=actor(), can_edit=has_role(actor(), "editor"))


@bp.get("/review")
@roles_required("reviewer")
def review() -> str:
    return render_template("content/review.html", queue=actions.review_queue(db(), actor()))


@bp.get("/r/<kind>/<path:rid>")
@roles_required()
def record(kind: str, rid: str) -> str:
    try:
        detail = actions.get_record(db(), actor(), kind, rid)
    except NotFound as exc:
        abort(404, description=str(exc))
    return render_template("content/record.html", r=detail,
                           fields=rv.form_fields(kind, detail.data, _districts()),
                           can_edit=has_role(actor(), "editor"))


@bp.get("/diff/<kind>/<path:rid>")
@roles_required()
def compare(kind: str, rid: str) -> str:
    def version(name: str) -> int | None:
        value = request.args.get(name, "live")
        if value == "live":
            return None
        if not value.isdigit():
            abort(400)
        return int(value)

    old, new = version("old"), version("new")
    try:
        diffs = actions.compare(db(), actor(), kind, rid, old, new)
        versions = actions.history(db(), actor(), kind, rid)
    except NotFound as exc:
        abort(404, description=str(exc))
    return render_template("content/diff.html", kind=kind, rid=rid, diffs=diffs, old=old,
                           new=new, versions=versions)


# --- drafts ------------------------------------------------------------------------------


def _form_page(kind: str, data: dict[str, Any], *, action: str, with_id: bool,
               heading: str, problems: tuple[str, ...] = (), from_unanswered: int | None = None,
               rid: str | None = None) -> str:
    return render_template("content/form.html", kind=kind, heading=heading, action=action,
                           fields=rv.form_fields(kind, data, _districts(), with_id=with_id),
                           problems=problems, from_unanswered=from_unanswered, rid=rid)


@bp.route("/new", methods=["GET", "POST"])
@roles_required("editor")
def new() -> str | WerkzeugResponse:
    src = request.form if request.method == "POST" else request.args
    kind = src.get("kind", "faq")
    if kind not in KINDS:
        abort(404)
    from_q = src.get("from_unanswered", type=int)
    if request.method == "GET":
        data: dict[str, Any] = {}
        if from_q is not None:
            kind = "faq"
            try:
                data = actions.unanswered_prefill(db(), actor(), from_q)
            except NotFound as exc:
                abort(404, description=str(exc))
        return _form_page(kind, data, action=url_for(".new"), with_id=True,
                          heading=f"新建{rv.KIND_LABELS[kind]}", from_unanswered=from_q)
    data = rv.parse_form(kind, request.form)
    try:
        view = actions.create_draft(db(), actor(), kind, data, rt().now(),
                                    from_unanswered=from_q)
    except (PermissionDenied, NotFound) as exc:
        _denied(exc)
        raise
    except (PackInvalid, InvalidTransition) as exc:
        db().rollback()
        found = tuple(exc.problems) if isinstance(exc, PackInvalid) else (str(exc),)
        return _form_page(kind, data, action=url_for(".new"), with_id=True,
                          heading=f"新建{rv.KIND_LABELS[kind]}", problems=found,
                          from_unanswered=from_q)
    db().commit()
    flash(f"已保存草稿 #{view.id}。", "success")
    return redirect(url_for(".revision", rev_id=view.id))


@bp.route("/edit/<kind>/<path:rid>", methods=["GET", "POST"])
@roles_required("editor")
def edit(kind: str, rid: str) -> str | WerkzeugResponse:
    try:
        detail = actions.get_record(db(), actor(), kind, rid)
    except NotFound as exc:
        abort(404, description=str(exc))
    if detail.open_revision is not None:
        flash("该记录已有未完成的草稿，请在草稿上修改。", "error")
        return redirect(url_for(".revision", rev_id=detail.open_revision.id))
    heading = f"编辑 {detail.title}"
    if request.method == "GET":
        return _form_page(kind, detail.data, action=request.path, with_id=False,
                          heading=heading, rid=rid)
    data = rv.parse_form(kind, request.form, base=detail.data, rid=rid)
    return _create_then_show(kind, data, heading, rid)


def _create_then_show(kind: str, data: dict[str, Any], heading: str,
                      rid: str) -> str | WerkzeugResponse:
    try:
        view = actions.create_draft(db(), actor(), kind, data, rt().now())
    except (PermissionDenied, NotFound) as exc:
        _denied(exc)
        raise
    except (PackInvalid, InvalidTransition) as exc:
        db().rollback()
        found = tuple(exc.problems) if isinstance(exc, PackInvalid) else (str(exc),)
        return _form_page(kind, data, action=request.path, with_id=False, heading=heading,
                          problems=found, rid=rid)
    db().commit()
    flash(f"已保存草稿 #{view.id}。", "success")
    return redirect(url_for(".revision", rev_id=view.id))


@bp.get("/d/<int:rev_id>")
@roles_required()
def revision(rev_id: int) -> str:
    try:
        detail = actions.get_revision(db(), actor(), rev_id, _districts())
    except NotFound as exc:
        abort(404, description=str(exc))
    me = actor()
    rev = detail.revision
    return render_template(
        "content/revision.html", d=detail, rev=rev, fields=rv.form_fields(
            rev.kind, rev.data, _districts()),
        can_edit=has_role(me, "editor") and rev.state in rv.EDITABLE_STATES,
        can_submit=has_role(me, "editor") and rev.state in rv.EDITABLE_STATES,
        can_decide=has_role(me, "reviewer") and rev.state == rv.IN_REVIEW
        and me.name not in rev.editors,
        own_review=rev.state == rv.IN_REVIEW and me.name in rev.editors,
        can_withdraw=rev.state in rv.OPEN_STATES and (me.name == rev.author
                                                      or me.role == "admin"),
        can_rebase=has_role(me, "editor") and rev.state in rv.OPEN_STATES and detail.stale)


@bp.route("/d/<int:rev_id>/edit", methods=["GET", "POST"])
@roles_required("editor")
def edit_draft(rev_id: int) -> str | WerkzeugResponse:
    try:
        detail = actions.get_revision(db(), actor(), rev_id, _districts())
    except NotFound as exc:
        abort(404, description=str(exc))
    rev = detail.revision
    heading = f"修改草稿 #{rev.id}"
    if rev.state not in rv.EDITABLE_STATES:
        flash("只有草稿或已退回的草稿可以修改。", "error")
        return redirect(url_for(".revision", rev_id=rev_id))
    if request.method == "GET":
        return _form_page(rev.kind, rev.data, action=request.path, with_id=False,
                          heading=heading, rid=rev.rid)
    data = rv.parse_form(rev.kind, request.form, base=rev.data, rid=rev.rid)
    return _do(lambda: actions.update_draft(db(), actor(), rev_id, data, rt().now()),
               url_for(".revision", rev_id=rev_id), "草稿已保存。")


@bp.post("/d/<int:rev_id>/submit")
@roles_required("editor")
def submit(rev_id: int) -> WerkzeugResponse:
    return _do(lambda: actions.submit(db(), actor(), rev_id, rt().now(), _districts()),
               url_for(".revision", rev_id=rev_id), "已提交审核。")


@bp.post("/d/<int:rev_id>/approve")
@roles_required("reviewer")
def approve(rev_id: int) -> WerkzeugResponse:
    def done(result: actions.PublishResult) -> str:
        shown = "群众可见" if result.public else "非主动公开，群众不可见"
        extra = (f"；已生成推送草稿 {', '.join(map(str, result.campaign_drafts))}"
                 if result.campaign_drafts else "")
        return f"已发布（{shown}）{extra}。"

    expect = request.form.get("expect")  # the page pins what the reviewer read
    return _do(lambda: actions.approve(db(), rt().settings, actor(), rev_id, rt().now(),
                                       expect=expect),
               url_for(".revision", rev_id=rev_id), done)


@bp.post("/d/<int:rev_id>/reject")
@roles_required("reviewer")
def reject(rev_id: int) -> WerkzeugResponse:
    reason = request.form.get("reason", "")
    return _do(lambda: actions.reject(db(), actor(), rev_id, rt().now(), reason),
               url_for(".revision", rev_id=rev_id), "已退回。")


@bp.post("/d/<int:rev_id>/withdraw")
@roles_required()
def withdraw(rev_id: int) -> WerkzeugResponse:
    return _do(lambda: actions.withdraw(db(), actor(), rev_id, rt().now()),
               url_for(".revision", rev_id=rev_id), "已撤回。")


@bp.post("/d/<int:rev_id>/rebase")
@roles_required("editor")
def rebase(rev_id: int) -> WerkzeugResponse:
    return _do(lambda: actions.rebase(db(), actor(), rev_id, rt().now()),
               url_for(".revision", rev_id=rev_id),
               "已基于当前线上版本更新草稿，请重新提交审核。")


# --- import / export ---------------------------------------------------------------------


def _options(form: Any) -> dict[str, bool]:
    return {name: form.get(name) in ("on", "1", "true")
            for name in ("prune", "force", "pack_wins")}


@bp.get("/import")
@roles_required("editor", "reviewer")
def import_form() -> str:
    return render_template("content/import.html", outcome=None, problems=None,
                           can_import=has_role(actor(), "reviewer"))


@bp.post("/import")
@roles_required("editor", "reviewer")
def import_preview() -> str:
    upload = request.files.get("pack")
    name = (upload.filename or "upload.toml") if upload else ""
    if upload is None or not name:
        flash("请选择一个 .toml 内容包文件。", "error")
        return render_template("content/import.html", outcome=None, problems=None,
                               can_import=has_role(actor(), "reviewer"))
    options = _options(request.form)
    try:
        text = upload.read().decode("utf-8")
        outcome = actions.import_pack(db(), rt().settings, actor(), text, rt().now(),
                                      source=name, dry_run=True, **options)
    except UnicodeDecodeError as exc:
        problems: list[str] | None = [f"not UTF-8: {exc}"]
        outcome = None
    except PackInvalid as exc:
        problems, outcome = exc.problems, None
    except PermissionDenied as exc:
        abort(403, description=str(exc))
    else:
        problems = None
    db().rollback()  # a dry run writes nothing; make sure of it
    token = ""
    if outcome is not None:
        token = secrets.token_urlsafe(24)
        rt().redis.set(UPLOAD_KEY + token, json.dumps(
            {"staff": actor().id, "name": name, "text": text, "options": options}),
            ex=UPLOAD_TTL)
    return render_template("content/import.html", outcome=outcome, problems=problems,
                           token=token, name=name, options=options,
                           can_import=has_role(actor(), "reviewer"))


@bp.post("/import/confirm")
@roles_required("reviewer")
def import_confirm() -> WerkzeugResponse:
    token = request.form.get("token", "")
    raw = rt().redis.get(UPLOAD_KEY + token) if token else None
    stash = json.loads(raw) if raw else None
    if stash is None or stash.get("staff") != actor().id:
        flash("上传已过期或不属于当前账号，请重新上传。", "error")
        return redirect(url_for(".import_form"))
    try:
        outcome = actions.import_pack(db(), rt().settings, actor(), stash["text"], rt().now(),
                                      source=stash["name"], dry_run=False, **stash["options"])
    except PackInvalid as exc:  # the records changed since the dry run
        db().rollback()
        flash("未导入：" + "；".join(exc.problems), "error")
        return redirect(url_for(".import_form"))
    except PermissionDenied as exc:
        abort(403, description=str(exc))
    db().commit()
    rt().redis.delete(UPLOAD_KEY + token)
    report = outcome.report
    flash(f"已导入 {stash['name']}：新增 {report.created}，更新 {report.updated}，未变 "
          f"{report.unchanged}，删除 {report.pruned}，保留控制台编辑 {len(report.kept_console)}"
          + (f"；推送草稿 {', '.join(map(str, outcome.campaign_drafts))}"
             if outcome.campaign_drafts else "") + "。", "success")
    return redirect(url_for(".index"))


@bp.post("/export")
@roles_required()
def export() -> Response:
    everything = request.form.get("all") in ("on", "1", "true")
    me = actor()
    try:
        actions.authorize_export(db(), me, rt().now(), everything, "console download")
        db().commit()  # the audit entry stands even if the export then fails
        text = actions.export_text(db(), me, everything)
    except PermissionDenied as exc:
        db().rollback()
        abort(403, description=str(exc))
    stamp = rt().now().strftime("%Y%m%d")
    name = f"qzbot-pack-{'all' if everything else 'public'}-{stamp}.toml"
    return Response(text, mimetype="application/toml",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
