"""/api/v1/cases (console/api/cases.py), both databases: the same permissions and masking as the
pages, registration, steps with their refusals as stable error codes, queues by due date."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.store.models import AuditEntry, Staff
from push import actions as push_actions
from tests.test_console_cases import APPLICANT, EVIL, env  # noqa: F401 - the fixture

REGISTER = {"channel": "email", "received_on": "2026-11-27", "applicant": APPLICANT,
            "applicant_type": "自然人", "subject": "泉州港2026年航道疏浚合同",
            "delivery_form": "电子", "delivery_way": "邮寄"}


@pytest.fixture
def api(env):  # noqa: F811 - pytest fixture injection
    """Bearer headers for every person of the env."""
    headers = {}
    with env.rt.sessions() as s:
        for name in env.people:
            staff = s.scalar(select(Staff).where(Staff.name == name))
            secret = push_actions.create_api_token(s, env.rt.settings, staff, env.rt.now(),
                                                   "t", ["read", "write"]).secret
            headers[name] = {"Authorization": f"Bearer {secret}"}
        s.commit()
    env.api = headers
    return env


def get(cw, who: str, url: str):
    return cw.app.test_client().get(url, headers=cw.api[who])


def post(cw, who: str, url: str, body: dict):
    return cw.app.test_client().post(url, json=body, headers=cw.api[who])


def error(resp) -> str:
    return resp.get_json()["error"]["code"]


def test_register_read_and_mask(api):
    resp = post(api, "reg", "/api/v1/cases/applications", {**REGISTER, "subject": EVIL})
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    number, code = body["case"]["number"], body["query_code"]
    assert number.startswith("YSQ-2026-") and len(code) == 6
    assert body["case"]["state"] == "reviewing" and body["case"]["due_on"] == "2026-12-25"
    assert body["case"]["subject"] == EVIL  # JSON carries the text as it is
    assert "assign" in body["case"]["allowed"]
    full = get(api, "reg", f"/api/v1/cases/{number}").get_json()
    assert full["case"]["applicant"]["id_number"] == APPLICANT["id_number"]
    assert "query_code" not in full["case"] and code not in str(full)
    assert [e["action"] for e in full["timeline"]] == ["registered"]
    assert full["timeline"][0]["notify"] == "received"
    post(api, "reg", f"/api/v1/cases/{number}/assign", {"department_id": api.depts["A"]})
    masked = get(api, "han", f"/api/v1/cases/{number}").get_json()["case"]
    assert masked["applicant"]["id_number"] == "3505**********1234"
    assert masked["applicant"]["phone"] == "138****5678"
    assert get(api, "hanb", f"/api/v1/cases/{number}").status_code == 403
    assert error(get(api, "ed", f"/api/v1/cases/{number}")) == "forbidden"
    admin = get(api, "admin", f"/api/v1/cases/{number}").get_json()["case"]
    assert admin["applicant"]["id_number"] == APPLICANT["id_number"] and admin["allowed"] == []


def test_registration_refusals(api):
    assert error(post(api, "han", "/api/v1/cases/applications", REGISTER)) == "forbidden"
    resp = post(api, "reg", "/api/v1/cases/applications", {**REGISTER, "channel": "h5"})
    assert resp.status_code == 422 and error(resp) == "validation_error"
    resp = post(api, "reg", "/api/v1/cases/applications",
                {**REGISTER, "applicant": {"name": "李四"}})
    assert resp.status_code == 422
    assert "applicant.id_number: required" in resp.get_json()["error"]["details"]["problems"]
    resp = post(api, "reg", "/api/v1/cases/applications",
                {**REGISTER, "received_on": "2026-12-30"})
    assert resp.status_code == 422  # a receipt date in the future
    resp = post(api, "reg", "/api/v1/cases/applications", {**REGISTER, "subject": "a\x00b"})
    assert resp.status_code == 422


def test_steps_and_their_error_codes(api):
    number = api.message()
    url = f"/api/v1/cases/{number}"
    assert error(post(api, "reg", f"{url}/nope", {})) == "not_found"
    assert error(post(api, "reg", "/api/v1/cases/LY-2026-999999/accept_message", {})) \
        == "not_found"
    resp = post(api, "reg", f"{url}/accept_message", {"reason": "x"})
    assert resp.status_code == 422  # a field the step does not take
    resp = post(api, "reg", f"{url}/transfer_message", {})
    assert resp.status_code == 422 and "承办部门：必填" in resp.get_json()["error"]["message"]
    assert error(post(api, "han", f"{url}/accept_message", {})) == "forbidden"
    assert error(post(api, "ed", f"{url}/accept_message", {})) == "forbidden"
    resp = post(api, "reg", f"{url}/accept_message", {"category": "求助"})
    assert resp.status_code == 200 and resp.get_json()["notices"] == 1
    assert resp.get_json()["case"]["category"] == "求助"
    assert error(post(api, "reg", f"{url}/accept_message", {})) == "invalid_transition"
    resp = post(api, "reg", f"{url}/transfer_message", {"department_id": api.depts["B"]})
    assert resp.status_code == 200
    assert error(post(api, "han", f"{url}/sign_message", {})) == "forbidden"
    assert post(api, "hanb", f"{url}/sign_message", {}).status_code == 200
    assert error(post(api, "hanb", f"{url}/review_reply", {"approve": True})) == "forbidden"
    steps = get(api, "reg", "/api/v1/cases/steps").get_json()["items"]
    draft = next(s for s in steps if s["name"] == "draft_answer")
    assert [f["name"] for f in draft["fields"]] == ["answer_type", "reason", "text"]
    with api.rt.sessions() as s:
        audited = s.scalars(select(AuditEntry.action).where(
            AuditEntry.object_type == "case", AuditEntry.object_id == number)).all()
    assert "case.accepted" in audited and "case.signed" in audited


def test_queue_levels_and_departments(api):
    number = api.message()
    post(api, "reg", f"/api/v1/cases/{number}/accept_message", {})
    items = get(api, "reg", "/api/v1/cases?view=t5").get_json()["items"]
    assert [(i["number"], i["due_on"], i["level"]) for i in items] == [
        (number, "2026-12-04", "T-5")]
    assert get(api, "reg", "/api/v1/cases?view=t2").get_json()["items"] == []
    api.rt.clock.now = api.rt.clock.now + timedelta(days=10)
    items = get(api, "reg", "/api/v1/cases?view=overdue").get_json()["items"]
    assert [i["number"] for i in items] == [number] and items[0]["overdue"]
    assert get(api, "han", "/api/v1/cases").get_json()["items"] == []  # not his department
    assert get(api, "reg", "/api/v1/cases?view=sideways").status_code == 422
    assert error(get(api, "ed", "/api/v1/cases")) == "forbidden"
    names = [d["name"] for d in get(api, "han", "/api/v1/cases/departments").get_json()["items"]]
    assert names == ["市道管处", "市水运处"]
    assert get(api, "admin", "/api/v1/cases").status_code == 200
