"""Backends through the admin API and the CLI: create, show, list, update and delete, each audited
with the secret masked; bad input a 400 naming the field, changing nothing; 404 and 409 (a backend
in use, one of the models file); a changed secret live at once on the upstream's Authorization
header; no encryption key, a 400 naming ``secret``; and key rotation with ``re-encrypt``."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from cryptography.fernet import Fernet, InvalidToken
from harness import ADMIN_KEY, ENCRYPTION_KEY, Gateway, running_gateway
from sqlalchemy import select

from gateway.db.models import AuditEntry, Backend
from gateway.vault import Vault

ADMIN = {"authorization": f"Bearer {ADMIN_KEY}"}
PROMPT = [{"role": "user", "content": "hi"}]


def _name(prefix: str = "be") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _secret(tag: str) -> str:
    return f"sk-{tag}-do-not-leak-{uuid.uuid4().hex}"  # the suite watches for the marker (tests/leaks.py)


async def _audit(gateway: Gateway, name: str) -> list[AuditEntry]:
    async with gateway.runtime.sessions() as session:
        rows = await session.scalars(
            select(AuditEntry)
            .where(AuditEntry.object_type == "backend", AuditEntry.object_name == name)
            .order_by(AuditEntry.id)
        )
        return list(rows.all())


async def _row(gateway: Gateway, name: str) -> Backend | None:
    async with gateway.runtime.sessions() as session:
        row: Backend | None = await session.scalar(select(Backend).where(Backend.name == name))
        return row


async def _served_model(http: httpx.AsyncClient, backend: str, upstream_model: str = "fake-tokens-12-7") -> str:
    """A model whose active version sends its requests to ``backend``."""
    model = _name("bm")
    assert (await http.post("/admin/models", headers=ADMIN, json={"name": model})).status_code == 201
    spec = {"backend": backend, "upstream_model": upstream_model, "prices": {"input": 1, "output": 1}}
    version = await http.post(f"/admin/models/{model}/versions", headers=ADMIN, json=spec)
    assert version.status_code == 201, version.text
    promoted = await http.post(f"/admin/models/{model}/versions/1/promote", headers=ADMIN, json={"to": "active"})
    assert promoted.status_code == 200, promoted.text
    return model


async def _authorization_sent(gateway: Gateway, key: str, model: str) -> str | None:
    """The Authorization header the fake upstream got for one chat request through ``model``."""
    gateway.upstream.clear_requests()
    await gateway.openai(key).chat.completions.create(model=model, messages=PROMPT)
    chats = [r for r in gateway.upstream.requests if r.path.endswith("/chat/completions")]
    assert len(chats) == 1
    return chats[0].headers.get("authorization")


async def test_create_show_list_update_delete_each_audited_with_the_secret_masked(gateway: Gateway) -> None:
    name, secret, newer = _name(), _secret("crud"), _secret("newer")
    async with gateway.http() as http:
        body = {"name": name, "kind": "openai", "base_url": gateway.upstream.base_url + "/", "secret": secret}
        created = await http.post("/admin/backends", headers=ADMIN, json=body)
        assert created.status_code == 201, created.text
        view = created.json()
        assert view["secret"] == "****" + secret[-4:] and secret not in created.text
        assert view["source"] == "api" and view["base_url"] == gateway.upstream.base_url  # no trailing /
        assert view["credential_ref"] is None and view["used_by"] == []
        assert (await http.get(f"/admin/backends/{name}", headers=ADMIN)).json() == view
        assert (await http.get(f"/admin/backends/{view['id']}", headers=ADMIN)).json() == view
        listed = (await http.get("/admin/backends", headers=ADMIN)).json()["data"]
        assert view in listed and {"fake", "claude"} <= {b["name"] for b in listed}

        changes = {"timeout_seconds": 12.5, "secret": newer}
        updated = await http.patch(f"/admin/backends/{name}", headers=ADMIN, json=changes)
        assert updated.status_code == 200, updated.text
        assert updated.json()["timeout_seconds"] == 12.5 and updated.json()["secret"] == "****" + newer[-4:]
        to_env = await http.patch(f"/admin/backends/{name}", headers=ADMIN, json={"credential_ref": "env:SOME_KEY"})
        assert to_env.json()["secret"] is None and to_env.json()["credential_ref"] == "env:SOME_KEY"
        cleared = await http.patch(f"/admin/backends/{name}", headers=ADMIN, json={"credential_ref": None})
        assert cleared.json()["credential_ref"] is None and cleared.json()["timeout_seconds"] == 12.5
        unchanged = await http.patch(f"/admin/backends/{name}", headers=ADMIN, json={"timeout_seconds": 12.5})
        assert unchanged.status_code == 200 and unchanged.json() == cleared.json()  # and not audited

        deleted = await http.delete(f"/admin/backends/{name}", headers=ADMIN)
        assert deleted.status_code == 200 and deleted.json() == {
            "id": view["id"],
            "name": name,
            "deleted": True,
            "object": "backend",
        }
        assert (await http.get(f"/admin/backends/{name}", headers=ADMIN)).status_code == 404

    entries = await _audit(gateway, name)
    assert [e.action for e in entries] == ["backend.create", *["backend.update"] * 3, "backend.delete"]
    assert entries[0].before is None and entries[0].after is not None
    assert entries[0].after["secret"] == "****" + secret[-4:] and entries[0].actor == "admin-key"
    assert entries[1].before == entries[0].after
    assert entries[1].after is not None and entries[1].after["secret"] == "****" + newer[-4:]
    assert entries[1].after["settings"]["timeout_seconds"] == 12.5
    assert entries[2].after is not None and entries[2].after["credential_ref"] == "env:SOME_KEY"
    assert entries[2].after["secret"] is None
    assert entries[4].before == entries[3].after and entries[4].after is None
    assert all(secret not in str(e.before) + str(e.after) for e in entries)


async def test_a_short_secret_shows_none_of_its_characters(gateway: Gateway) -> None:
    name = _name()
    async with gateway.http() as http:
        body = {"name": name, "kind": "anthropic", "base_url": "http://127.0.0.1:9/v1", "secret": "abcdefgh"}
        created = await http.post("/admin/backends", headers=ADMIN, json=body)
    assert created.status_code == 201 and created.json()["secret"] == "****"
    row = await _row(gateway, name)
    assert row is not None and row.secret_hint == "" and row.secret_encrypted and "abcdefgh" not in row.secret_encrypted


BAD_CREATES: list[tuple[dict[str, Any], str]] = [
    ({"kind": "openia"}, "kind"),
    ({"base_url": "ftp://example.com"}, "base_url"),
    ({"base_url": "https://user:pass@example.com/v1"}, "base_url"),
    ({"base_url": "https://example.com/v1 with spaces"}, "base_url"),
    ({"secret": " padded"}, "secret"),
    ({"secret": "x" * 5000}, "secret"),
    ({"secret": "tab\tinside"}, "secret"),
    ({"credential_ref": "OPENAI_KEY"}, "credential_ref"),
    ({"credential_ref": "env:not a name"}, "credential_ref"),
    ({"secret": "sk-abcdefghijkl", "credential_ref": "env:OPENAI_KEY"}, "credential_ref"),
    ({"timeout_seconds": 0}, "timeout_seconds"),
    ({"timeout_seconds": 100_000}, "timeout_seconds"),
    ({"timeout_seconds": "soon"}, "timeout_seconds"),
    ({"entra": {"tenant_id": "t", "client_id": "c", "client_secret_env": "E"}}, "entra"),
    ({"kind": "azure", "entra": {"tenant_id": "t", "client_id": "c", "client_secret_env": "not a var"}}, "entra"),
    ({"kind": "bedrock", "base_url": "https://example.com"}, "region"),
    ({"name": "has space"}, "name"),
    ({"name": ""}, "name"),
    ({"colour": "blue"}, "colour"),
    ({"api_version": "   "}, "api_version"),
]


@pytest.mark.parametrize(("change", "field"), BAD_CREATES)
async def test_a_bad_create_is_a_400_naming_the_field_and_makes_nothing(
    gateway: Gateway, change: dict[str, Any], field: str
) -> None:
    name = _name()
    body = {"name": name, "kind": "openai", "base_url": "https://example.com/v1", **change}
    async with gateway.http() as http:
        refused = await http.post("/admin/backends", headers=ADMIN, json=body)
        assert refused.status_code == 400, refused.text
        error = refused.json()["error"]
        assert error["param"] is not None and error["param"].split(".")[0] == field, error
        assert "sk-abcdefghijkl" not in refused.text and "x" * 100 not in refused.text
        listed = (await http.get("/admin/backends", headers=ADMIN)).json()["data"]
    assert all(b["name"] != body["name"] for b in listed)
    assert await _audit(gateway, str(body["name"])) == []


ENTRA = {"tenant_id": "t", "client_id": "c", "client_secret_env": "E"}
BAD_UPDATES: list[tuple[dict[str, Any], str]] = [
    ({"base_url": "nope"}, "base_url"),
    ({"base_url": None}, "base_url"),
    ({"kind": "bedrock"}, "region"),
    ({"kind": "gemini", "entra": ENTRA}, "kind"),
    ({"entra": ENTRA}, "kind"),
    ({"kind": "azure", "entra": ENTRA | {"client_secret_env": "not a var"}}, "entra"),
    ({"secret": "sk-abcdefghijkl", "credential_ref": "env:A"}, "credential_ref"),
    ({"timeout_seconds": -1}, "timeout_seconds"),
    ({"name": "renamed"}, "name"),
    ({"secret": "new line\n"}, "secret"),
]


@pytest.mark.parametrize(("change", "field"), BAD_UPDATES)
async def test_a_bad_update_is_a_400_naming_the_field_and_changes_nothing(
    gateway: Gateway, change: dict[str, Any], field: str
) -> None:
    name, secret = _name(), _secret("kept")
    async with gateway.http() as http:
        body = {"name": name, "kind": "openai", "base_url": "https://example.com/v1", "secret": secret}
        before = (await http.post("/admin/backends", headers=ADMIN, json=body)).json()
        refused = await http.patch(f"/admin/backends/{name}", headers=ADMIN, json=change)
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"]["param"].split(".")[0] == field
        assert (await http.get(f"/admin/backends/{name}", headers=ADMIN)).json() == before
    row = await _row(gateway, name)
    assert row is not None and row.secret_encrypted
    assert Vault(ENCRYPTION_KEY).decrypt(row.secret_encrypted) == secret
    assert [e.action for e in await _audit(gateway, name)] == ["backend.create"]


async def test_unknown_backends_are_404_naming_the_backend(gateway: Gateway) -> None:
    async with gateway.http() as http:
        for response in (
            await http.get("/admin/backends/no-such-backend", headers=ADMIN),
            await http.patch("/admin/backends/no-such-backend", headers=ADMIN, json={"timeout_seconds": 3}),
            await http.delete("/admin/backends/no-such-backend", headers=ADMIN),
            await http.get(f"/admin/backends/{uuid.uuid4()}", headers=ADMIN),
        ):
            assert response.status_code == 404, response.text
            assert response.json()["error"]["param"] == "backend"


async def test_a_taken_name_a_backend_in_use_and_a_file_backend_are_409(gateway: Gateway) -> None:
    name = _name()
    async with gateway.http() as http:
        body = {"name": name, "kind": "openai", "base_url": gateway.upstream.base_url}
        assert (await http.post("/admin/backends", headers=ADMIN, json=body)).status_code == 201
        again = await http.post("/admin/backends", headers=ADMIN, json=body)
        assert again.status_code == 409 and again.json()["error"]["param"] == "name"
        taken = await http.post("/admin/backends", headers=ADMIN, json=body | {"name": "fake"})
        assert taken.status_code == 409
        model = await _served_model(http, name)
        in_use = await http.delete(f"/admin/backends/{name}", headers=ADMIN)
        assert in_use.status_code == 409 and f"{model} v1" in in_use.json()["error"]["message"]
        assert (await http.get(f"/admin/backends/{name}", headers=ADMIN)).json()["used_by"] == [f"{model} v1"]
        for refused in (
            await http.patch("/admin/backends/fake", headers=ADMIN, json={"timeout_seconds": 3}),
            await http.delete("/admin/backends/fake", headers=ADMIN),
        ):
            assert refused.status_code == 409 and "models file" in refused.json()["error"]["message"]
        fake = (await http.get("/admin/backends/fake", headers=ADMIN)).json()
    assert fake["source"] == "file" and fake["timeout_seconds"] is None
    assert [e.action for e in await _audit(gateway, name)] == ["backend.create"]
    assert [e.action for e in await _audit(gateway, "fake") if e.source != "sync"] == []


async def test_a_changed_secret_is_sent_upstream_at_once(
    gateway: Gateway, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    name, first, second, from_env = _name(), _secret("first"), _secret("second"), _secret("env")
    monkeypatch.setenv("GATEWAY_TEST_BACKEND_KEY", from_env)
    async with gateway.http() as http:
        body = {"name": name, "kind": "openai", "base_url": gateway.upstream.base_url, "secret": first}
        assert (await http.post("/admin/backends", headers=ADMIN, json=body)).status_code == 201
        model = await _served_model(http, name)
        assert await _authorization_sent(gateway, key, model) == f"Bearer {first}"
        await http.patch(f"/admin/backends/{name}", headers=ADMIN, json={"secret": second})
        assert await _authorization_sent(gateway, key, model) == f"Bearer {second}"
        ref = {"credential_ref": "env:GATEWAY_TEST_BACKEND_KEY"}
        assert (await http.patch(f"/admin/backends/{name}", headers=ADMIN, json=ref)).status_code == 200
        assert await _authorization_sent(gateway, key, model) == f"Bearer {from_env}"
        assert (await http.patch(f"/admin/backends/{name}", headers=ADMIN, json={"secret": first})).status_code == 200
        assert await _authorization_sent(gateway, key, model) == f"Bearer {first}"
        assert (await http.patch(f"/admin/backends/{name}", headers=ADMIN, json={"secret": None})).status_code == 200
        assert await _authorization_sent(gateway, key, model) is None


async def test_an_anthropic_backend_sends_its_secret_in_its_own_header(gateway: Gateway, key: str) -> None:
    name, secret = _name(), _secret("anthropic")
    async with gateway.http() as http:
        body = {"name": name, "kind": "anthropic", "base_url": gateway.fakes.anthropic.base_url, "secret": secret}
        assert (await http.post("/admin/backends", headers=ADMIN, json=body)).status_code == 201
        model = await _served_model(http, name, "claude-fake-tokens-12-7")
    gateway.fakes.anthropic.clear_requests()
    await gateway.openai(key).chat.completions.create(model=model, messages=PROMPT, max_tokens=16)
    sent = [r for r in gateway.fakes.anthropic.requests if r.path.endswith("/messages")]
    assert sent and sent[-1].headers.get("x-api-key") == secret


async def test_without_an_encryption_key_a_secret_is_a_400_naming_it(tmp_path: Path) -> None:
    async with running_gateway("embedded", tmp_path, encryption_keys="") as gateway, gateway.http() as http:
        body = {"name": "keyless", "kind": "openai", "base_url": gateway.upstream.base_url, "secret": _secret("no")}
        refused = await http.post("/admin/backends", headers=ADMIN, json=body)
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"]["param"] == "secret"
        assert "GATEWAY_ENCRYPTION_KEYS" in refused.json()["error"]["message"]
        assert body["secret"] not in refused.text
        by_reference = body | {"secret": None, "credential_ref": "env:KEYLESS_KEY"}
        assert (await http.post("/admin/backends", headers=ADMIN, json=by_reference)).status_code == 201


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


async def cli(env: dict[str, str], *args: str, stdin: str | None = None) -> Ran:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        *args,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await process.communicate(stdin.encode() if stdin is not None else None)
    assert process.returncode is not None
    return Ran(process.returncode, stdout.decode(), stderr.decode())


def cli_env(gateway: Gateway, keys: str = ENCRYPTION_KEY) -> dict[str, str]:
    """The CLI's settings pointing at the running gateway's database (and Redis)."""
    settings = gateway.runtime.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env |= {"GATEWAY_DATA_DIR": settings.data_dir, "GATEWAY_DATABASE_URL": settings.database_url}
    env["GATEWAY_ENCRYPTION_KEYS"] = keys
    if settings.redis_url:
        env["GATEWAY_REDIS_URL"] = settings.redis_url
    return env


async def test_the_cli_creates_shows_updates_and_deletes_a_backend(gateway: Gateway, key: str) -> None:
    env, name, secret, newer = cli_env(gateway), _name("cli"), _secret("cli"), _secret("clienv")
    create = ("backends", "create", name, "--kind", "openai", "--base-url", gateway.upstream.base_url)
    created = await cli(env, *create, "--secret-stdin", stdin=secret + "\n")
    assert created.returncode == 0, created.stderr
    assert '"secret": "****' + secret[-4:] in created.stdout and secret not in created.stdout + created.stderr
    async with gateway.http() as http:
        model = await _served_model(http, name)
    assert await _authorization_sent(gateway, key, model) == f"Bearer {secret}"
    updated = await cli(env | {"NEW_BACKEND_KEY": newer}, "backends", "update", name, "--secret-env", "NEW_BACKEND_KEY")
    assert updated.returncode == 0, updated.stderr
    # A change the CLI makes reaches the running gateway by its notice or its SQL check (1 s).
    for _ in range(100):
        if await _authorization_sent(gateway, key, model) == f"Bearer {newer}":
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the secret the CLI set never reached the upstream")
    listed = await cli(env, "backends", "list")
    assert name in listed.stdout and "****" + newer[-4:] in listed.stdout and newer not in listed.stdout
    shown = await cli(env, "backends", "show", name)
    assert f'"used_by": [\n    "{model} v1"' in shown.stdout
    in_use = await cli(env, "backends", "delete", name)
    assert in_use.returncode == 2 and f"{model} v1" in in_use.stderr
    bad = await cli(env, "backends", "create", _name(), "--kind", "openai", "--base-url", "ftp://x")
    assert bad.returncode == 2 and "base_url" in bad.stderr
    spare = _name("cli")
    assert (await cli(env, "backends", "create", spare, "--kind", "openai", "--base-url", "http://h")).returncode == 0
    assert (await cli(env, "backends", "delete", spare)).returncode == 0
    assert (await cli(env, "backends", "show", spare)).returncode == 2
    entries = await _audit(gateway, name)
    assert [e.action for e in entries] == ["backend.create", "backend.update"]
    assert entries[0].source == "cli" and entries[0].actor.startswith("cli:")


async def test_new_key_prints_a_fernet_key(tmp_path: Path) -> None:
    ran = await cli({**os.environ, "GATEWAY_DATA_DIR": str(tmp_path)}, "credentials", "new-key")
    assert ran.returncode == 0
    Fernet(ran.stdout.strip().encode())  # a valid key


async def test_re_encrypt_moves_every_secret_onto_the_new_key(tmp_path: Path) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    secret = _secret("rotated")
    async with running_gateway("embedded", tmp_path, encryption_keys=old) as first, first.http() as http:
        body = {"name": "rotated", "kind": "openai", "base_url": first.upstream.base_url, "secret": secret}
        assert (await http.post("/admin/backends", headers=ADMIN, json=body)).status_code == 201
        model = await _served_model(http, "rotated")
        key = await first.create_key("rotation")
        assert await _authorization_sent(first, key, model) == f"Bearer {secret}"
        env = cli_env(first, f"{new},{old}")
    moved = await cli(env, "credentials", "re-encrypt")
    assert moved.returncode == 0, moved.stderr
    assert moved.stdout.strip() == "1" and secret not in moved.stdout + moved.stderr
    async with running_gateway("embedded", tmp_path, encryption_keys=new) as second, second.http() as http:
        row = await _row(second, "rotated")
        assert row is not None and row.secret_encrypted
        assert Fernet(new.encode()).decrypt(row.secret_encrypted.encode()).decode() == secret
        with pytest.raises(InvalidToken):
            Fernet(old.encode()).decrypt(row.secret_encrypted.encode())
        # The new key alone serves it: point the backend at this run's fake upstream, keeping its secret.
        moved_url = {"base_url": second.upstream.base_url}
        assert (await http.patch("/admin/backends/rotated", headers=ADMIN, json=moved_url)).status_code == 200
        assert await _authorization_sent(second, key, model) == f"Bearer {secret}"
        entries = await _audit(second, "rotated")
    assert [e.action for e in entries] == ["backend.create", "backend.re-encrypt", "backend.update"]
    assert entries[1].source == "cli" and secret not in str(entries[1].before) + str(entries[1].after)
    again = await cli(cli_env(second, new), "credentials", "re-encrypt")
    assert again.returncode == 0 and again.stdout.strip() == "1"
    lost = await cli(cli_env(second, Fernet.generate_key().decode()), "credentials", "re-encrypt")
    assert lost.returncode == 2 and "rotated" in lost.stderr and secret not in lost.stderr
    keyless = await cli(cli_env(second, ""), "credentials", "re-encrypt")
    assert keyless.returncode == 2 and "GATEWAY_ENCRYPTION_KEYS" in keyless.stderr
    async with running_gateway("embedded", tmp_path, encryption_keys=old) as third:
        # The old key alone opens it no more: its requests fail saying so, without the secret.
        with pytest.raises(openai.APIStatusError) as failed:
            await third.openai(key).chat.completions.create(model=model, messages=PROMPT)
    assert failed.value.status_code == 502 and "rotated" in str(failed.value) and secret not in str(failed.value)


async def test_a_backend_the_models_file_comes_to_declare_is_handed_to_the_file(tmp_path: Path) -> None:
    secret = _secret("handed")
    async with running_gateway("embedded", tmp_path) as gateway, gateway.http() as http:
        body = {"name": "handed", "kind": "openai", "base_url": gateway.upstream.base_url, "secret": secret}
        assert (await http.post("/admin/backends", headers=ADMIN, json=body)).status_code == 201
        models_file = Path(gateway.runtime.settings.models_file)
        declared = models_file.read_text().replace(
            "\nbackends:\n", f"\nbackends:\n  handed:\n    kind: openai\n    base_url: {gateway.upstream.base_url}\n"
        )
        (tmp_path / "declares.yaml").write_text(declared)
        synced = await cli(cli_env(gateway), "models", "sync", str(tmp_path / "declares.yaml"))
        assert synced.returncode == 0 and "update backend handed" in synced.stdout, synced.stderr
        shown = (await http.get("/admin/backends/handed", headers=ADMIN)).json()
        assert shown["source"] == "file" and shown["secret"] is None
        refused = await http.patch("/admin/backends/handed", headers=ADMIN, json={"secret": secret})
        assert refused.status_code == 409 and "models file" in refused.json()["error"]["message"]
        entries = await _audit(gateway, "handed")
    assert [(e.action, e.source) for e in entries] == [("backend.create", "api"), ("backend.update", "cli")]
    assert entries[1].before is not None and entries[1].before["source"] == "api"
    assert entries[1].after is not None and entries[1].after["source"] == "file" and entries[1].after["secret"] is None
