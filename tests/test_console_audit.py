"""The console's audit log page (issue 9 item 7): reviewers and admins; filters by actor,
action, object and Asia/Shanghai dates; keyset pages; CSV export that is itself audited;
details escaped, openids masked for everyone but admins."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta

from sqlalchemy import func, select

from bot.store.models import AuditEntry
from tests.consolekit import console_app, csrf_token, login, make_staff
from tests.wx import CITIZEN

T0 = datetime(2026, 11, 27, 2, 0)  # naive UTC = 10:00 Shanghai


def add_entries(runtime, *entries: dict) -> None:
    with runtime.sessions() as s:
        for e in entries:
            s.add(AuditEntry(**{"at": T0, "actor": "li", "action": "approve", "detail": {},
                                **e}))
        s.commit()


def client_for(runtime, role: str, name: str | None = None):
    app = console_app(runtime)
    return login(app.test_client(), make_staff(runtime, name or f"u-{role}", role))


def rows_of(html: str) -> list[str]:
    """The table rows' ids (a<id>), newest first as shown."""
    import re
    return re.findall(r'<tr id="a(\d+)">', html)


def test_editor_gets_403_on_the_page_and_the_export(runtime):
    client = client_for(runtime, "editor")
    assert client.get("/audit/").status_code == 403
    token = csrf_token(client, "/")
    assert client.post("/audit/export", data={"csrf_token": token}).status_code == 403
    assert "审计日志" not in client.get("/").get_data(as_text=True)  # not in the nav either
    with runtime.sessions() as s:
        assert s.scalar(select(func.count()).select_from(AuditEntry)
                        .where(AuditEntry.action == "audit_export")) == 0


def test_login_required(runtime):
    client = console_app(runtime).test_client()
    assert client.get("/audit/").status_code in (302, 401)
    assert client.post("/audit/export").status_code in (302, 400, 401)


def test_reviewer_filters_by_actor_action_object_and_campaign(runtime):
    add_entries(runtime,
                {"actor": "li", "action": "approve", "campaign_id": 7},
                {"actor": "wang", "action": "create", "campaign_id": 7},
                {"actor": "wang", "action": "create", "campaign_id": 8},
                {"actor": "zhao", "action": "staff_add", "object_type": "staff",
                 "object_id": "chen"},
                {"actor": "zhao", "action": "staff_disable", "object_type": "staff",
                 "object_id": "sun"})
    client = client_for(runtime, "reviewer", "rev")
    with runtime.sessions() as s:
        ids = {(e.actor, e.action, e.campaign_id, e.object_id): e.id
               for e in s.scalars(select(AuditEntry).where(AuditEntry.actor != "bootstrap"))}

    def shown(query: str) -> set[int]:
        resp = client.get("/audit/?" + query)
        assert resp.status_code == 200
        return {int(i) for i in rows_of(resp.get_data(as_text=True))}

    assert shown("actor=wang") == {ids["wang", "create", 7, None], ids["wang", "create", 8, None]}
    assert shown("action=approve") == {ids["li", "approve", 7, None]}
    assert shown("object_type=campaign&object_id=7") == {ids["li", "approve", 7, None],
                                                         ids["wang", "create", 7, None]}
    assert shown("object_type=staff&object_id=chen") == {ids["zhao", "staff_add", None, "chen"]}
    assert shown("actor=wang&object_type=campaign&object_id=8") == {
        ids["wang", "create", 8, None]}
    assert shown("actor=nobody") == set()
    html = client.get("/audit/?object_type=campaign&object_id=7x").get_data(as_text=True)
    assert "推送编号应为数字" in html  # forged id: said, not a 500


def test_date_range_is_asia_shanghai_days(runtime):
    add_entries(runtime,
                {"at": datetime(2026, 11, 26, 15, 59), "action": "a-26"},  # 26th 23:59 local
                {"at": datetime(2026, 11, 26, 16, 0), "action": "a-27"},  # 27th 00:00 local
                {"at": datetime(2026, 11, 27, 15, 59), "action": "a-27b"},  # 27th 23:59 local
                {"at": datetime(2026, 11, 27, 16, 0), "action": "a-28"})  # 28th 00:00 local
    client = client_for(runtime, "reviewer")
    html = client.get("/audit/?since=2026-11-27&until=2026-11-27").get_data(as_text=True)
    assert "a-27<" in html and "a-27b" in html and "a-26" not in html and "a-28" not in html
    assert ">2026-11-27 00:00<" in html and "2026-11-27T00:00:00+08:00" in html  # Shanghai
    html = client.get("/audit/?since=2026-11-28").get_data(as_text=True)
    assert "a-28" in html and "a-27" not in html
    for forged in ("2026-13-01", "yesterday", "0001-01-01", "9999-12-31"):
        resp = client.get(f"/audit/?since={forged}&until={forged}")
        assert resp.status_code == 200 and "日期格式" in resp.get_data(as_text=True)


def test_keyset_pages_newest_first(runtime):
    add_entries(runtime, *({"action": f"act{i:03d}", "at": T0 + timedelta(seconds=i)}
                           for i in range(120)))
    client = client_for(runtime, "reviewer")
    first = client.get("/audit/?actor=li").get_data(as_text=True)
    ids = rows_of(first)
    assert len(ids) == 50 and ids == sorted(ids, key=int, reverse=True)
    assert "act119" in first and "act070" in first and "act069" not in first
    assert f"before={ids[-1]}" in first and "actor=li" in first.split("更早的记录")[0][-300:]
    second = client.get(f"/audit/?actor=li&before={ids[-1]}").get_data(as_text=True)
    assert "act069" in second and "act020" in second and "act070" not in second
    third = client.get(f"/audit/?actor=li&before={rows_of(second)[-1]}").get_data(as_text=True)
    assert len(rows_of(third)) == 20 and "更早的记录" not in third
    for forged in ("abc", "-5", "²", "99999999999999999999999"):
        assert client.get(f"/audit/?before={forged}").status_code == 200


def test_details_are_escaped(runtime):
    add_entries(runtime, {"action": "reject", "campaign_id": 3,
                          "detail": {"reason": "<img src=x onerror=alert(1)>"}})
    html = client_for(runtime, "reviewer").get("/audit/").get_data(as_text=True)
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html


def test_openids_masked_for_reviewers_whole_for_admins(runtime):
    add_entries(runtime, {"action": "create", "campaign_id": 5,
                          "detail": {"openids": [CITIZEN], "note": f"to {CITIZEN}"}},
                {"action": "follower_fix", "object_type": "follower", "object_id": CITIZEN})
    reviewer = client_for(runtime, "reviewer").get("/audit/").get_data(as_text=True)
    assert CITIZEN not in reviewer and reviewer.count("oyOR***f0rs") == 3
    admin = client_for(runtime, "admin", "boss").get("/audit/").get_data(as_text=True)
    assert admin.count(CITIZEN) == 3
    rev = client_for(runtime, "reviewer", "rev2")
    body = rev.post("/audit/export", data={"csrf_token": csrf_token(rev, "/audit/")}
                    ).get_data(as_text=True)
    assert CITIZEN not in body and "oyOR***f0rs" in body


def export(client, **filters) -> tuple[int, str]:
    resp = client.post("/audit/export", data={"csrf_token": csrf_token(client, "/audit/"),
                                              **filters})
    return resp.status_code, resp.get_data(as_text=True)


def test_csv_export_of_the_filter_is_itself_audited(runtime, clock):
    add_entries(runtime, {"actor": "wang", "action": "create", "campaign_id": 9},
                {"actor": "wang", "action": "edit", "campaign_id": 9,
                 "detail": {"title": "=HYPERLINK(\"http://evil\")"}},
                {"actor": "li", "action": "approve", "campaign_id": 9})
    client = client_for(runtime, "reviewer", "rev")
    status, body = export(client, actor="wang", object_type="campaign", object_id="9")
    assert status == 200
    rows = list(csv.reader(io.StringIO(body.lstrip("\ufeff"))))
    assert rows[0] == ["编号", "时间", "操作人", "操作", "对象类型", "对象编号", "详情"]
    assert [r[3] for r in rows[1:]] == ["edit", "create"]  # newest first, wang's only
    assert rows[1][1].startswith("2026-11-27T10:00:00+08:00") and rows[1][5] == "9"
    assert rows[1][6].startswith("{") and "'=HYPERLINK" not in rows[1][6]  # inside JSON
    with runtime.sessions() as s:
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "audit_export")).one()
    assert entry.actor == "rev" and entry.object_type == "audit_log"
    assert entry.detail == {"filter": {"actor": "wang", "object_type": "campaign",
                                       "object_id": "9"}}
    # the export shows up in the log it exported
    html = client.get("/audit/?action=audit_export").get_data(as_text=True)
    assert len(rows_of(html)) == 1 and "rev" in html


def test_export_cells_cannot_run_as_formulas(runtime):
    add_entries(runtime, {"actor": "=cmd|' /C calc'!A0", "action": "login"})
    client = client_for(runtime, "admin", "boss")
    _, body = export(client, action="login")
    rows = list(csv.reader(io.StringIO(body.lstrip("\ufeff"))))
    assert rows[1][2] == "'=cmd|' /C calc'!A0"


def test_export_without_csrf_is_refused_and_not_audited(runtime):
    client = client_for(runtime, "reviewer")
    client.get("/audit/")
    resp = client.post("/audit/export", data={"actor": "li"})
    assert resp.status_code == 400
    with runtime.sessions() as s:
        assert s.scalar(select(func.count()).select_from(AuditEntry)
                        .where(AuditEntry.action == "audit_export")) == 0
    assert client.get("/audit/export").status_code == 405  # no GET side door
