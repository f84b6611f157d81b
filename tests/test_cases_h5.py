"""The H5 forms (issue 10): signed links (forged / expired / borrowed -> 403, logged hashed),
server-side validation listing every problem with nothing stored, uploads checked by their
bytes and size, the receipt with number and 查询码, one submit per form, and the one-time
progress-consent redirect."""

from __future__ import annotations

import hashlib
import io
import logging
import re
import tempfile
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlparse

import pytest
from sqlalchemy import select
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

from bot.store.models import Case, CaseFile, Consent, Subscription
from cases import links
from tests.wx import CITIZEN

UPLOADS = tempfile.mkdtemp(prefix="qzbot-case-files-")
TPL = "TPL_GOV_ONCE"
SETTINGS_OVERRIDES = {
    "push": {"public_base_url": "https://wx.example.gov.cn",
             "templates": {"政务公开": {"template_id": TPL, "channel": "subscribe",
                                        "long_term": False,
                                        "fields": {"thing1": "title", "date2": "date"}}}},
    "cases": {"upload_dir": UPLOADS, "max_upload_mb": 1},
}
OTHER = "oOtherCitizen00000000000000x"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 200
PDF = b"%PDF-1.4\n" + b"1 0 obj\n" * 20
GOOD = {"applicant_type": "自然人", "name": "张三", "id_type": "居民身份证",
        "id_number": "350502199001011234", "phone": "13800001111", "address": "",
        "email": "", "subject": "2025年公交线路调整的听证记录", "document_no": "",
        "delivery_form": "电子", "delivery_way": "微信"}


@pytest.fixture(autouse=True)
def _empty_uploads():
    for path in Path(UPLOADS).glob("*"):
        path.unlink()


@pytest.fixture
def client(app):
    return app.test_client()


def _url(runtime, form: str = "apply", openid: str = CITIZEN, now=None) -> str:
    full = links.form_url(runtime.settings, form, openid, now or runtime.now())
    parsed = urlparse(full)
    return f"{parsed.path}?{parsed.query}"


def _form_token(html: str) -> str:
    return re.search(r'name="ft" value="([^"]+)"', html).group(1)


def _open(client, runtime, form: str = "apply") -> tuple[str, str]:
    url = _url(runtime, form)
    resp = client.get(url)
    assert resp.status_code == 200
    return url, _form_token(resp.get_data(as_text=True))


def _post(client, url, ft, fields: dict, proof: tuple[bytes, str] | None = None):
    """A multipart POST encoded in memory (the test client would spool a large body to an
    unclosed temporary file when the view refuses it unread)."""
    data = MultiDict({**fields, "ft": ft})
    if proof is not None:
        data.add("proof", FileStorage(io.BytesIO(proof[0]), proof[1],
                                      content_type="application/octet-stream"))
    boundary, body = encode_multipart(data)
    return client.post(url, data=body,
                       content_type=f"multipart/form-data; boundary={boundary}")


def _cases(runtime) -> list[Case]:
    with runtime.sessions() as s:
        return list(s.scalars(select(Case)))


def _stored_files() -> set[str]:
    return {p.name for p in Path(UPLOADS).iterdir()} if Path(UPLOADS).exists() else set()


# --- links -------------------------------------------------------------------------------------


def test_form_opens_with_a_label_for_every_field(client, runtime):
    resp = client.get(_url(runtime))
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert "no-store" in resp.headers["Cache-Control"]
    assert "script-src" not in resp.headers["Content-Security-Policy"]
    assert "<script" not in html
    ids = set(re.findall(r'<(?:input|select|textarea)[^>]* id="([^"]+)"', html))
    labelled = set(re.findall(r'<label for="([^"]+)"', html))
    assert ids and ids <= labelled
    assert {"name", "id_number", "phone", "subject", "proof", "delivery_way"} <= ids


@pytest.mark.parametrize("form", ["apply", "message"])
def test_forged_borrowed_and_expired_links_get_403(client, runtime, clock, caplog, form):
    caplog.set_level(logging.WARNING, logger="qzbot.cases.h5")
    path = f"/h5/{form}"
    assert client.get(path).status_code == 403  # no token
    token = parse_qs(urlparse(_url(runtime, form)).query)["t"][0]
    forged = token[:-4] + ("0000" if not token.endswith("0000") else "1111")
    other_form = parse_qs(urlparse(_url(runtime, "message" if form == "apply" else "apply"))
                          .query)["t"][0]
    for openid, t in ((CITIZEN, forged), (OTHER, token), (CITIZEN, other_form)):
        resp = client.get(f"{path}?{urlencode({'openid': openid, 't': t})}")
        assert resp.status_code == 403
        assert "链接已过期或不属于您" in resp.get_data(as_text=True)
    old = _url(runtime, form, now=clock.now - timedelta(days=3))
    assert client.get(old).status_code == 403
    assert CITIZEN not in caplog.text and OTHER not in caplog.text
    assert "link_mismatch" in caplog.text and "link_expired" in caplog.text


def test_post_needs_the_form_token(client, runtime):
    url, ft = _open(client, runtime)
    assert _post(client, url, "", GOOD, (PNG, "id.png")).status_code == 403
    other_url, _ = _open(client, runtime)  # a form token of another link (same citizen)
    other_ft = _form_token(client.get(_url(runtime, "apply", OTHER)).get_data(as_text=True))
    assert _post(client, url, other_ft, GOOD, (PNG, "id.png")).status_code == 403
    assert _cases(runtime) == []


# --- validation --------------------------------------------------------------------------------


def test_missing_fields_are_all_listed_and_nothing_stored(client, runtime):
    url, ft = _open(client, runtime)
    resp = _post(client, url, ft, {"applicant_type": "自然人", "delivery_way": "邮寄",
                                   "delivery_form": "纸质"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400
    for said in ("请填写姓名或单位名称", "请填写证件号码", "请填写联系电话",
                 "请描述所需的政府信息", "选择邮寄时请填写通信地址", "请上传身份证明"):
        assert said in html
    assert 'value="邮寄" selected' in html  # what was typed is kept
    assert _cases(runtime) == [] and _stored_files() == set()


@pytest.mark.parametrize("data, name", [
    (b"MZ\x90\x00 not an image", "id.png"),  # a .png name on an executable
    (b"<html><script>alert(1)</script>", "id.pdf"),
    (b"GIF89a" + b"\x00" * 20, "id.gif"),
])
def test_wrong_type_uploads_are_refused_by_their_bytes(client, runtime, data, name):
    url, ft = _open(client, runtime)
    resp = _post(client, url, ft, GOOD, (data, name))
    assert resp.status_code == 400
    assert "只接受JPG、PNG图片或PDF文件" in resp.get_data(as_text=True)
    assert _cases(runtime) == [] and _stored_files() == set()


def test_oversized_upload_is_refused(client, runtime):
    url, ft = _open(client, runtime)
    big = PNG + b"\x00" * (2 * 1024 * 1024)  # max_upload_mb = 1
    resp = _post(client, url, ft, GOOD, (big, "id.png"))
    assert resp.status_code == 413
    assert "超过1MB" in resp.get_data(as_text=True)
    just_over = PNG + b"\x00" * (1024 * 1024)  # inside the body slack, over the file limit
    url, ft = _open(client, runtime)
    resp = _post(client, url, ft, GOOD, (just_over, "id.png"))
    assert resp.status_code == 400 and "超过1MB" in resp.get_data(as_text=True)
    assert _cases(runtime) == [] and _stored_files() == set()


# --- a good application ------------------------------------------------------------------------


def test_application_receipt_file_and_one_submit(client, runtime):
    before = _stored_files()
    url, ft = _open(client, runtime)
    resp = _post(client, url, ft, GOOD, (PDF, "../../etc/身份证.pdf"))
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200, html
    number = re.search(r"<strong>(YSQ-\d{4}-\d{6})</strong>", html).group(1)
    code = re.search(r'class="code">([0-9A-Z]{6})<', html).group(1)
    consent = re.search(r'href="(https://mp\.weixin\.qq\.com/mp/subscribemsg[^"]+)"', html)
    assert consent is not None
    redirect = parse_qs(urlparse(consent.group(1).replace("&amp;", "&")).query)
    assert redirect["redirect_url"] == ["https://wx.example.gov.cn/h5/consent"]
    with runtime.sessions() as s:
        case = s.scalar(select(Case).where(Case.number == number))
        assert (case.kind, case.state, case.channel, case.openid) == (
            "application", "registered", "h5", CITIZEN)
        assert case.applicant["id_number"] == GOOD["id_number"]
        assert case.received_on is None  # art. 31: receipt confirmed by the office
        from cases.numbers import query_code_matches
        assert query_code_matches(number, code, case.query_code_hash)
        files = s.scalars(select(CaseFile).where(CaseFile.case_id == case.id)).all()
    assert len(files) == 1
    f = files[0]
    assert f.content_type == "application/pdf" and f.sha256 == hashlib.sha256(PDF).hexdigest()
    assert f.filename == "身份证.pdf"  # the uploader's name, no path
    assert f.stored_name not in f.filename and _stored_files() - before == {f.stored_name}
    assert (Path(UPLOADS) / f.stored_name).read_bytes() == PDF
    # the same form again (double click, replay): refused, nothing filed twice
    again = _post(client, url, ft, GOOD, (PDF, "id.pdf"))
    assert again.status_code == 409
    assert len(_cases(runtime)) == 1


def test_message_form(client, runtime):
    url, ft = _open(client, runtime, "message")
    bad = _post(client, url, ft, {"category": "闲聊", "content": ""})
    assert bad.status_code == 400
    assert "请选择留言类别" in bad.get_data(as_text=True)
    assert "请填写留言内容" in bad.get_data(as_text=True)
    assert _cases(runtime) == []
    ft = _form_token(bad.get_data(as_text=True))
    resp = _post(client, url, ft, {"category": "建议", "content": "建议增加夜班公交",
                                   "name": "李四", "phone": "13900002222"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200, html
    number = re.search(r"<strong>(LY-\d{4}-\d{6})</strong>", html).group(1)
    with runtime.sessions() as s:
        case = s.scalar(select(Case).where(Case.number == number))
        assert (case.category, case.channel, case.applicant) == (
            "建议", "h5", {"name": "李四", "phone": "13900002222"})


# --- the progress-consent redirect -------------------------------------------------------------


def _consent(client, runtime, openid=CITIZEN, action="confirm", scene="1", reserved=None):
    reserved = reserved or links.issue_consent_reserved(runtime.settings, openid, TPL, scene,
                                                        runtime.now())
    return client.get("/h5/consent?" + urlencode({
        "openid": openid, "template_id": TPL, "action": action, "scene": scene,
        "reserved": reserved}))


def test_consent_redirect_grants_one_credit_and_no_topic(client, runtime):
    resp = _consent(client, runtime)
    assert resp.status_code == 200 and "已允许" in resp.get_data(as_text=True)
    assert _consent(client, runtime).status_code == 200  # a reload adds nothing
    assert _consent(client, runtime, action="cancel").status_code == 403  # decided
    with runtime.sessions() as s:
        rows = s.scalars(select(Consent).where(Consent.openid == CITIZEN)).all()
        assert [(r.template_id, r.scene, r.status, r.long_term) for r in rows] == [
            (TPL, "1", "available", False)]
        assert s.scalar(select(Subscription)) is None  # no 政务公开 subscription implied


def test_consent_redirect_refuses_forged_or_borrowed_tokens(client, runtime):
    mine = links.issue_consent_reserved(runtime.settings, CITIZEN, TPL, "1", runtime.now())
    assert _consent(client, runtime, OTHER, reserved=mine).status_code == 403
    assert _consent(client, runtime, scene="2", reserved=mine).status_code == 403
    from bot.subscribemsg import issue_reserved
    topic_token = issue_reserved(runtime.settings, CITIZEN, TPL, "1", runtime.now())
    assert _consent(client, runtime, reserved=topic_token).status_code == 403
    with runtime.sessions() as s:
        assert s.scalar(select(Consent)) is None
