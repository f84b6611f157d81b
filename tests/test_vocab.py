"""The vocabulary is defined once (bot/vocab.py) and every user reads the same words."""

from __future__ import annotations

import ast
from pathlib import Path
from types import SimpleNamespace

import pytest

import bot.store.models as models
from bot import vocab
from bot.answers import answer
from bot.content.schema import NOTICE_KINDS
from bot.search_api import Found, Search
from bot.vocab import (
    KIND_LABEL,
    NOTICE_KIND_ALIASES,
    NOTICE_KIND_LABEL,
    TOPIC_ALIASES,
    Kind,
    NoticeKind,
    Topic,
    record_topic,
    topic_named,
)
from handlers.search import SearchService, doc_from_record
from push import subscriptions as subs
from push.render import source_value

ROOT = Path(__file__).resolve().parents[1]


def test_models_reexport_the_same_enums():
    """`from bot.store.models import Topic` keeps working and is the one definition."""
    for name in ("Kind", "Topic", "Role", "CampaignStatus", "DeliveryStatus", "PUBLIC",
                 "DISCLOSURE_VALUES"):
        assert getattr(models, name) is getattr(vocab, name)


def test_every_notice_kind_has_one_label_and_its_aliases():
    """Labels, citizen words and the content-pack schema name the same kinds."""
    assert NOTICE_KINDS == tuple(k.value for k in NoticeKind)
    assert set(NOTICE_KIND_LABEL) == set(NOTICE_KIND_ALIASES) == set(NOTICE_KINDS)
    for kind, label in NOTICE_KIND_LABEL.items():
        assert label in NOTICE_KIND_ALIASES[kind]  # citizens can type the label we show
    assert NOTICE_KIND_LABEL[NoticeKind.RAIL] == "铁路"
    assert subs.KIND_LABEL is NOTICE_KIND_LABEL


def test_every_answer_kind_and_topic_has_a_label():
    """Record kinds answered to citizens have a label; every topic has its own name first."""
    assert set(KIND_LABEL) == set(Kind) - {Kind.SYNONYM}
    assert set(TOPIC_ALIASES) == {t.value for t in Topic}
    for topic, words in TOPIC_ALIASES.items():
        assert words[0] == topic


@pytest.mark.parametrize("kind, interpreted, topic", [
    ("notice", False, Topic.TRAVEL),
    ("project", False, Topic.PROJECT),
    ("policy", True, Topic.POLICY),   # published with its 解读: what 政策解读 subscribers want
    ("policy", False, Topic.GOV),
    ("disclosure", False, Topic.GOV),
    ("guide", False, None),
    ("hotline", False, None),
    ("faq", False, None),
])
def test_record_topic_is_decided_once(kind, interpreted, topic):
    """One answer for record kind -> topic (drafts and campaign templates both use it)."""
    assert record_topic(kind, interpreted) == topic


def test_staff_name_topics_by_value_or_code():
    """`--topic travel` and `--topic 出行资讯` are the same; anything else is unknown."""
    assert topic_named("travel") is Topic.TRAVEL
    assert topic_named("政策解读") is Topic.POLICY
    assert topic_named("出行") is None


def test_the_rail_label_is_the_same_in_answers_pushes_and_search():
    """A rail notice reads 铁路 in the answer, in a push and in the search document."""
    data = {"id": "n1", "title": "动车调图", "kind": "rail", "body": "车次调整",
            "starts_at": "2027-01-01T00:00:00"}
    record = SimpleNamespace(kind="notice", title="动车调图", data=data, notice_kind="rail",
                             district=None)
    assert "类型：铁路" in answer(record, 2048).text
    assert source_value("kind", [record], "动车调图", None) == "铁路"
    assert "铁路" in doc_from_record("notice", data).text


def test_search_service_meets_the_interface():
    """The feature's service provides what the foundation's Protocol promises."""
    service: Search = SearchService()
    for name in ("ready", "index", "find"):
        assert callable(getattr(service, name))
    assert Found([], False).confident is False


def _label_dicts(path: Path) -> list[int]:
    """Lines of dict literals mapping notice kinds or record kinds to Chinese labels."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Dict) and node.values and all(
                isinstance(v, ast.Constant) and isinstance(v.value, str)
                and any("\u4e00" <= ch <= "\u9fff" for ch in v.value) for v in node.values):
            keys = {k.value for k in node.keys if isinstance(k, ast.Constant)}
            if {"rail", "ferry"} <= keys or {"guide", "hotline", "disclosure"} <= keys:
                lines.append(node.lineno)
    return lines


def test_no_module_keeps_its_own_copy_of_the_labels():
    """Label tables live in bot/vocab.py only."""
    copies = [f"{path.relative_to(ROOT)}:{line}"
              for package in ("bot", "handlers", "push")
              for path in sorted((ROOT / package).rglob("*.py"))
              if path.name != "vocab.py"
              for line in _label_dicts(path)]
    assert not copies, copies
