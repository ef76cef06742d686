"""The models file: validation errors that point at the problem, and syncing it into SQL as versions."""

from __future__ import annotations

import asyncio
import copy
import datetime
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.audit.changes import Changes
from gateway.catalog.config import CatalogConfig, load_catalog_config, parse_catalog_config
from gateway.catalog.load import load_catalog
from gateway.catalog.registry import Catalog, Prices
from gateway.catalog.sync import sync_catalog
from gateway.db.engine import create_engine, session_factory
from gateway.db.migrate import upgrade
from gateway.db.models import Backend, Model, ModelVersion
from gateway.errors import ConfigError, ModelNotFound
from gateway.providers.credentials import CredentialProviders
from gateway.settings import Settings
from gateway.upstream.client import Upstream

SOURCE = "policies/models.yaml"


def _spec() -> dict[str, Any]:
    return {
        "backends": {"upstream": {"kind": "openai", "base_url": "https://api.example.com/v1/"}},
        "models": {
            "chat": {
                "backend": "upstream",
                "upstream_model": "gpt-4o-mini",
                "params": {"temperature": 0.5},
                "prices": {"input": 150_000, "cached_input": 75_000, "output": 600_000},
            },
            "embed": {"backend": "upstream", "prices": {"input": 20_000}},
        },
    }


def _error(data: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_catalog_config(data, SOURCE)
    return str(caught.value)


def test_valid_file_parses_with_defaults(tmp_path: Path) -> None:
    path = tmp_path / "models.yaml"
    path.write_text(
        "backends:\n"
        "  local:\n"
        "    base_url: http://127.0.0.1:8000/v1/\n"
        "models:\n"
        "  llama:\n"
        "    backend: local\n"
        "    prices: {input: 1000, output: 2000}\n"
    )
    config = load_catalog_config(path)
    backend = config.backends["local"]
    assert backend.kind == "openai"
    assert backend.base_url == "http://127.0.0.1:8000/v1"
    assert backend.api_key_env is None and backend.api_key is None and backend.timeout_seconds is None
    assert backend.credential_ref is None
    model = config.models["llama"]
    assert model.upstream_model == "llama"
    assert model.params == {}
    assert (model.prices.input, model.prices.cached_input, model.prices.output) == (1000, 1000, 2000)


def test_explicit_values_are_kept() -> None:
    config = parse_catalog_config(_spec(), SOURCE)
    chat = config.models["chat"]
    assert chat.upstream_model == "gpt-4o-mini"
    assert chat.params == {"temperature": 0.5}
    assert (chat.prices.input, chat.prices.cached_input, chat.prices.output) == (150_000, 75_000, 600_000)
    assert config.models["embed"].prices.output == 0


def test_empty_file_is_an_empty_catalog(tmp_path: Path) -> None:
    path = tmp_path / "models.yaml"
    path.write_text("")
    assert load_catalog_config(path) == CatalogConfig(backends={}, models={})


def test_unknown_backend_kind_is_named() -> None:
    data = _spec()
    data["backends"]["upstream"]["kind"] = "watsonx"
    message = _error(data)
    assert message.startswith(f"{SOURCE}: backends.upstream.kind: ")
    assert "unknown backend kind 'watsonx'" in message
    assert "openai" in message


def test_missing_base_url_is_named() -> None:
    data = _spec()
    del data["backends"]["upstream"]["base_url"]
    assert _error(data) == f"{SOURCE}: backends.upstream.base_url: required field is missing"


def test_base_url_must_be_http() -> None:
    data = _spec()
    data["backends"]["upstream"]["base_url"] = "ftp://example.com"
    assert _error(data).startswith(f"{SOURCE}: backends.upstream.base_url: expected an http(s) URL")


def test_model_naming_a_missing_backend_is_named() -> None:
    data = _spec()
    data["models"]["chat"]["backend"] = "elsewhere"
    assert _error(data) == f"{SOURCE}: models.chat.backend: no backend named 'elsewhere' under 'backends'"


@pytest.mark.parametrize(("unit", "value"), [("input", -1), ("output", 1.5), ("cached_input", "100"), ("input", True)])
def test_prices_must_be_whole_non_negative_numbers(unit: str, value: Any) -> None:
    data = _spec()
    data["models"]["chat"]["prices"][unit] = value
    message = _error(data)
    assert message.startswith(f"{SOURCE}: models.chat.prices.{unit}: ")
    assert f"got {value!r}" in message


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ((), "model"),
        (("backends", "upstream"), "api_key_file"),
        (("models", "chat"), "price"),
        (("models", "chat", "prices"), "reasoning"),
    ],
)
def test_unknown_fields_are_named(path: tuple[str, ...], field: str) -> None:
    data = _spec()
    target = data
    for key in path:
        target = target[key]
    target[field] = 1
    where = ".".join([*path, field])
    message = _error(data)
    assert message.startswith(f"{SOURCE}: {where}: unknown field; allowed: ")


def test_not_yaml_is_reported_with_the_file(tmp_path: Path) -> None:
    path = tmp_path / "models.yaml"
    path.write_text("models: {chat: [\n")
    with pytest.raises(ConfigError) as caught:
        load_catalog_config(path)
    assert str(caught.value).startswith(f"{path}: not valid YAML")


def test_missing_file_is_reported_with_the_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(ConfigError) as caught:
        load_catalog_config(path)
    assert str(caught.value).startswith(f"{path}: cannot read models file")


def test_top_level_not_a_mapping_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "models.yaml"
    path.write_text("- chat\n- embed\n")
    with pytest.raises(ConfigError) as caught:
        load_catalog_config(path)
    assert str(caught.value) == f"{path}: (top level): expected a mapping, got list"


@pytest.mark.parametrize("section", ["backends", "models"])
def test_section_not_a_mapping_is_rejected(section: str) -> None:
    data = _spec()
    data[section] = ["chat"]
    assert _error(data) == f"{SOURCE}: {section}: expected a mapping, got list"


def test_model_spec_not_a_mapping_is_rejected() -> None:
    data = _spec()
    data["models"]["chat"] = "upstream"
    assert _error(data) == f"{SOURCE}: models.chat: expected a mapping, got str"


@pytest.mark.parametrize("document", ["[]\n", "false\n"])
def test_falsy_document_that_is_not_a_mapping_is_rejected(tmp_path: Path, document: str) -> None:
    path = tmp_path / "models.yaml"
    path.write_text(document)
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_catalog_config(path)


@pytest.mark.parametrize("name", ["1BAD", "MY-KEY", "has space", "$KEY"])
def test_bad_env_var_name_is_named(name: str) -> None:
    data = _spec()
    data["backends"]["upstream"]["api_key_env"] = name
    message = _error(data)
    assert message == f"{SOURCE}: backends.upstream.api_key_env: not an environment variable name: {name!r}"


@pytest.mark.parametrize("timeout", [0, -1, "10", True])
def test_timeout_must_be_a_positive_number(timeout: Any) -> None:
    data = _spec()
    data["backends"]["upstream"]["timeout_seconds"] = timeout
    expected = "expected a positive number of seconds, at most 86400"
    assert _error(data) == f"{SOURCE}: backends.upstream.timeout_seconds: {expected}"


@pytest.mark.parametrize("reserved", ["model", "stream"])
def test_params_cannot_default_model_or_stream(reserved: str) -> None:
    data = _spec()
    data["models"]["chat"]["params"] = {reserved: "x"}
    assert _error(data).startswith(f"{SOURCE}: models.chat.params: ")


def test_bad_model_name_is_named() -> None:
    data = _spec()
    data["models"]["bad name!"] = data["models"].pop("chat")
    assert _error(data).startswith(f"{SOURCE}: models.bad name!: names use letters")


# --- sync into SQL ---------------------------------------------------------------------------


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"
    await asyncio.to_thread(upgrade, url)
    engine = create_engine(url)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


def _config(spec: dict[str, Any]) -> CatalogConfig:
    return parse_catalog_config(spec, SOURCE)


def _with_chat_price(price: int) -> CatalogConfig:
    spec = _spec()
    spec["models"]["chat"]["prices"]["input"] = price
    return _config(spec)


async def _sync(sessions: async_sessionmaker[AsyncSession], config: CatalogConfig) -> Catalog:
    """Sync the file into SQL, then read the catalog back as a snapshot build does."""
    await sync_catalog(Changes(sessions), config)
    providers = CredentialProviders(Upstream(Settings()))
    return await load_catalog(sessions, lambda row: providers.for_backend(config.backends[row.name]), config)


async def _versions(sessions: async_sessionmaker[AsyncSession], model: str) -> list[dict[str, Any]]:
    async with sessions() as session:
        rows = await session.scalars(
            select(ModelVersion).join(Model).where(Model.name == model).order_by(ModelVersion.number)
        )
        return [{c.key: getattr(row, c.key) for c in inspect(ModelVersion).column_attrs} for row in rows]


async def test_first_sync_creates_version_one(sessions: async_sessionmaker[AsyncSession]) -> None:
    catalog = await _sync(sessions, _config(_spec()))
    assert catalog.names() == ["chat", "embed"]
    chat = catalog.resolve("chat")
    assert chat.version == 1
    assert chat.upstream_model == "gpt-4o-mini"
    assert chat.params == {"temperature": 0.5}
    assert chat.prices == Prices(150_000, 75_000, 600_000, cache_write_input=150_000)
    assert chat.backend.name == "upstream"
    assert chat.backend.base_url == "https://api.example.com/v1"
    [row] = await _versions(sessions, "chat")
    assert row["id"] == chat.version_id
    assert row["number"] == 1
    assert row["price_input"] == 150_000


async def test_syncing_the_same_config_keeps_the_version(sessions: async_sessionmaker[AsyncSession]) -> None:
    first = (await _sync(sessions, _config(_spec()))).resolve("chat")
    again = (await _sync(sessions, _config(_spec()))).resolve("chat")
    assert (again.version, again.version_id, again.model_id) == (1, first.version_id, first.model_id)
    assert len(await _versions(sessions, "chat")) == 1


async def test_changed_price_creates_a_new_version_and_leaves_the_old_one(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    first = (await _sync(sessions, _config(_spec()))).resolve("chat")
    [before] = await _versions(sessions, "chat")
    catalog = await _sync(sessions, _with_chat_price(200_000))
    second = catalog.resolve("chat")
    assert second.version == 2
    assert second.version_id != first.version_id
    assert second.model_id == first.model_id
    assert second.prices.input == 200_000
    v1, v2 = await _versions(sessions, "chat")
    lifecycle = {"state", "deactivated_at"}  # the one thing about a version that changes
    unchanged = {k: v for k, v in before.items() if k not in lifecycle}
    assert {k: v for k, v in v1.items() if k not in lifecycle} == unchanged
    assert (before["state"], v1["state"], v2["state"]) == ("active", "retired", "active")
    assert v2["price_input"] == 200_000
    assert catalog.resolve("embed").version == 1


async def test_changing_back_creates_a_new_version_instead_of_reusing_the_old(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    first = (await _sync(sessions, _config(_spec()))).resolve("chat")
    await _sync(sessions, _with_chat_price(200_000))
    third = (await _sync(sessions, _config(_spec()))).resolve("chat")
    assert third.version == 3
    assert third.version_id != first.version_id
    assert third.prices == first.prices
    assert [v["number"] for v in await _versions(sessions, "chat")] == [1, 2, 3]


async def test_removed_model_is_inactive_and_not_served(sessions: async_sessionmaker[AsyncSession]) -> None:
    await _sync(sessions, _config(_spec()))
    spec = _spec()
    del spec["models"]["embed"]
    catalog = await _sync(sessions, _config(spec))
    assert catalog.names() == ["chat"]
    with pytest.raises(ModelNotFound):
        catalog.resolve("embed")
    async with sessions() as session:
        rows = (await session.execute(select(Model.name, Model.active))).all()
    active = {name: is_active for name, is_active in rows}
    assert active == {"chat": True, "embed": False}
    assert len(await _versions(sessions, "embed")) == 1


async def test_readded_model_is_active_again_with_its_old_version(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    first = (await _sync(sessions, _config(_spec()))).resolve("embed")
    spec = _spec()
    del spec["models"]["embed"]
    await _sync(sessions, _config(spec))
    back = (await _sync(sessions, _config(_spec()))).resolve("embed")
    assert (back.version, back.version_id) == (1, first.version_id)


def test_resolve_unknown_model_raises_model_not_found() -> None:
    with pytest.raises(ModelNotFound) as caught:
        Catalog(routes={}).resolve("gpt-nonexistent")
    assert caught.value.param == "model"
    assert "gpt-nonexistent" in caught.value.message


async def _all_sql_values(sessions: async_sessionmaker[AsyncSession]) -> list[str]:
    async with sessions() as session:
        connection = await session.connection()
        tables = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
        values: list[str] = []
        for table in tables:
            for row in (await session.execute(text(f'SELECT * FROM "{table}"'))).all():
                values.extend(str(value) for value in row)
    return values


@pytest.mark.parametrize(
    ("backend_fields", "credential_ref"),
    [
        ({"api_key_env": "GATEWAY_TEST_UPSTREAM_KEY"}, "env:GATEWAY_TEST_UPSTREAM_KEY"),
        ({"api_key": "<secret>"}, "config:backends.upstream.api_key"),
    ],
)
async def test_credential_reaches_headers_but_never_sql_or_repr(
    sessions: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
    backend_fields: dict[str, str],
    credential_ref: str,
) -> None:
    secret = f"sk-test-{uuid.uuid4().hex}"
    monkeypatch.setenv("GATEWAY_TEST_UPSTREAM_KEY", secret)
    spec = copy.deepcopy(_spec())
    spec["backends"]["upstream"].update({k: v.replace("<secret>", secret) for k, v in backend_fields.items()})
    config = _config(spec)
    catalog = await _sync(sessions, config)
    route = catalog.resolve("chat")
    assert route.backend.credentials.authorize("u", {}, b"") == {"authorization": f"Bearer {secret}"}
    async with sessions() as session:
        refs = (await session.scalars(select(Backend.credential_ref))).all()
    assert refs == [credential_ref]
    values = await _all_sql_values(sessions)
    assert credential_ref in values
    assert not [value for value in values if secret in value]
    for shown in (route, route.backend, catalog, config, config.backends["upstream"]):
        assert secret not in repr(shown)


async def test_unset_key_variable_sends_no_authorization(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GATEWAY_TEST_UNSET_KEY", raising=False)
    spec = _spec()
    spec["backends"]["upstream"]["api_key_env"] = "GATEWAY_TEST_UNSET_KEY"
    route = (await _sync(sessions, _config(spec))).resolve("chat")
    assert route.backend.credentials.authorize("u", {}, b"") == {}


def test_params_must_be_plain_json() -> None:
    spec = _spec()
    spec["models"]["chat"]["params"] = {"stop": datetime.date(2024, 1, 1)}
    assert "models.chat.params" in _error(spec) and "plain JSON" in _error(spec)


def test_a_malformed_api_key_is_never_echoed() -> None:
    spec = _spec()
    backend = next(iter(spec["backends"].values()))
    backend.pop("api_key_env", None)
    backend["api_key"] = 123456789987654321
    message = _error(spec)
    assert ".api_key" in message and "123456789987654321" not in message


def test_a_bedrock_backend_needs_a_region_it_can_sign_for() -> None:
    data = _spec()
    data["backends"]["upstream"] = {"kind": "bedrock", "base_url": "https://proxy.example.com"}
    assert "backends.upstream.region: required" in _error(data)
    data["backends"]["upstream"]["base_url"] = "https://bedrock-runtime.eu-west-3.amazonaws.com"
    assert parse_catalog_config(data, SOURCE).backends["upstream"].region == "eu-west-3"
