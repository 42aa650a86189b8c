from pathlib import Path

import pytest

from archiver.config import config_path, from_dict, load
from archiver.errors import ConfigError

SENDZEN = {"base_url": "https://api.sendzen.io", "api_key": "sz-secret-123"}


def test_defaults_and_sections() -> None:
    config = from_dict({"sendzen": SENDZEN}, env={})
    assert config.database.url == "sqlite:///archive.db"
    sendzen = config.sections["sendzen"]
    assert sendzen.page_size == 20 and sendzen.overlap_seconds == 300
    assert config.sections.get("infobip") is None and config.server.port == 9108


def test_example_config_file_is_valid() -> None:
    """config.example.toml, as shipped, loads (with its placeholder keys)."""
    config = load(Path(__file__).parent.parent / "config.example.toml", env={})
    assert config.sections.get("sendzen") is not None and config.sections.get("infobip") is not None


@pytest.mark.parametrize("data, message", [
    ({"sendzen": {**SENDZEN, "pol_interval_seconds": 5}}, "unknown key [sendzen] pol_interval_seconds"),
    ({"sendzen": {**SENDZEN, "poll_interval_seconds": "often"}}, "[sendzen] poll_interval_seconds must be an integer"),
    ({"sendzen": {**SENDZEN, "poll_interval_seconds": True}}, "[sendzen] poll_interval_seconds must be an integer"),
    ({"sendzen": {**SENDZEN, "page_size": 50}}, "[sendzen] page_size must be at most 20"),
    ({"sendzen": {**SENDZEN, "event_types": ["Incoming"]}}, "[sendzen] event_types has unknown type 'Incoming'"),
    ({"sendzen": {"base_url": "https://x"}}, "[sendzen] api_key is missing"),
    ({"sendzen": {**SENDZEN, "base_url": "ftp://x"}}, "[sendzen] base_url must start with"),
    ({"infobip": {"base_url": "https://x.api.infobip.com", "api_key": "k", "requests_per_minute": 0}},
     "[infobip] requests_per_minute must be at least 1"),
    ({"database": {"url": "mysql://x"}}, "[database] url must be sqlite"),
    ({"database": {"url": "sqlite://"}}, "[database] url names no SQLite file"),
    ({"database": {"url": "sqlite:///:memory:"}}, "[database] url names no SQLite file"),
    ({"server": {"port": 70000}}, "[server] port must be between"),
    ({"servre": {}}, "unknown key servre"),
    ({"sendzen": "yes"}, "[sendzen] must be a table"),
])
def test_errors_name_the_bad_key(data: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        from_dict(data, env={})
    assert message in str(err.value)


def test_wrong_typed_api_key_is_not_echoed() -> None:
    with pytest.raises(ConfigError) as err:
        from_dict({"sendzen": {**SENDZEN, "api_key": 123456789}}, env={})
    assert "123456789" not in str(err.value) and "[sendzen] api_key" in str(err.value)


def test_environment_overrides_secrets() -> None:
    config = from_dict({"sendzen": SENDZEN, "database": {"url": "sqlite:///a.db"}},
                       env={"SENDZEN_API_KEY": "from-env", "ARCHIVER_DATABASE_URL": "postgresql://u:pw@h/db",
                            "INFOBIP_API_KEY": "unused"})
    assert config.sections["sendzen"].api_key == "from-env"
    assert config.database.url == "postgresql://u:pw@h/db"
    assert config.sections.get("infobip") is None, "an env key must not enable a source the file leaves out"


def test_secrets_never_in_repr() -> None:
    config = from_dict({"sendzen": SENDZEN, "database": {"url": "postgresql://u:hunter22@h/db"}}, env={})
    text = repr(config)
    assert "sz-secret-123" not in text and "hunter22" not in text and "***" in text
    assert set(config.secrets()) == {"sz-secret-123", "hunter22"}


def test_config_path_precedence(tmp_path: Path) -> None:
    assert config_path("x.toml", env={"ARCHIVER_CONFIG": "y.toml"}) == Path("x.toml")
    assert config_path(None, env={"ARCHIVER_CONFIG": "y.toml"}) == Path("y.toml")
    assert config_path(None, env={}) == Path("config.toml")


def test_missing_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load(tmp_path / "nope.toml", env={})
    bad = tmp_path / "bad.toml"
    bad.write_text("[sendzen\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(bad, env={})



def test_accounts_sharing_a_key_are_allowed_with_a_warning() -> None:
    shared = {"sendzen": {"api_key": "k1", "accounts": [{"name": "a"}, {"name": "b"}, {"name": "c", "api_key": "k2"}]},
              "infobip": {"api_key": "k1", "base_url": "https://api.infobip.com"}}
    config = from_dict(shared)
    assert [a.account for a in config.accounts_of("sendzen")] == ["a", "b", "c"]
    [warning] = config.warnings()
    assert warning.startswith("[[sendzen.accounts]] 'a', 'b' use the same api_key") and "k1" not in warning
    assert from_dict({"sendzen": {"api_key": "k1"}}).warnings() == []
