"""The WeChat protocol core stays free of Flask, SQLAlchemy, Redis and RQ (house rule 8)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORE = "bot.wechat.signature, bot.wechat.crypto, bot.wechat.messages, bot.wechat.replies"
CHECKS = {
    "no-web-db-queue": (
        f"import {CORE}, sys; assert not any(m.split('.')[0] in "
        "{'flask','sqlalchemy','redis','rq'} for m in sys.modules)"
    ),
    # Hand-written on purpose (wechatpy's unpadding is buggy): the SDK is not even imported.
    "no-wechatpy": f"import {CORE}, sys; assert 'wechatpy' not in sys.modules",
}


@pytest.mark.parametrize("code", CHECKS.values(), ids=list(CHECKS))
def test_core_imports_stay_pure(code: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_purity_check_can_fail() -> None:
    """Control case: the same check does notice a forbidden import."""
    code = CHECKS["no-web-db-queue"].replace("import ", "import redis, ", 1)
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0 and "AssertionError" in result.stderr
