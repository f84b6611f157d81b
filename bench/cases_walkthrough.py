"""A worked example for the casework closing note: one 依申请公开 application and one 网民留言
from intake to archive through the real service layer (cases/actions.py), on a scratch
SQLite database, printing each step with the dates the system computed.

    .venv/bin/python bench/cases_walkthrough.py

The application is received online on 2026-09-21 (confirmed that day), so its 20 working
days cross the National Day holiday; it goes through a 补正 (the clock restarts when the
correction arrives), a third-party consultation (not counted), an extension approved by the
head of the disclosure office, an answer drafted by the handler and reviewed by another
person, 送达 and 归档. The 留言 (a complaint, 15 working days) is accepted, transferred,
signed for, answered after review, rated by the citizen and closed.
"""

from __future__ import annotations

import sys
import tempfile
from datetime import date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import select  # noqa: E402

from bot.clock import SHANGHAI  # noqa: E402
from bot.runtime import build_runtime  # noqa: E402
from bot.settings import load_settings  # noqa: E402
from bot.store.db import transaction, upgrade  # noqa: E402
from bot.store.models import Case, CaseClock, Staff  # noqa: E402
from cases import actions  # noqa: E402
from push import actions as push_actions  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n" + b"0" * 64


def at(day: str, hour: int = 10) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=SHANGHAI)


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="qzbot-cases-"))
    env = {"QZBOT_DATABASE__URL": f"sqlite:///{work}/cases.sqlite3",
           "QZBOT_CASES__UPLOAD_DIR": str(work / "uploads")}
    settings = load_settings(str(ROOT / "config.example.toml"), env=env)
    rt = build_runtime(settings)
    upgrade(rt.engine)
    with transaction(rt.sessions) as s:
        push_actions.add_staff(s, None, "admin", "admin", at("2026-09-01"))
        s.flush()
        admin = s.scalar(select(Staff).where(Staff.name == "admin"))
        dept = actions.add_department(s, admin, "市道管处", at("2026-09-01")).id
        for name, roles, d in (("reg", ("registrar",), None), ("head", ("office_head",), None),
                               ("han", ("handler",), dept), ("han2", ("handler",), dept)):
            push_actions.add_staff(s, admin, name, "editor", at("2026-09-01"))
            s.flush()
            actions.set_case_roles(s, admin, name, roles, d, at("2026-09-01"))

    def do(who: str, fn, number: str, day: str, **kw):
        with transaction(rt.sessions) as s:
            actor = s.scalar(select(Staff).where(Staff.name == who))
            return fn(s, settings, actor, number, at(day), **kw)

    def show(number: str, what: str, day: str) -> None:
        with rt.sessions() as s:
            case = s.scalar(select(Case).where(Case.number == number))
            clocks = list(s.scalars(select(CaseClock).where(CaseClock.case_id == case.id)
                                    .order_by(CaseClock.id)))
        running = ", ".join(f"{c.kind} {c.started_on}+{c.working_days + c.paused_days}wd"
                            f"→{c.due_on}{' 暂定' if c.provisional else ''} [{c.status}]"
                            for c in clocks if c.status in ("running", "paused"))
        print(f"  {day}  {what:<34} state={case.state:<15} due={case.due_on}"
              f"{' (provisional)' if case.due_provisional else ''}  {running}")

    print("依申请公开 application")
    with transaction(rt.sessions) as s:
        result = actions.create_application(
            s, settings, at("2026-09-21", 9), channel="h5", openid="o-walkthrough",
            applicant={"name": "张三", "id_type": "居民身份证", "id_number": "350502199001011234",
                       "phone": "13812345678", "address": "泉州市丰泽区"},
            applicant_type="自然人", subject="2025年泉州市公路养护资金使用情况", document_no=None,
            delivery_form="电子", delivery_way="微信",
            files=(actions.Upload("id.png", "image/png", PNG, "identity_proof"),))
    app = result.case.number
    show(app, f"submitted online (查询码 {result.query_code})", "2026-09-21")
    do("reg", actions.confirm_receipt, app, "2026-09-21", received_on=date(2026, 9, 21))
    show(app, "receipt confirmed (art. 31): day 0", "2026-09-21")
    do("reg", actions.request_correction, app, "2026-09-24", what="请写明所需信息的年份和文号",
       limit_days=10)
    show(app, "补正 notice (art. 30, within 7 wd)", "2026-09-24")
    do("reg", actions.receive_correction, app, "2026-10-12", received_on=date(2026, 10, 12))
    show(app, "correction received: 20 wd restart", "2026-10-12")
    do("reg", actions.assign, app, "2026-10-13", department_id=dept, handler="han")
    show(app, "assigned to 市道管处 / han", "2026-10-13")
    do("han", actions.start_consultation, app, "2026-10-14", third_party="某施工单位")
    show(app, "third-party consultation (art. 32)", "2026-10-14")
    do("han", actions.end_consultation, app, "2026-10-21", outcome="不同意公开其商业信息")
    show(app, "consultation answered: pause added", "2026-10-21")
    do("han", actions.request_extension, app, "2026-11-10", reason="涉及多个年度数据需汇总")
    do("head", actions.decide_extension, app, "2026-11-10", approve=True)
    show(app, "extension +20 wd (head ≠ handler)", "2026-11-10")
    do("han", actions.draft_answer, app, "2026-11-20", answer_type="部分公开")
    do("han", actions.submit_answer, app, "2026-11-20")
    show(app, "answer drafted (部分公开) and submitted", "2026-11-20")
    do("head", actions.review_answer, app, "2026-11-23", approve=True)
    show(app, "answer reviewed by another person", "2026-11-23")
    do("reg", actions.record_delivery, app, "2026-11-24", how="微信",
       delivered_on=date(2026, 11, 24))
    show(app, "送达 by WeChat", "2026-11-24")
    do("reg", actions.archive, app, "2026-11-25")
    show(app, "归档", "2026-11-25")

    print("网民留言 (投诉举报: 15 working days)")
    with transaction(rt.sessions) as s:
        msg = actions.create_message(s, settings, at("2026-09-28", 20), channel="chat",
                                     openid="o-walkthrough", category="投诉举报",
                                     content="某路段施工占道未设置警示标志").case.number
    show(msg, "submitted in the chat (留言 投诉 …)", "2026-09-28")
    do("reg", actions.accept_message, msg, "2026-09-29")
    show(msg, "accepted", "2026-09-29")
    do("reg", actions.transfer_message, msg, "2026-09-29", department_id=dept)
    show(msg, "transferred to 市道管处 (sign for 1 wd)", "2026-09-29")
    do("han", actions.sign_message, msg, "2026-09-30")
    show(msg, "signed for", "2026-09-30")
    do("han", actions.draft_reply, msg, "2026-10-16", text="已责成施工单位设置警示标志并加强巡查。")
    do("han", actions.submit_reply, msg, "2026-10-16")
    do("head", actions.review_reply, msg, "2026-10-16", approve=True)
    show(msg, "reply reviewed and sent", "2026-10-16")
    with transaction(rt.sessions) as s:
        actions.rate_case(s, "o-walkthrough", msg, "满意", at("2026-10-17"))
    show(msg, "回访: citizen replied 满意", "2026-10-17")
    do("reg", actions.close_message, msg, "2026-10-19")
    show(msg, "办结", "2026-10-19")
    rt.close()


if __name__ == "__main__":
    main()
