"""Settings: TOML + env overrides, fail fast with every problem; the one clock."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.clock import make_clock
from bot.errors import ConfigError
from bot.settings import NO_CONFIG, load_settings, resolve_sqlite_url

EXAMPLE = "config.example.toml"


def test_example_config_loads_and_documents_every_key():
    import tomllib
    from dataclasses import fields

    from bot.settings import Settings

    settings = load_settings(EXAMPLE, env={})
    assert settings.wechat.app_id == "wxqzbotdemo000001"
    assert settings.redis.url == "" and settings.database.url.startswith("sqlite")
    text = Path(EXAMPLE).read_text(encoding="utf-8")
    raw = tomllib.loads(text)
    for section in fields(Settings):
        for f in fields(getattr(settings, section.name)):
            assert f.name in raw.get(section.name, {}), f"{section.name}.{f.name} undocumented"
            if f.name in ("menu", "rate_limits", "templates"):
                continue
            line = next(i for i, ln in enumerate(text.splitlines())
                        if ln.startswith(f"{f.name} =") or ln.startswith(f"{f.name}="))
            assert text.splitlines()[line - 1].startswith("#")


def test_env_overrides_every_key():
    env = {"QZBOT_WECHAT__APP_SECRET": "from-env", "QZBOT_REDIS__DEDUPE_TTL_SECONDS": "90",
           "QZBOT_WECHAT__ALLOW_PLAINTEXT": "true", "QZBOT_BOT__DISTRICTS": "鲤城区,丰泽区",
           "QZBOT_BOT__MENU": '{ K = "text:hi" }'}
    settings = load_settings(EXAMPLE, env=env)
    assert settings.wechat.app_secret == "from-env"
    assert settings.redis.dedupe_ttl_seconds == 90 and settings.wechat.allow_plaintext
    assert settings.bot.districts == ("鲤城区", "丰泽区") and settings.bot.menu == {"K": "text:hi"}


def test_config_file_from_env_variable():
    assert load_settings(None, env={"QZBOT_CONFIG": EXAMPLE}).wechat.token == "qzbotdemotoken"


def test_secrets_not_in_repr():
    text = repr(load_settings(EXAMPLE, env={}))
    assert "demo-app-secret-not-real" not in text and "qzbotdemotoken" not in text


def test_every_problem_reported_at_once(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[wechat]\napp_id = ""\nencoding_aes_key = "short"\ncolour = 1\n'
                    '[redis]\ndedupe_ttl_seconds = "ten"\n[nonsense]\n', encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_settings(path, env={})
    text = str(err.value)
    for expected in ("[wechat] colour: unknown setting", "[nonsense]: unknown section",
                     "[redis] dedupe_ttl_seconds"):
        assert expected in text


def test_cross_field_rules(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_settings(None, env={"QZBOT_WECHAT__ENCODING_AES_KEY": "short",
                                 "QZBOT_REDIS__DEDUPE_TTL_SECONDS": "10"})
    text = str(err.value)
    for expected in ("[wechat] app_id: required", "[wechat] token: required",
                     "encoding_aes_key: must be 43", "dedupe_ttl_seconds: must cover",
                     "[security] secret_key: required"):
        assert expected in text


@pytest.mark.parametrize("content,msg", [("not toml [", "not valid TOML"),
                                         (None, "no config file at")])
def test_bad_config_file(tmp_path, content, msg):
    path = tmp_path / "c.toml"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=msg):
        load_settings(path, env={})


def test_no_config_file_named_says_so_not_which_keys_are_missing():
    """Nothing named and nothing in env: one line naming the cure (a newcomer's first run)."""
    with pytest.raises(ConfigError) as err:
        load_settings(None, env={"QZBOT_NOW": "2026-11-27T10:00:00"})
    assert err.value.problems == [NO_CONFIG]
    assert "required" not in str(err.value)


def test_missing_config_file_names_its_absolute_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as err:
        load_settings("nope.toml", env={})
    assert err.value.problems[0].startswith(f"no config file at {tmp_path / 'nope.toml'}")


def test_relative_sqlite_url_is_relative_to_the_config_file(tmp_path, monkeypatch):
    """The same database whatever directory a command runs from."""
    conf = tmp_path / "etc" / "qzbot.toml"
    conf.parent.mkdir()
    conf.write_text(Path(EXAMPLE).read_text(encoding="utf-8").replace(
        'url = "sqlite:///var/qzbot.sqlite3"', 'url = "sqlite:///data/q.sqlite3?timeout=5"'),
        encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    expected = f"sqlite:///{(tmp_path / 'etc' / 'data' / 'q.sqlite3').as_posix()}?timeout=5"
    assert load_settings("etc/qzbot.toml", env={}).database.url == expected


def test_demo_default_database_sits_beside_the_example_config(monkeypatch, tmp_path):
    example = Path(EXAMPLE).resolve()
    monkeypatch.chdir(tmp_path)
    url = load_settings(example, env={}).database.url
    assert url == f"sqlite:///{(example.parent / 'var' / 'qzbot.sqlite3').as_posix()}"


@pytest.mark.parametrize("url", ["sqlite:////abs/q.sqlite3", "sqlite://", "sqlite:///:memory:",
                                 "postgresql+psycopg://u@h/qzbot"])
def test_other_database_urls_are_kept(url):
    assert resolve_sqlite_url(url, Path("/etc/qzbot")) == url


def test_database_url_from_env_stays_relative_to_the_current_directory():
    env = {"QZBOT_DATABASE__URL": "sqlite:///here.sqlite3"}
    assert load_settings(EXAMPLE, env=env).database.url == "sqlite:///here.sqlite3"


def test_clock_pinned_by_qzbot_now():
    clock = make_clock({"QZBOT_NOW": "2026-11-27T08:00:00"})
    assert clock() == datetime(2026, 11, 27, 0, 0, tzinfo=UTC)  # Asia/Shanghai is UTC+8
    assert abs(make_clock({})().timestamp() - datetime.now(UTC).timestamp()) < 5
