"""Content packs: every kind, every validation rule, idempotent, all-or-nothing, prune, export."""

from __future__ import annotations

import tomllib

import pytest
from sqlalchemy import func, select

from bot.content.pack import SAMPLE_PACK, export_pack, import_pack, read_pack
from bot.errors import PackInvalid
from bot.store.db import transaction
from bot.store.models import Record
from bot.store.queries import content_revision, visible_records
from tests.conftest import SMALL_PACK, load_pack


def _import(rt, doc, prune=False):
    with transaction(rt.sessions) as session:
        return import_pack(session, doc, source="t.toml", now=rt.now(),
                           districts=rt.settings.bot.districts, prune=prune)


def _count(rt) -> int:
    with rt.sessions() as session:
        return session.scalar(select(func.count()).select_from(Record))


def test_import_is_idempotent_and_updates_in_place(runtime):
    first = load_pack(runtime)
    assert first.created == 12 and first.updated == 0
    with runtime.sessions() as s:
        rev = content_revision(s)
    again = load_pack(runtime)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 12)
    with runtime.sessions() as s:
        assert content_revision(s) == rev  # nothing changed, no index rebuild
    doc = read_pack(SMALL_PACK)
    doc["hotline"][0]["hours"] = "全天24小时"
    report = _import(runtime, doc)
    assert report.updated == 1 and report.changed_public == ["hotline:hl-12328"]
    with runtime.sessions() as s:
        row = s.scalar(select(Record).where(Record.rid == "hl-12328"))
        assert row.data["hours"] == "全天24小时" and content_revision(s) == rev + 1
    assert _count(runtime) == 12


def test_prune_removes_only_missing_records_of_the_packs_kinds(runtime):
    load_pack(runtime)
    doc = {"faq": [{"id": "f-new", "question": "问", "answer": "答"}]}
    report = _import(runtime, doc, prune=True)
    assert report.created == 1 and report.pruned == 1  # f-taxi-receipt pruned
    with runtime.sessions() as s:
        kinds = dict(s.execute(select(Record.kind, func.count()).group_by(Record.kind)).all())
    assert kinds["faq"] == 1 and kinds["hotline"] == 1 and kinds["policy"] == 2


def test_without_prune_nothing_is_removed(runtime):
    load_pack(runtime)
    _import(runtime, {"faq": [{"id": "f-new", "question": "问", "answer": "答"}]})
    assert _count(runtime) == 13


BAD_PACK = {
    "guide": [
        {"id": "g1", "title": "x", "materials": ["a"]},  # steps missing
        {"id": "g1", "title": "y", "materials": [], "steps": ["s"], "color": "red"},
    ],
    "policy": [{"id": "p1", "title": "t", "issuer": "i", "issued_on": "2020-01-01",
                "disclosure": "公开", "summary": "s",
                "interpretation": {"title": "t", "foo": 1}}],
    "disclosure": [{"id": "d1", "title": "t", "category": "c", "issuer": "i",
                    "formed_on": "x"}],  # disclosure missing, formed_on not a date
    "project": [{"id": "pr1", "name": "n", "district": "厦门市", "stage": "在建",
                 "progress_percent": 120, "summary": "s"}],
    "notice": [{"id": "n1", "title": "t", "kind": "plane", "body": "b", "urgent": "yes"}],
    "synonym": [{"id": "s1", "words": ["only-one"]}],
    "faq": [{"question": "q", "answer": ""}],
    "event": [{"id": "e1"}],
}
EXPECTED = [
    "guide[0] id='g1': missing required field 'steps'",
    "guide[1] id='g1': unknown field 'color'",
    "guide[1] id='g1': field 'materials' must not be empty",
    "guide[1] id='g1': duplicate id (also guide[0])",
    "policy[0] id='p1': field 'issued_on' must be a TOML date",
    "policy[0] id='p1': field 'disclosure' '公开' is not one of 主动公开, 依申请公开, 不予公开",
    "policy[0] id='p1': field 'interpretation' unknown field(s) foo",
    "disclosure[0] id='d1': missing required field 'disclosure'",
    "disclosure[0] id='d1': field 'formed_on' must be a TOML date",
    "project[0] id='pr1': field 'district' '厦门市' is not one of",
    "project[0] id='pr1': field 'progress_percent' must be an integer 0-100",
    "project[0] id='pr1': missing required field 'updated_on'",
    "notice[0] id='n1': field 'kind' 'plane' is not one of",
    "notice[0] id='n1': missing required field 'starts_at'",
    "notice[0] id='n1': field 'urgent' must be true or false",
    "synonym[0] id='s1': field 'words' needs at least 2 words",
    "faq[0]: missing required field 'id'",
    "faq[0]: field 'answer' must be a non-empty string",
    "unknown kind [[event]]",
]


def test_bad_pack_imports_nothing_and_names_every_problem(runtime):
    load_pack(runtime)
    before = _count(runtime)
    doc = dict(BAD_PACK, hotline=[{"id": "hl-new", "name": "新热线", "number": "1"}])
    with pytest.raises(PackInvalid) as err:
        _import(runtime, doc)
    text = str(err.value)
    for expected in EXPECTED:
        assert expected in text, expected
    assert len(err.value.problems) == len(EXPECTED)
    assert _count(runtime) == before  # the valid hotline was not imported either


@pytest.mark.parametrize("body,problem", [
    (b"[[guide]\nid=", "not valid TOML"),
    (b"\xff\xfe[[faq]]", "not UTF-8"),
])
def test_unreadable_pack_files(tmp_path, body, problem):
    path = tmp_path / "p.toml"
    path.write_bytes(body)
    with pytest.raises(PackInvalid) as err:
        read_pack(path)
    assert problem in str(err.value) and str(path) in str(err.value)


def test_ends_before_start_is_an_error(runtime):
    from datetime import datetime

    doc = {"notice": [{"id": "n", "title": "t", "kind": "road", "body": "b",
                       "starts_at": datetime(2026, 12, 1, 8), "ends_at": datetime(2026, 11, 1)}]}
    with pytest.raises(PackInvalid, match="ends_at' must be after starts_at"):
        _import(runtime, doc)


def test_visibility_enforced_in_the_data_layer(runtime):
    load_pack(runtime)
    with runtime.sessions() as s:
        keys = {r.key for r in visible_records(s, runtime.now())}
    assert "policy:p-2020-19" in keys and "notice:n-ferry" in keys
    for hidden in ("policy:p-secret", "disclosure:d-apply", "notice:n-old", "synonym:s-card"):
        assert hidden not in keys


def test_export_round_trips(runtime, tmp_path):
    load_pack(runtime)
    with runtime.sessions() as s:
        text = export_pack(s, include_non_public=True)  # every record (staff export --all)
    exported = tomllib.loads(text)
    assert exported["policy"][0]["interpretation"]["title"].startswith("《政务公开")
    assert {k: len(v) for k, v in exported.items()} == {
        k: len(v) for k, v in read_pack(SMALL_PACK).items()}
    report = _import(runtime, exported)
    assert report.unchanged == 12 and not report.created and not report.updated


def test_sample_pack_is_valid_and_large_enough(runtime):
    report = load_pack(runtime, str(SAMPLE_PACK))
    assert report.created >= 60
    with runtime.sessions() as s:
        kinds = set(s.scalars(select(Record.kind).distinct()))
    assert kinds == {"hotline", "guide", "policy", "disclosure", "project", "notice", "faq",
                     "synonym"}
    assert "sample" in SAMPLE_PACK.read_text(encoding="utf-8")[:500].lower()
