"""Console content pages (issue 9, item 3): the whole flow through the pages down to the
citizen's answer, who may do what, CSRF, stale drafts, pack import/export, escaping."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.content.pack import import_pack, read_pack
from bot.store.models import AuditEntry, Record, RecordRevision, UnansweredQuery
from bot.store.queries import record_unanswered
from tests.conftest import SMALL_PACK, load_pack
from tests.consolekit import console_app, csrf_token, login, make_staff

QUESTION = "电动自行车能带上公交车吗"
ANSWER = "不可以携带电动自行车乘坐公交车，折叠自行车须折叠后携带。"
XSS = "<script>alert(1)</script>"


@pytest.fixture
def console(runtime):
    """The console app and a logged-in client per account: ed (editor), rev / rev2
    (reviewers), boss (admin)."""
    app = console_app(runtime)
    clients = {}
    for name, role in (("ed", "editor"), ("ed2", "editor"), ("rev", "reviewer"),
                       ("boss", "admin")):
        clients[name] = login(app.test_client(), make_staff(runtime, name, role))
    return clients


def _post(client, path: str, data: dict | None = None, **kw):
    token = csrf_token(client, "/content/")
    return client.post(path, data={"csrf_token": token, **(data or {})}, **kw)


def _new_faq(client, question: str = QUESTION, answer: str = ANSWER, rid: str = "f-ebike") -> int:
    resp = _post(client, "/content/new", {"kind": "faq", "f_id": rid, "f_question": question,
                                          "f_answer": answer, "f_keywords": "电动车\n电瓶车"})
    assert resp.status_code == 302, resp.get_data(as_text=True)
    return int(re.search(r"/content/d/(\d+)$", resp.headers["Location"]).group(1))


def _text(resp) -> str:
    return resp.get_data(as_text=True)


def test_editor_drafts_reviewer_publishes_and_the_citizens_answer_changes(runtime, app, wechat,
                                                                          console):
    ed, rev = console["ed"], console["rev"]
    assert ANSWER not in wechat.text(QUESTION)
    rev_id = _new_faq(ed)
    page = _text(ed.get(f"/content/d/{rev_id}"))
    assert "草稿" in page and "提交审核" in page and "新记录" in page
    assert _post(ed, f"/content/d/{rev_id}/submit").status_code == 302
    assert ANSWER not in wechat.text(QUESTION)  # in review: not live yet
    # the editor cannot publish, by the page or by a forged POST
    assert "批准并发布" not in _text(ed.get(f"/content/d/{rev_id}"))
    assert _post(ed, f"/content/d/{rev_id}/approve").status_code == 403
    queue = _text(rev.get("/content/review"))
    assert QUESTION in queue
    assert "批准并发布" in _text(rev.get(f"/content/d/{rev_id}"))
    resp = _post(rev, f"/content/d/{rev_id}/approve", follow_redirects=True)
    assert resp.status_code == 200 and "已发布（群众可见）" in _text(resp)
    reply = wechat.text(QUESTION)
    assert ANSWER in reply, reply
    record = _text(ed.get("/content/r/faq/f-ebike"))
    assert "控制台编辑" in record and "by ed" in record and "v1" in record


def test_author_cannot_approve_own_and_reject_needs_reason(runtime, console):
    load_pack(runtime)
    boss, rev = console["boss"], console["rev"]
    rev_id = _new_faq(boss)
    _post(boss, f"/content/d/{rev_id}/submit")
    assert "需由另一位审核人发布" in _text(boss.get(f"/content/d/{rev_id}"))
    assert _post(boss, f"/content/d/{rev_id}/approve").status_code == 403
    assert QUESTION not in _text(boss.get("/content/review"))
    resp = _post(rev, f"/content/d/{rev_id}/reject", {"reason": ""}, follow_redirects=True)
    assert "a rejection needs a reason" in _text(resp)
    resp = _post(rev, f"/content/d/{rev_id}/reject", {"reason": "答案需引用条例"},
                 follow_redirects=True)
    assert "已退回" in _text(resp) and "答案需引用条例" in _text(resp)
    with runtime.sessions() as s:
        assert s.get(RecordRevision, rev_id).state == "rejected"
        assert s.scalar(select(Record).where(Record.rid == "f-ebike")) is None


def test_forms_without_csrf_are_refused(runtime, console):
    load_pack(runtime)
    ed = console["ed"]
    resp = ed.post("/content/new", data={"kind": "faq", "f_id": "f-x", "f_question": "q",
                                         "f_answer": "a"})
    assert resp.status_code == 400
    rev_id = _new_faq(ed)
    assert ed.post(f"/content/d/{rev_id}/submit").status_code == 400
    with runtime.sessions() as s:
        assert s.get(RecordRevision, rev_id).state == "draft"
        assert s.scalar(select(RecordRevision).where(RecordRevision.rid == "f-x")) is None


def test_forged_ids_and_other_peoples_drafts(runtime, console):
    load_pack(runtime)
    ed, ed2, rev = console["ed"], console["ed2"], console["rev"]
    assert ed.get("/content/d/99999").status_code == 404
    assert _post(rev, "/content/d/99999/approve").status_code == 404
    assert ed.get("/content/r/faq/no-such").status_code == 404
    assert ed.get("/content/r/bogus/x").status_code == 404
    assert ed.get("/content/new?kind=bogus").status_code == 404
    assert ed.get("/content/new?from_unanswered=4242").status_code == 404
    rev_id = _new_faq(ed)
    assert _post(ed2, f"/content/d/{rev_id}/withdraw").status_code == 403  # not the author
    assert _post(rev, f"/content/d/{rev_id}/edit", {"f_question": "x"}).status_code == 403
    assert rev.get("/content/new").status_code == 403  # reviewers do not write drafts
    assert ed.get("/content/review").status_code == 403
    assert _post(ed, f"/content/d/{rev_id}/withdraw").status_code == 302
    with runtime.sessions() as s:
        assert s.get(RecordRevision, rev_id).state == "withdrawn"


def test_edit_form_is_generated_from_the_schema_and_validation_lists_every_problem(runtime,
                                                                                   console):
    load_pack(runtime)
    ed = console["ed"]
    form = _text(ed.get("/content/edit/policy/p-2020-19"))
    for name in ("f_title", "f_doc_number", "f_issuer", "f_issued_on", "f_disclosure",
                 "f_summary", "f_interpretation__title", "f_keywords"):
        assert f'for="{name}"' in form and f'id="{name}"' in form, name
    assert 'type="date" id="f_issued_on" name="f_issued_on" value="2020-06-28"' in form
    assert '<textarea id="f_summary"' in form and 'name="f_id"' not in form
    resp = _post(ed, "/content/edit/policy/p-2020-19", {
        "f_title": "泉州市交通运输局政务公开工作实施细则（修订）", "f_issuer": "泉州市交通运输局",
        "f_issued_on": "2020-06-28", "f_disclosure": "主动公开", "f_summary": "修订后的摘要。",
        "f_doc_number": "泉交办〔2020〕19号",
        "f_interpretation__title": "《政务公开工作实施细则》解读",
        "f_interpretation__summary": "主动公开信息20个工作日内公开。"})
    rev_id = int(resp.headers["Location"].rsplit("/", 1)[1])
    page = _text(ed.get(f"/content/d/{rev_id}"))
    assert "<ins>（修订）</ins>" in page
    assert "<del>规范政务公开范围、形式、时限和政策解读要求</del><ins>修订后的摘要</ins>。" in page
    # a broken draft: saved, but submit lists every problem
    bad = _post(ed, f"/content/d/{rev_id}/edit", {"f_title": "", "f_issuer": "局",
                                                  "f_issued_on": "明天", "f_disclosure": "",
                                                  "f_summary": "s", "f_url": "javascript:x"})
    assert bad.status_code == 302
    resp = _post(ed, f"/content/d/{rev_id}/submit", follow_redirects=True)
    page = _text(resp)
    for field in ("&#39;title&#39;", "&#39;issued_on&#39;", "&#39;disclosure&#39;",
                  "&#39;url&#39;"):
        assert field in page, field
    assert "共 4 个问题" in page


def test_non_public_draft_is_published_but_never_visible(runtime, app, wechat, console):
    ed, rev = console["ed"], console["rev"]
    resp = _post(ed, "/content/new", {
        "kind": "policy", "f_id": "p-inner", "f_title": "泉州市交通运输局内部考勤管理办法",
        "f_issuer": "泉州市交通运输局", "f_issued_on": "2026-01-01",
        "f_disclosure": "不予公开", "f_summary": "考勤规则。"})
    rev_id = int(resp.headers["Location"].rsplit("/", 1)[1])
    _post(ed, f"/content/d/{rev_id}/submit")
    resp = _post(rev, f"/content/d/{rev_id}/approve", follow_redirects=True)
    assert "非主动公开，群众不可见" in _text(resp)
    assert "考勤" not in wechat.text("内部考勤管理办法")
    assert "群众不可见" in _text(ed.get("/content/r/policy/p-inner"))
    assert "缺少解读" in _text(ed.get("/content/r/policy/p-inner"))


def test_stale_draft_is_refused_with_the_diff_shown(runtime, console):
    load_pack(runtime)
    ed, rev = console["ed"], console["rev"]
    _post(ed, "/content/edit/faq/f-taxi-receipt", {"f_question": "打车忘拿发票怎么办",
                                                   "f_answer": "控制台答案"})
    with runtime.sessions() as s:
        rev_id = s.scalar(select(RecordRevision.id).where(RecordRevision.state == "draft"))
    _post(ed, f"/content/d/{rev_id}/submit")
    doc = read_pack(SMALL_PACK)
    doc["faq"][0]["answer"] = "内容包的新答案"
    with runtime.sessions() as s:
        import_pack(s, doc, source="p.toml", now=runtime.now(),
                    districts=runtime.settings.bot.districts)
        s.commit()
    page = _text(rev.get(f"/content/d/{rev_id}"))
    assert "线上版本在此草稿开始后已被修改" in page and "<del>内容包的新</del>" in page
    resp = _post(rev, f"/content/d/{rev_id}/approve", follow_redirects=True)
    assert "re-base the draft" in _text(resp)
    with runtime.sessions() as s:
        assert s.scalar(select(Record.data).where(
            Record.rid == "f-taxi-receipt"))["answer"] == "内容包的新答案"
    assert "基于当前线上版本更新草稿" in _text(ed.get(f"/content/d/{rev_id}"))
    _post(ed, f"/content/d/{rev_id}/rebase")
    _post(ed, f"/content/d/{rev_id}/submit")
    _post(rev, f"/content/d/{rev_id}/approve")
    with runtime.sessions() as s:
        assert s.scalar(select(Record.data).where(
            Record.rid == "f-taxi-receipt"))["answer"] == "控制台答案"


def _upload(client, text: str, **options):
    data = {"pack": (io.BytesIO(text.encode()), "pack.toml"),
            **{k: "on" for k, v in options.items() if v}}
    return _post(client, "/content/import", data, content_type="multipart/form-data")


def test_import_page_lists_every_error_and_imports_nothing(runtime, console):
    load_pack(runtime)
    boss = console["boss"]
    bad = ('[[faq]]\nid = "f1"\nquestion = "q"\n\n[[faq]]\nid = "f1"\nanswer = "a"\n\n'
           '[[widget]]\nid = "w"\n\n[[notice]]\nid = "n1"\ntitle = "t"\nkind = "boat"\n'
           'body = "b"\nstarts_at = 2026-11-27T08:00:00\n')
    page = _text(_upload(boss, bad))
    for problem in ("missing required field &#39;answer&#39;", "duplicate id",
                    "missing required field &#39;question&#39;", "unknown kind [[widget]]",
                    "&#39;boat&#39; is not one of"):
        assert problem in page, problem
    assert "不会导入任何记录" in page and "确认导入" not in page
    assert "not valid TOML" in _text(_upload(boss, "[[faq]\n"))
    with runtime.sessions() as s:
        assert s.scalar(select(Record).where(Record.rid == "f1")) is None


def test_import_page_dry_run_then_confirm_keeps_console_edits(runtime, console):
    load_pack(runtime)
    ed, rev, boss = console["ed"], console["rev"], console["boss"]
    _post(ed, "/content/edit/faq/f-taxi-receipt", {"f_question": "打车忘拿发票怎么办",
                                                   "f_answer": "控制台答案"})
    with runtime.sessions() as s:
        rev_id = s.scalar(select(RecordRevision.id).where(RecordRevision.state == "draft"))
    _post(ed, f"/content/d/{rev_id}/submit")
    _post(rev, f"/content/d/{rev_id}/approve")
    text = (Path(SMALL_PACK).read_text(encoding="utf-8")
            .replace("卡费20元", "卡费25元").replace("由出租车企业补开发票", "由企业补开"))
    page = _text(_upload(ed, text))  # an editor may dry-run, not confirm
    assert "guide:g-ic-card" in page and "kept console edit" in page and "确认导入" not in page
    page = _text(_upload(boss, text))
    assert "更新 1" in page and "保留控制台编辑 1" in page
    token = re.search(r'name="token" value="([^"]+)"', page).group(1)
    assert _post(ed, "/content/import/confirm", {"token": token}).status_code == 403
    with runtime.sessions() as s:  # the dry run wrote nothing
        assert "卡费20元" in str(s.scalar(select(Record.data).where(Record.rid == "g-ic-card")))
    resp = _post(rev, "/content/import/confirm", {"token": token}, follow_redirects=True)
    assert "上传已过期或不属于当前账号" in _text(resp)  # another account's upload
    resp = _post(boss, "/content/import/confirm", {"token": token}, follow_redirects=True)
    assert "已导入 pack.toml：新增 0，更新 1" in _text(resp)
    with runtime.sessions() as s:
        assert "卡费25元" in str(s.scalar(select(Record.data).where(Record.rid == "g-ic-card")))
        assert s.scalar(select(Record.data).where(
            Record.rid == "f-taxi-receipt"))["answer"] == "控制台答案"
    assert "上传已过期" in _text(_post(boss, "/content/import/confirm", {"token": token},
                                       follow_redirects=True))  # used once


def test_export_of_non_public_records_needs_admin_and_is_audited(runtime, console):
    load_pack(runtime)
    ed, boss = console["ed"], console["boss"]
    public = _post(ed, "/content/export")
    assert public.status_code == 200 and "attachment" in public.headers["Content-Disposition"]
    assert "p-secret" not in _text(public) and "hl-12328" in _text(public)
    assert _post(ed, "/content/export", {"all": "on"}).status_code == 403
    full = _post(boss, "/content/export", {"all": "on"})
    assert full.status_code == 200 and "p-secret" in _text(full)
    with runtime.sessions() as s:
        assert s.scalars(select(AuditEntry.actor).where(
            AuditEntry.action == "content_export_all")).all() == ["boss"]


def test_list_filters_paging_and_pages_render(runtime, console):
    load_pack(runtime)
    ed = console["ed"]
    page = _text(ed.get("/content/?kind=policy"))
    assert "内部绩效考核评分办法" in page and "公交IC卡挂失补办" not in page
    assert "无解读" in page and "群众不可见" in page
    page = _text(ed.get("/content/?district=丰泽区"))
    assert "泉州湾跨海通道工程" in page and "交通运输服务监督电话" not in page
    assert "共 1 条" in _text(ed.get("/content/?q=IC卡"))
    assert "共 12 条" in _text(ed.get("/content/?kind=bogus&status=bogus&page=-3"))
    record = _text(ed.get("/content/r/policy/p-2020-19"))
    assert "《政务公开工作实施细则》解读" in record and "内容包导入" in record
    for path in ("/content/", "/content/import", "/content/new?kind=notice",
                 "/content/diff/faq/f-taxi-receipt", "/content/r/notice/n-ferry"):
        resp = ed.get(path)
        assert resp.status_code == 200, path
        assert 'name="viewport"' in _text(resp)


def test_new_faq_from_an_unanswered_question(runtime, console):
    load_pack(runtime)
    ed = console["ed"]
    with runtime.sessions() as s:
        record_unanswered(s, "电动车能带上公交吗", runtime.now())
        s.commit()
        qid = s.scalar(select(UnansweredQuery.id))
    form = _text(ed.get(f"/content/new?from_unanswered={qid}"))
    assert "电动车能带上公交吗</textarea>" in form or 'value="电动车能带上公交吗"' in form
    assert f'name="from_unanswered" value="{qid}"' in form and f"faq-q{qid}" in form
    resp = _post(ed, "/content/new", {"kind": "faq", "from_unanswered": str(qid),
                                      "f_id": f"faq-q{qid}", "f_question": "电动车能带上公交吗",
                                      "f_answer": "不可以。"})
    rev_id = int(resp.headers["Location"].rsplit("/", 1)[1])
    with runtime.sessions() as s:
        assert s.get(RecordRevision, rev_id).from_unanswered == qid
    assert f"来自群众提问 #{qid}" in _text(ed.get(f"/content/d/{rev_id}"))


def test_a_script_title_is_escaped_on_every_page(runtime, console):
    load_pack(runtime)
    ed, rev = console["ed"], console["rev"]
    rev_id = _new_faq(ed, question=XSS, answer=XSS, rid="f-xss")
    # an edit draft of a live record, with markup, to reach the diff and record pages
    _post(ed, "/content/edit/faq/f-taxi-receipt", {"f_question": XSS, "f_answer": "a"})
    _post(ed, f"/content/d/{rev_id}/submit")  # refused: markup; stays a draft
    for client, path in ((ed, "/content/?status=draft"), (ed, f"/content/d/{rev_id}"),
                         (ed, f"/content/d/{rev_id}/edit"), (ed, "/content/r/faq/f-taxi-receipt"),
                         (rev, f"/content/d/{rev_id + 1}"),
                         (ed, f"/content/diff/faq/f-taxi-receipt?old=live&new={rev_id + 1}")):
        page = _text(client.get(path))
        assert "<script>alert" not in page, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page or path.startswith(
            "/content/r/"), path
    with runtime.sessions() as s:
        assert s.get(RecordRevision, rev_id).state == "draft"
