"""Editorial service layer (issue 9, item 3) on both databases: draft -> review -> publish,
who may decide, stale drafts, the pack coexistence rule, diffs, pairing, lists and exports."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.content.pack import import_pack, read_pack
from bot.errors import InvalidTransition, NotFound, PackInvalid, PermissionDenied
from bot.store.models import AuditEntry, Record, RecordRevision, Staff, UnansweredQuery
from bot.store.queries import content_revision, record_unanswered, visible_records
from editorial import actions
from editorial import revisions as rv
from editorial.revisions import StaleDraft
from tests.conftest import SMALL_PACK, load_pack
from tests.consolekit import make_staff

FAQ = {"id": "f-new", "question": "电动车上公交可以吗", "answer": "不可以携带电动自行车乘车。"}


@pytest.fixture
def people(runtime):
    """An editor, two reviewers and an admin (names)."""
    load_pack(runtime)
    for name, role in (("ed", "editor"), ("rev", "reviewer"), ("rev2", "reviewer"),
                       ("boss", "admin")):
        make_staff(runtime, name, role)
    return runtime


@contextmanager
def acting(rt, name: str):
    """A session and the named account in it; commits at the end."""
    with rt.sessions() as session:
        yield session, session.scalar(select(Staff).where(Staff.name == name))
        session.commit()


def _publish(rt, kind: str, data: dict, author: str = "ed", reviewer: str = "rev") -> int:
    with acting(rt, author) as (s, me):
        rev = actions.create_draft(s, me, kind, data, rt.now())
        actions.submit(s, me, rev.id, rt.now(), rt.settings.bot.districts)
    with acting(rt, reviewer) as (s, me):
        actions.approve(s, rt.settings, me, rev.id, rt.now())
    return rev.id


def _visible_keys(rt) -> set[str]:
    with rt.sessions() as s:
        return {r.key for r in visible_records(s, rt.now())}


def test_draft_submit_publish_changes_what_citizens_see(people):
    rt = people
    with rt.sessions() as s:
        before = content_revision(s)
    assert "faq:f-new" not in _visible_keys(rt)
    rev_id = _publish(rt, "faq", FAQ)
    assert "faq:f-new" in _visible_keys(rt)
    with acting(rt, "ed") as (s, me):
        assert content_revision(s) == before + 1  # the search index rebuilds
        detail = actions.get_record(s, me, "faq", "f-new")
        assert detail.source.origin == "console" and detail.source.by == "ed"
        assert detail.source.approved_by == "rev"
        assert [v.state for v in detail.history] == ["published"]
        actions_logged = s.scalars(select(AuditEntry.action).where(
            AuditEntry.object_type == "record", AuditEntry.object_id == "faq:f-new")).all()
    assert actions_logged == ["content_draft_create", "content_submit", "content_publish"]
    # an edit of the live record: a new version; the older one is superseded
    with acting(rt, "ed") as (s, me):
        live = actions.get_record(s, me, "faq", "f-new")
        edit = actions.create_draft(s, me, "faq", {**live.data, "answer": "禁止携带。"}, rt.now())
        assert edit.version == 2 and edit.base_digest == live.digest
        actions.submit(s, me, edit.id, rt.now(), rt.settings.bot.districts)
    with acting(rt, "rev2") as (s, me):
        actions.approve(s, rt.settings, me, edit.id, rt.now())
    with acting(rt, "ed") as (s, me):
        states = {v.id: v.state for v in actions.history(s, me, "faq", "f-new")}
        assert states == {edit.id: "published", rev_id: "superseded"}
        assert s.scalar(select(Record.data).where(Record.rid == "f-new"))["answer"] == "禁止携带。"


def test_publishing_writes_the_record_exactly_as_a_pack_import(people):
    rt = people
    data = {"id": "n-new", "title": "石井码头临时停航", "kind": "ferry", "district": "南安市",
            "body": "大风停航。", "starts_at": "2026-11-27T08:00:00", "urgent": True}
    _publish(rt, "notice", data)
    with rt.sessions() as s:
        console_row = s.scalar(select(Record).where(Record.rid == "n-new"))
        console = {c: getattr(console_row, c) for c in (
            "title", "public", "district", "notice_kind", "urgent", "starts_at", "data",
            "digest")}
        s.delete(console_row)
        s.commit()
    doc = {"notice": [{**data, "starts_at": rv.entry_of("notice", data)["starts_at"]}]}
    with rt.sessions() as s:
        import_pack(s, doc, source="x.toml", now=rt.now(), districts=rt.settings.bot.districts)
        s.commit()
        row = s.scalar(select(Record).where(Record.rid == "n-new"))
        assert {c: getattr(row, c) for c in console} == console


def test_author_and_editors_cannot_approve_and_editor_cannot_publish(people):
    rt = people
    with acting(rt, "boss") as (s, me):  # an admin writes...
        rev = actions.create_draft(s, me, "faq", FAQ, rt.now())
    with acting(rt, "rev") as (s, me):  # ...a reviewer may not edit (editors write)
        with pytest.raises(PermissionDenied):
            actions.update_draft(s, me, rev.id, FAQ, rt.now())
    with acting(rt, "ed") as (s, me):  # an editor edits it too, and submits
        actions.update_draft(s, me, rev.id, {**FAQ, "answer": "不可以。"}, rt.now())
        actions.submit(s, me, rev.id, rt.now(), rt.settings.bot.districts)
        with pytest.raises(PermissionDenied):  # editors never publish
            actions.approve(s, rt.settings, me, rev.id, rt.now())
    with acting(rt, "boss") as (s, me):  # the admin wrote it: not theirs to approve
        with pytest.raises(PermissionDenied, match="another reviewer"):
            actions.approve(s, rt.settings, me, rev.id, rt.now())
        assert rev.id not in [r.id for r in actions.review_queue(s, me)]
    with acting(rt, "rev") as (s, me):
        assert [r.id for r in actions.review_queue(s, me)] == [rev.id]
        assert set(actions.get_revision(s, me, rev.id, ()).revision.editors) == {"boss", "ed"}
        actions.approve(s, rt.settings, me, rev.id, rt.now())
    assert "faq:f-new" in _visible_keys(rt)


def test_reject_needs_reason_edit_returns_to_draft_withdraw_by_author_only(people):
    rt = people
    with acting(rt, "ed") as (s, me):
        rev = actions.create_draft(s, me, "faq", FAQ, rt.now())
        actions.submit(s, me, rev.id, rt.now(), rt.settings.bot.districts)
    with acting(rt, "rev") as (s, me):
        with pytest.raises(InvalidTransition):
            actions.reject(s, me, rev.id, rt.now(), "  ")
        assert actions.reject(s, me, rev.id, rt.now(), "答案不完整").state == "rejected"
        with pytest.raises(InvalidTransition):  # not in review any more
            actions.approve(s, rt.settings, me, rev.id, rt.now())
        with pytest.raises(PermissionDenied):  # only the author or an admin withdraws
            actions.withdraw(s, me, rev.id, rt.now())
    with acting(rt, "ed") as (s, me):
        again = actions.update_draft(s, me, rev.id, {**FAQ, "answer": "完整答案。"}, rt.now())
        assert again.state == "draft" and again.reason == "答案不完整"
        assert actions.withdraw(s, me, rev.id, rt.now()).state == "withdrawn"
        with pytest.raises(InvalidTransition):
            actions.submit(s, me, rev.id, rt.now(), rt.settings.bot.districts)
    assert "faq:f-new" not in _visible_keys(rt)


def test_validation_is_the_pack_validators_and_lists_every_problem(people):
    rt = people
    bad = {"id": "p-bad", "title": "<script>x</script>", "issuer": "局",
           "issued_on": "明天", "disclosure": "公开", "url": "javascript:alert(1)"}
    with acting(rt, "ed") as (s, me):
        rev = actions.create_draft(s, me, "policy", bad, rt.now())  # a draft may be unfinished
        with pytest.raises(PackInvalid) as caught:
            actions.submit(s, me, rev.id, rt.now(), rt.settings.bot.districts)
    problems = caught.value.problems
    assert len(problems) == 5, problems
    for field in ("'title'", "'issued_on'", "'disclosure'", "'url'", "'summary'"):
        assert any(field in p for p in problems), (field, problems)
    with acting(rt, "ed") as (s, me):
        assert s.get(RecordRevision, rev.id).state == "draft"
        with pytest.raises(PackInvalid):  # no id: nothing to key the draft on
            actions.create_draft(s, me, "faq", {"question": "q"}, rt.now())
        with pytest.raises(NotFound):
            actions.create_draft(s, me, "nonsense", FAQ, rt.now())


def test_non_public_draft_never_becomes_visible(people):
    rt = people
    data = {"id": "p-internal", "title": "内部办法", "issuer": "泉州市交通运输局",
            "issued_on": "2026-01-01", "disclosure": "依申请公开", "summary": "内部。"}
    _publish(rt, "policy", data)
    with rt.sessions() as s:
        assert s.scalar(select(Record.public).where(Record.rid == "p-internal")) is False
    assert "policy:p-internal" not in _visible_keys(rt)


def test_stale_draft_is_refused_until_rebased(people):
    rt = people
    with acting(rt, "ed") as (s, me):
        live = actions.get_record(s, me, "faq", "f-taxi-receipt")
        rev = actions.create_draft(s, me, "faq", {**live.data, "answer": "控制台答案"}, rt.now())
        actions.submit(s, me, rev.id, rt.now(), rt.settings.bot.districts)
    doc = read_pack(SMALL_PACK)  # meanwhile a pack import changes the live record
    doc["faq"][0]["answer"] = "内容包的新答案"
    with rt.sessions() as s:
        import_pack(s, doc, source="p.toml", now=rt.now(), districts=rt.settings.bot.districts)
        s.commit()
    with acting(rt, "rev") as (s, me):
        detail = actions.get_revision(s, me, rev.id, rt.settings.bot.districts)
        assert detail.stale
        answer = next(d for d in detail.diff if d.name == "answer")
        assert answer.segments == (("del", "内容包的新"), ("ins", "控制台"), ("eq", "答案"))
        with pytest.raises(StaleDraft):
            actions.approve(s, rt.settings, me, rev.id, rt.now())
    with rt.sessions() as s:
        assert s.scalar(select(Record.data).where(
            Record.rid == "f-taxi-receipt"))["answer"] == "内容包的新答案"
    with acting(rt, "ed") as (s, me):
        assert actions.rebase(s, me, rev.id, rt.now()).state == "draft"
        actions.submit(s, me, rev.id, rt.now(), rt.settings.bot.districts)
    with acting(rt, "rev") as (s, me):
        actions.approve(s, rt.settings, me, rev.id, rt.now())
        assert s.scalar(select(Record.data).where(
            Record.rid == "f-taxi-receipt"))["answer"] == "控制台答案"


def test_pack_reimport_keeps_console_edit_and_reports_it(people):
    rt = people
    with acting(rt, "ed") as (s, me):
        live = actions.get_record(s, me, "faq", "f-taxi-receipt")
        assert live.source.origin == "pack"
    _publish(rt, "faq", {**live.data, "answer": "控制台答案"})
    doc = read_pack(SMALL_PACK)
    doc["faq"][0]["answer"] = "内容包的新答案"
    doc["faq"].append({"id": "f-other", "question": "问", "answer": "答"})
    with rt.sessions() as s:  # --prune does not delete the console edit either
        report = import_pack(s, {"faq": [doc["faq"][1]]}, source="p.toml", now=rt.now(),
                             districts=rt.settings.bot.districts, prune=True, dry_run=True)
        assert report.kept_console == ["faq:f-taxi-receipt"] and report.pruned == 0
        report = import_pack(s, doc, source="p.toml", now=rt.now(),
                             districts=rt.settings.bot.districts)
        s.commit()
    assert report.kept_console == ["faq:f-taxi-receipt"] and report.created == 1
    assert "kept console edit 1" in report.summary()
    assert report.kept_lines() == [
        "kept console edit faq:f-taxi-receipt (use --pack-wins / the page's checkbox to "
        "take the pack version)"]
    with acting(rt, "ed") as (s, me):
        detail = actions.get_record(s, me, "faq", "f-taxi-receipt")
        assert detail.data["answer"] == "控制台答案" and detail.source.origin == "console"
        assert [v.source for v in detail.history] == ["console", "pack"]
    with rt.sessions() as s:
        report = import_pack(s, doc, source="p.toml", now=rt.now(),
                             districts=rt.settings.bot.districts, pack_wins=True)
        s.commit()
    assert report.updated == 1 and not report.kept_console
    with acting(rt, "ed") as (s, me):
        detail = actions.get_record(s, me, "faq", "f-taxi-receipt")
        assert detail.data["answer"] == "内容包的新答案" and detail.source.origin == "pack"
        assert [(v.source, v.state) for v in detail.history] == [
            ("pack", "published"), ("console", "superseded"), ("pack", "superseded")]


def test_one_open_draft_per_record_and_id_is_fixed(people):
    rt = people
    with acting(rt, "ed") as (s, me):
        rev = actions.create_draft(s, me, "faq", FAQ, rt.now())
        with pytest.raises(InvalidTransition, match="open draft"):
            actions.create_draft(s, me, "faq", FAQ, rt.now())
        view = actions.update_draft(s, me, rev.id, {**FAQ, "id": "f-renamed"}, rt.now())
        assert view.rid == "f-new" and view.data["id"] == "f-new"


def test_diff_is_field_by_field_and_character_level():
    old = {"id": "x", "question": "电动车能上公交吗", "answer": "不可以。", "keywords": ["电动车"]}
    new = {"id": "x", "question": "电动自行车能上公交吗", "answer": "不可以。",
           "keywords": ["电动车", "电瓶车"]}
    diffs = {d.name: d for d in rv.diff("faq", old, new)}
    assert not diffs["answer"].changed and diffs["question"].changed
    assert diffs["question"].segments == (("eq", "电动"), ("ins", "自行"), ("eq", "车能上公交吗"))
    assert ("ins", "\n电瓶车") in diffs["keywords"].segments
    interp = rv.diff("policy", {"interpretation": {"title": "解读甲"}},
                     {"interpretation": {"title": "解读乙"}})
    assert [d.name for d in interp if d.changed] == ["interpretation.title"]


def test_pairing_policy_and_interpretation(people):
    rt = people
    _publish(rt, "disclosure", {
        "id": "d-jd", "title": "《泉州市交通运输局政务公开工作实施细则》解读",
        "category": "政策解读", "issuer": "泉州市交通运输局", "formed_on": "2026-01-01",
        "disclosure": "主动公开"})
    with acting(rt, "ed") as (s, me):
        policy = actions.get_record(s, me, "policy", "p-2020-19")
        assert policy.pairing.interpretation["title"] == "《政务公开工作实施细则》解读"
        assert [e.rid for e in policy.pairing.entries] == ["d-jd"] and not policy.pairing.missing
        assert actions.get_record(s, me, "policy", "p-secret").pairing.missing
        jd = actions.get_record(s, me, "disclosure", "d-jd")
        assert jd.pairing.role == "interpretation" and jd.pairing.policy.rid == "p-2020-19"
        unpaired = actions.list_records(s, me, actions.RecordFilters(status="unpaired"))
        assert [r.rid for r in unpaired.rows] == ["p-secret"] and unpaired.rows[0].unpaired


def test_list_filters_and_pages_in_sql(people):
    rt = people
    with acting(rt, "ed") as (s, me):
        everything = actions.list_records(s, me, actions.RecordFilters(), per_page=5)
        assert everything.total == 12 and len(everything.rows) == 5 and everything.pages == 3
        last = actions.list_records(s, me, actions.RecordFilters(), page=3, per_page=5)
        assert len(last.rows) == 2
        keys = {r.key for p in (1, 2, 3) for r in actions.list_records(
            s, me, actions.RecordFilters(), page=p, per_page=5).rows}
        assert len(keys) == 12
        f = actions.RecordFilters
        assert {r.rid for r in actions.list_records(s, me, f(kind="policy")).rows} == {
            "p-2020-19", "p-secret"}
        assert {r.rid for r in actions.list_records(s, me, f(disclosure="依申请公开")).rows} == {
            "d-apply"}
        assert {r.rid for r in actions.list_records(s, me, f(district="丰泽区")).rows} == {
            "pr-bridge", "n-old"}
        assert [r.rid for r in actions.list_records(s, me, f(q="IC卡")).rows] == ["g-ic-card"]
        assert actions.list_records(s, me, f(q="%")).total == 0  # LIKE wildcards are text
        rev = actions.create_draft(s, me, "faq", FAQ, rt.now())
        drafts = actions.list_records(s, me, f(status="draft"))
        assert [(r.rid, r.revision_id) for r in drafts.rows] == [("f-new", rev.id)]
        assert actions.list_records(s, me, f(status="in_review")).total == 0
        assert actions.list_records(s, me, f(status="draft", kind="policy")).total == 0


def test_draft_from_unanswered_question(people):
    rt = people
    with rt.sessions() as s:
        record_unanswered(s, "电动车  能带上公交吗", rt.now())
        s.commit()
        qid = s.scalar(select(UnansweredQuery.id))
    with acting(rt, "ed") as (s, me):
        view = actions.draft_from_unanswered(s, me, qid, rt.now())
        assert view.kind == "faq" and view.state == "draft" and view.from_unanswered == qid
        assert view.data == {"id": f"faq-q{qid}", "question": "电动车 能带上公交吗"}
        assert actions.unanswered_prefill(s, me, qid)["id"] == f"faq-q{qid}-2"
        with pytest.raises(NotFound):
            actions.draft_from_unanswered(s, me, qid + 999, rt.now())
    with acting(rt, "rev") as (s, me):
        with pytest.raises(PermissionDenied):  # reviewers do not write drafts
            actions.draft_from_unanswered(s, me, qid, rt.now())


def test_import_and_export_permissions_and_audit(people):
    rt = people
    text = Path(SMALL_PACK).read_text(encoding="utf-8")
    changed = text.replace("卡费20元", "卡费25元")
    with acting(rt, "ed") as (s, me):
        plan = actions.import_pack(s, rt.settings, me, changed, rt.now(), source="a.toml")
        assert plan.report.updated_keys == ["guide:g-ic-card"] and plan.report.dry_run
        with pytest.raises(PermissionDenied):  # the real import publishes: reviewers
            actions.import_pack(s, rt.settings, me, changed, rt.now(), source="a.toml",
                                dry_run=False)
        with pytest.raises(PermissionDenied):
            actions.authorize_export(s, me, rt.now(), True, "x")
        with pytest.raises(PermissionDenied):
            actions.export_text(s, me, True)
        assert "p-secret" not in actions.export_text(s, me, False)
    with rt.sessions() as s:
        assert "卡费20元" in str(s.scalar(select(Record.data).where(Record.rid == "g-ic-card")))
    with acting(rt, "rev") as (s, me):
        done = actions.import_pack(s, rt.settings, me, changed, rt.now(), source="a.toml",
                                   dry_run=False)
        assert done.report.updated == 1
    with acting(rt, "boss") as (s, me):
        actions.authorize_export(s, me, rt.now(), True, "console download")
        assert "p-secret" in actions.export_text(s, me, True)
    with rt.sessions() as s:
        logged = dict(s.execute(select(AuditEntry.action, AuditEntry.actor).where(
            AuditEntry.action.in_(("content_import", "content_export_all")))).all())
        assert logged == {"content_import": "rev", "content_export_all": "boss"}
        assert s.scalar(select(func.count()).select_from(RecordRevision).where(
            RecordRevision.rid == "g-ic-card", RecordRevision.source == "pack")) == 2
