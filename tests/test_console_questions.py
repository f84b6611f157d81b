"""The console's citizens' questions page (issue 9 item 6): outcomes today and this week,
unanswered questions by frequency, subscribers per topic and district, the consent ledger."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from bot.store.models import Consent, Follower, QuestionCount, Subscription, UnansweredQuery
from push.insights import mask_detail, mask_openid
from tests.consolekit import console_app, login, make_staff
from tests.wx import CITIZEN

T0 = datetime(2026, 11, 27, 2, 0)  # naive UTC: 10:00 in Shanghai, the pinned clock


def seed_counts(runtime) -> None:
    """Friday 2026-11-27 is today; Monday 2026-11-23 starts the week."""
    rows = [("2026-11-27", "answer", 30), ("2026-11-27", "list", 10),
            ("2026-11-27", "fallback", 10), ("2026-11-27", "smalltalk", 50),
            ("2026-11-23", "answer", 7), ("2026-11-24", "fallback", 3),
            ("2026-11-22", "answer", 1000)]  # Sunday: last week
    with runtime.sessions() as s:
        s.add_all(QuestionCount(day=d, outcome=o, count=n) for d, o, n in rows)
        s.commit()


def page(runtime, role: str = "editor", name: str | None = None) -> str:
    app = console_app(runtime)
    client = login(app.test_client(), make_staff(runtime, name or f"u-{role}", role))
    resp = client.get("/questions/")
    assert resp.status_code == 200
    return resp.get_data(as_text=True)


def period(html: str, index: int) -> str:
    """The HTML of the n-th period block (1 = today, 2 = this week)."""
    blocks = html.split('<div class="qz-period">')
    return blocks[index]


def outcome_cells(block: str) -> dict[str, tuple[str, str]]:
    return {m[0]: (m[1], m[2]) for m in re.findall(
        r'data-outcome="(\w+)"><td>[^<]*</td><td class="num">(\d+)</td><td class="num">([\d.]+%)',
        block)}


def test_today_and_this_week_by_outcome_with_shares(runtime):
    seed_counts(runtime)
    html = page(runtime)
    today, week = period(html, 1), period(html, 2)
    assert 'data-period="1">100<' in today
    assert outcome_cells(today) == {"answer": ("30", "30.0%"), "list": ("10", "10.0%"),
                                    "fallback": ("10", "10.0%"),
                                    "smalltalk": ("50", "50.0%")}
    assert "80.0%" in today  # searched 50, answered or listed 40
    assert 'data-period="2">110<' in week  # Sunday's 1000 are last week's
    assert outcome_cells(week)["answer"] == ("37", "33.6%")
    assert outcome_cells(week)["fallback"] == ("13", "11.8%")
    assert "已回答" in today and "未能回答" in today


def test_empty_figures_say_so(runtime):
    html = page(runtime)
    assert html.count("暂无提问") == 2 and "暂无未能回答的问题" in html
    assert "暂无订阅" in html and "暂无授权记录" in html


def test_unanswered_by_frequency_escaped_and_linked_to_a_new_faq(runtime):
    with runtime.sessions() as s:
        s.add_all([
            UnansweredQuery(text="驾照扣分怎么查", count=3, first_at=T0, last_at=T0),
            UnansweredQuery(text="<script>alert('x')</script>", count=9, first_at=T0,
                            last_at=T0 + timedelta(hours=1)),
            UnansweredQuery(text="机场大巴几点有", count=5, first_at=T0, last_at=T0)])
        s.commit()
        ids = {q.text: q.id for q in s.query(UnansweredQuery)}
    app = console_app(runtime)
    client = login(app.test_client(), make_staff(runtime, "li", "editor"))
    html = client.get("/questions/").get_data(as_text=True)
    assert "<script>alert(" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    order = [html.index(t) for t in ("&lt;script&gt;", "机场大巴几点有", "驾照扣分怎么查")]
    assert order == sorted(order)  # most frequent first
    assert "2026-11-27 11:00" in html  # last seen, Shanghai time
    if "content.new" in app.view_functions:
        with app.test_request_context():
            from flask import url_for
            link = url_for("content.new", from_unanswered=ids["驾照扣分怎么查"])
        assert f'href="{link.replace("&", "&amp;")}"' in html and "据此新建问答" in html
    else:  # the content pages are not there yet: no dead link
        assert "据此新建问答" not in html


def test_unanswered_pages(runtime):
    with runtime.sessions() as s:
        s.add_all(UnansweredQuery(text=f"问题{i:03d}", count=200 - i, first_at=T0, last_at=T0)
                  for i in range(60))
        s.commit()
    app = console_app(runtime)
    client = login(app.test_client(), make_staff(runtime, "li", "editor"))
    first = client.get("/questions/").get_data(as_text=True)
    assert "问题000" in first and "问题049" in first and "问题050" not in first
    assert "page=2" in first
    second = client.get("/questions/?page=2").get_data(as_text=True)
    assert "问题050" in second and "问题059" in second and "问题049" not in second
    assert "page=3" not in second
    for forged in ("0", "-1", "abc", "99999999999999999999"):
        assert client.get(f"/questions/?page={forged}").status_code == 200


def seed_citizens(runtime) -> list[str]:
    openids = [f"oCitizen{i:02d}abcdefghijklmnopqr" for i in range(6)]
    assert all(len(o) == 28 for o in openids)
    with runtime.sessions() as s:
        for i, o in enumerate(openids):
            s.add(Follower(openid=o, active=i != 5, opted_out_at=T0 if i == 4 else None))
        subs = [(0, "出行资讯", "丰泽区"), (1, "出行资讯", "丰泽区"), (2, "出行资讯", "鲤城区"),
                (2, "出行资讯", ""), (3, "项目进展", ""), (4, "出行资讯", "丰泽区"),
                (5, "出行资讯", "")]
        s.add_all(Subscription(openid=openids[i], topic=t, district=d, notice_kind="",
                               created_at=T0) for i, t, d in subs)
        grants = [(0, "tpl-travel", "long_term", True, "available"),
                  (1, "tpl-travel", "1", False, "available"),
                  (1, "tpl-travel", "2", False, "used"),
                  (2, "tpl-travel", "3", False, "revoked"),
                  (3, "tpl-other", "4", False, "available")]
        s.add_all(Consent(openid=openids[i], template_id=t, scene=sc, long_term=lt, status=st,
                          source="popup", created_at=T0, updated_at=T0)
                  for i, t, sc, lt, st in grants)
        s.commit()
    return openids


SETTINGS_OVERRIDES = {"push": {"templates": {"出行资讯": {"template_id": "tpl-travel",
                                                          "long_term": True}}}}


def test_subscribers_by_topic_and_district_and_the_consent_ledger(runtime):
    openids = seed_citizens(runtime)
    html = page(runtime, "editor")
    travel = html.split('data-topic="出行资讯"')[1].split("</tr>")[0]
    # 5 citizens subscribe to travel; 3 are reachable (4 opted out, 5 unfollowed)
    assert '<td class="num">5</td><td class="num">3</td>' in travel
    assert "丰泽区 2" in travel and "鲤城区 1" in travel and "全市（不限区县） 1" in travel
    project = html.split('data-topic="项目进展"')[1].split("</tr>")[0]
    assert '<td class="num">1</td><td class="num">1</td>' in project
    tpl = html.split('data-template="tpl-travel"')[1].split("</tr>")[0]
    assert "出行资讯" in tpl
    assert re.findall(r'class="num">(\d+)<', tpl) == ["1", "1", "1", "1"]
    other = html.split('data-template="tpl-other"')[1].split("</tr>")[0]
    assert "（未配置）" in other and re.findall(r'class="num">(\d+)<', other) == ["0", "1", "0",
                                                                                   "0"]
    for o in openids:  # no openid on the page, not even masked
        assert o not in html and mask_openid(o) not in html


def test_pages_need_a_login(runtime):
    client = console_app(runtime).test_client()
    assert client.get("/questions/").status_code in (302, 401)


def test_every_role_sees_the_page_and_the_nav_entry(runtime):
    for role in ("editor", "reviewer", "admin"):
        html = page(runtime, role)
        assert 'href="/questions/"' in html and "群众提问" in html


def test_openid_masking_rules():
    assert mask_openid(CITIZEN) == "oyOR***f0rs"
    assert mask_openid("short") == "***"
    detail = {"openids": [CITIZEN, "o-test"], "note": f"sent to {CITIZEN} ok",
              "nested": {"openid": "abcdefghijkl"}, "count": 3}
    masked = mask_detail(detail, full=False)
    assert masked == {"openids": ["oyOR***f0rs", "***"], "note": "sent to oyOR***f0rs ok",
                      "nested": {"openid": "abcd***ijkl"}, "count": 3}
    assert mask_detail(detail, full=True) == detail
    assert CITIZEN not in repr(masked)


def test_subscriber_figures_are_reused_for_a_minute_unless_fresh(runtime):
    from push.insights import subscriber_figures

    with runtime.sessions() as s:
        assert subscriber_figures(s) == []
    seed_citizens(runtime)
    with runtime.sessions() as s:
        assert subscriber_figures(s) == []  # the cached figures (SUBSCRIBERS_TTL)
        fresh = subscriber_figures(s, fresh=True)
        assert [(t.topic, t.citizens, t.reachable) for t in fresh] == [("出行资讯", 5, 3),
                                                                       ("项目进展", 1, 1)]
        assert subscriber_figures(s) == fresh
