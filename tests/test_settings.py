"""``Settings.load``: precedence, coercion, errors that name their source, and the derived properties."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from gateway.errors import ConfigError
from gateway.settings import Settings, field_docs


def _config_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(text)
    return path


def test_no_sources_gives_the_defaults() -> None:
    assert Settings.load(environ={}) == Settings()


def test_each_source_overrides_the_one_below(tmp_path: Path) -> None:
    config = _config_file(tmp_path, "host: 0.0.0.0\nworkers: 3\nport: 9000\nlog_level: INFO\n")
    environ = {"GATEWAY_PORT": "9100", "GATEWAY_LOG_LEVEL": "DEBUG"}
    settings = Settings.load(str(config), environ=environ, overrides={"log_level": "ERROR"})
    assert settings.admin_key == ""  # default
    assert settings.host == "0.0.0.0"  # config file over default
    assert settings.workers == 3
    assert settings.port == 9100  # environment over config file
    assert settings.log_level == "ERROR"  # override over environment


def test_none_override_leaves_the_lower_source_in_place(tmp_path: Path) -> None:
    settings = Settings.load(environ={"GATEWAY_PORT": "9100"}, overrides={"port": None, "workers": 2})
    assert settings.port == 9100
    assert settings.workers == 2


def test_gateway_config_variable_names_the_config_file(tmp_path: Path) -> None:
    config = _config_file(tmp_path, "port: 9000\n")
    assert Settings.load(environ={"GATEWAY_CONFIG": str(config)}).port == 9000


def test_explicit_config_file_wins_over_gateway_config_variable(tmp_path: Path) -> None:
    chosen = _config_file(tmp_path, "port: 9000\n")
    ignored = tmp_path / "other.yaml"
    ignored.write_text("port: 9999\n")
    assert Settings.load(str(chosen), environ={"GATEWAY_CONFIG": str(ignored)}).port == 9000


def test_process_environment_is_read_when_no_environ_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GATEWAY_CONFIG", *(variable for variable, _, _ in field_docs())):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GATEWAY_PORT", "1234")
    assert Settings.load().port == 1234


def test_environment_strings_are_coerced_to_field_types() -> None:
    settings = Settings.load(
        environ={
            "GATEWAY_PORT": " 9000 ",
            "GATEWAY_KEY_CACHE_SIZE": "1_000",
            "GATEWAY_KEY_CACHE_TTL_SECONDS": "0.5",
            "GATEWAY_AUTO_MIGRATE": "no",
            "GATEWAY_HOST": "0.0.0.0",
        }
    )
    assert settings.port == 9000
    assert settings.key_cache_size == 1000
    assert settings.key_cache_ttl_seconds == 0.5
    assert settings.auto_migrate is False
    assert settings.host == "0.0.0.0"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1", True), ("true", True), ("YES", True), ("on", True), ("0", False), ("False", False), ("off", False)],
)
def test_boolean_words_are_understood(raw: str, expected: bool) -> None:
    assert Settings.load(environ={"GATEWAY_AUTO_MIGRATE": raw}).auto_migrate is expected


def test_empty_optional_boolean_means_unset() -> None:
    assert Settings.load(environ={"GATEWAY_AUTO_MIGRATE": ""}).auto_migrate is None


def test_config_file_values_are_coerced_to_field_types(tmp_path: Path) -> None:
    config = _config_file(tmp_path, "port: '9000'\nkey_cache_ttl_seconds: 5\nhost: 127\nauto_migrate: 'yes'\n")
    settings = Settings.load(str(config), environ={})
    assert settings.port == 9000
    assert settings.key_cache_ttl_seconds == 5.0
    assert isinstance(settings.key_cache_ttl_seconds, float)
    assert settings.host == "127"
    assert settings.auto_migrate is True


@pytest.mark.parametrize(
    ("variable", "raw", "type_name"),
    [
        ("GATEWAY_PORT", "abc", "int"),
        ("GATEWAY_WORKERS", "2.5", "int"),
        ("GATEWAY_KEY_CACHE_TTL_SECONDS", "soon", "float"),
        ("GATEWAY_AUTO_MIGRATE", "maybe", "bool"),
    ],
)
def test_bad_environment_value_names_the_variable(variable: str, raw: str, type_name: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.load(environ={variable: raw})
    message = str(caught.value)
    assert message.startswith(f"{variable}:")
    assert f"expected {type_name}" in message
    assert repr(raw) in message


@pytest.mark.parametrize("value", ["abc", "true", "8.5"])
def test_bad_config_file_value_names_the_file_and_the_field(tmp_path: Path, value: str) -> None:
    config = _config_file(tmp_path, f"port: {value}\n")
    with pytest.raises(ConfigError) as caught:
        Settings.load(str(config), environ={})
    message = str(caught.value)
    assert message.startswith(f"{config}:")
    assert "expected int for port" in message


def test_unknown_key_in_config_file_is_rejected_with_the_closest_name(tmp_path: Path) -> None:
    config = _config_file(tmp_path, "port: 9000\nprot: 9001\ndatabase: x\n")
    with pytest.raises(ConfigError) as caught:
        Settings.load(str(config), environ={})
    assert str(caught.value) == (
        f"{config}: unknown setting database (did you mean database_url?), unknown setting prot (did you mean port?)"
    )


def test_unknown_key_with_no_close_name_points_at_the_reference(tmp_path: Path) -> None:
    config = _config_file(tmp_path, "zzz: 1\n")
    with pytest.raises(ConfigError) as caught:
        Settings.load(str(config), environ={})
    assert str(caught.value) == f"{config}: unknown setting zzz (`gateway settings` lists them)"


@pytest.mark.parametrize(
    ("variable", "closest"),
    [
        ("GATEWAY_MODLES_FILE", "GATEWAY_MODELS_FILE"),
        ("GATEWAY_DATABASE", "GATEWAY_DATABASE_URL"),
        ("GATEWAY_LOGLEVEL", "GATEWAY_LOG_LEVEL"),
        ("GATEWAY_CONFIG_FILE", "GATEWAY_CONFIG"),
    ],
)
def test_unknown_gateway_variable_is_refused_with_the_closest_name(variable: str, closest: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.load(environ={variable: "x"})
    message = str(caught.value)
    assert message.startswith(f"{variable}: unknown setting (did you mean {closest}?")
    assert "\n" not in message


def test_unrelated_and_test_suite_variables_are_ignored() -> None:
    environ = {"PORT": "1", "MY_GATEWAY_KEY": "k", "GATEWAY_TEST_DATABASE_URL": "x", "GATEWAY_TEST_": "y"}
    assert Settings.load(environ=environ) == Settings()


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+asyncpg://user:pass@db:5432/gateway",
        "postgresql+asyncpg:///gateway",
        "sqlite+aiosqlite:////var/lib/gateway/gateway.db",
        "sqlite+aiosqlite:///:memory:",
        "",
    ],
)
def test_supported_database_urls_are_accepted(url: str) -> None:
    assert Settings.load(environ={"GATEWAY_DATABASE_URL": url}).database_url == url


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("postgres://u:pw1234@db/gateway", "use postgresql+asyncpg://"),
        ("postgresql://u:pw1234@db/gateway", "use postgresql+asyncpg://"),
        ("sqlite:///gateway.db", "use sqlite+aiosqlite://"),
        ("mysql+aiomysql://u:pw1234@db/gateway", "unsupported database"),
        ("db.example.com:5432", "not a URL"),
        ("postgresql+asyncpg://u:pw1234@db:port/gateway", "port"),
    ],
)
def test_database_url_of_the_wrong_form_is_refused_without_its_password(url: str, complaint: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.load(environ={"GATEWAY_DATABASE_URL": url})
    message = str(caught.value)
    assert message.startswith("GATEWAY_DATABASE_URL: ") and complaint in message
    assert "pw1234" not in message


def test_readme_configuration_table_matches_gateway_settings() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Configuration reference", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1:3] for line in section.splitlines() if line.startswith("| `GATEWAY_")]
    table = {name.strip().strip("`"): default.strip().strip("`") for name, default in rows}
    words = {"''": "empty", "None": "unset"}
    expected = {variable: words.get(default, default.strip("'")) for variable, default, _ in field_docs()}
    assert table == {"GATEWAY_CONFIG": "unset"} | expected


def test_config_file_that_is_not_yaml_is_rejected(tmp_path: Path) -> None:
    config = _config_file(tmp_path, "port: [9000\n")
    with pytest.raises(ConfigError, match="not valid YAML") as caught:
        Settings.load(str(config), environ={})
    assert str(caught.value).startswith(f"{config}:")


def test_config_file_that_is_not_a_mapping_is_rejected(tmp_path: Path) -> None:
    config = _config_file(tmp_path, "- port\n- 9000\n")
    with pytest.raises(ConfigError, match="expected a mapping") as caught:
        Settings.load(str(config), environ={})
    assert str(caught.value).startswith(f"{config}:")


def test_missing_config_file_is_reported_by_name(tmp_path: Path) -> None:
    missing = tmp_path / "absent.yaml"
    with pytest.raises(ConfigError, match="cannot read config file") as caught:
        Settings.load(str(missing), environ={})
    assert str(caught.value).startswith(f"{missing}:")


def test_empty_config_file_gives_the_defaults(tmp_path: Path) -> None:
    config = _config_file(tmp_path, "# nothing set\n")
    assert Settings.load(str(config), environ={}) == Settings()


def test_blank_value_in_config_file_does_not_store_none(tmp_path: Path) -> None:
    config = _config_file(tmp_path, "database_url:\n")
    try:
        settings = Settings.load(str(config), environ={})
    except ConfigError as exc:
        assert "database_url" in str(exc)
        return
    assert settings.database_url is not None
    assert settings.embedded


def test_unknown_override_does_not_name_a_missing_config_file() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.load(environ={}, overrides={"bogus": 1})
    assert "bogus" in str(caught.value)
    assert "None" not in str(caught.value)


def test_bad_override_is_not_blamed_on_the_config_file(tmp_path: Path) -> None:
    config = _config_file(tmp_path, "port: 9000\n")
    with pytest.raises(ConfigError) as caught:
        Settings.load(str(config), environ={}, overrides={"workers": "many"})
    assert "workers" in str(caught.value)
    assert str(config) not in str(caught.value)


@pytest.mark.parametrize(
    ("database_url", "embedded"),
    [
        ("", True),
        ("   ", True),
        ("sqlite+aiosqlite:////var/lib/gateway/gateway.db", True),
        ("postgresql+asyncpg://user:pass@db/gateway", False),
    ],
)
def test_embedded_means_sqlite(database_url: str, embedded: bool) -> None:
    assert Settings(database_url=database_url).embedded is embedded


def test_effective_database_url_defaults_to_sqlite_in_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=str(tmp_path / "data"))
    assert settings.effective_database_url == f"sqlite+aiosqlite:///{tmp_path / 'data' / 'gateway.db'}"


def test_effective_database_url_resolves_a_relative_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    url = Settings(data_dir="rel").effective_database_url
    assert url == f"sqlite+aiosqlite:///{tmp_path.resolve() / 'rel' / 'gateway.db'}"


def test_effective_database_url_is_the_configured_url_when_set() -> None:
    url = "postgresql+asyncpg://user:pass@db/gateway"
    assert Settings(database_url=url).effective_database_url == url


@pytest.mark.parametrize(
    ("database_url", "auto_migrate", "expected"),
    [
        ("", None, True),
        ("postgresql+asyncpg://db/gateway", None, False),
        ("", False, False),
        ("postgresql+asyncpg://db/gateway", True, True),
    ],
)
def test_should_migrate_follows_mode_unless_set(database_url: str, auto_migrate: bool | None, expected: bool) -> None:
    settings = Settings(database_url=database_url, auto_migrate=auto_migrate)
    assert settings.should_migrate is expected


def test_field_docs_describe_every_field() -> None:
    docs = field_docs()
    fields = dataclasses.fields(Settings)
    assert [variable for variable, _, _ in docs] == [f"GATEWAY_{f.name.upper()}" for f in fields]
    assert [default for _, default, _ in docs] == [repr(f.default) for f in fields]
    assert all(description.strip() for _, _, description in docs)


@pytest.mark.parametrize(
    ("variable", "value", "complaint"),
    [
        ("GATEWAY_LOG_LEVEL", "verbose", "expected one of"),
        ("GATEWAY_UPSTREAM_TRANSPORT", "curl", "expected one of"),
        ("GATEWAY_USAGE_QUEUE_SIZE", "0", "greater than 0"),
        ("GATEWAY_MAX_BODY_BYTES", "-1", "greater than 0"),
    ],
)
def test_values_out_of_range_are_refused_by_name(variable: str, value: str, complaint: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.load(environ={variable: value})
    assert variable in str(caught.value) and complaint in str(caught.value)
