"""No backend secret ever comes back out: distinctive secrets are set through the admin API, the
CLI and ``env:`` references, then used by every backend operation, good and bad, by requests
through the models on those backends (answered and failing), and by the CLI; every HTTP response
(body and headers), every log record (DEBUG and up), everything the gateway wrote to stdout and
stderr (in this process, and a ``gateway serve`` process at DEBUG), every error and every audit
entry is searched for each secret. The upstream did get them: the secrets were used, not lost."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from fakes.fake_upstream import FakeUpstream
from harness import ADMIN_KEY, ENCRYPTION_KEY, Gateway, models_yaml
from sqlalchemy import select
from test_backends_admin import cli, cli_env
from test_serve import _answers, _free_port

from gateway.db.models import AuditEntry, Backend

ADMIN = {"authorization": f"Bearer {ADMIN_KEY}"}
PROMPT = [{"role": "user", "content": "hi"}]


def _secret(tag: str) -> str:
    return f"sk-leak{tag}-{uuid.uuid4().hex}{uuid.uuid4().hex[:8]}"


class Seen:
    """Everything that came out, as text to search."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def add(self, where: str, text: str) -> None:
        self.texts.append(f"--- {where}\n{text}")

    async def response(self, response: httpx.Response) -> None:
        await response.aread()
        self.add(f"{response.request.method} {response.request.url}", f"{response.headers}\n{response.text}")

    def client(self, base_url: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=base_url, timeout=30, event_hooks={"response": [self.response]})

    def assert_none_of(self, secrets: dict[str, str]) -> None:
        everything = "\n".join(self.texts)
        assert len(everything) > 10_000  # there was plenty to search
        for name, secret in secrets.items():
            for part in (secret, secret[:-4], secret[4:]):  # whole, or all but the hint
                assert part not in everything, f"the {name} secret leaked: {_around(everything, part)}"


def _around(text: str, part: str) -> str:
    at = text.index(part)
    return text[max(0, at - 300) : at + len(part) + 100]


async def _model(http: httpx.AsyncClient, backend: str, upstream_model: str) -> str:
    name = f"leak-{uuid.uuid4().hex[:8]}"
    assert (await http.post("/admin/models", headers=ADMIN, json={"name": name})).status_code == 201
    spec = {"backend": backend, "upstream_model": upstream_model, "prices": {"input": 1, "output": 1}}
    assert (await http.post(f"/admin/models/{name}/versions", headers=ADMIN, json=spec)).status_code == 201
    promoted = await http.post(f"/admin/models/{name}/versions/1/promote", headers=ADMIN, json={"to": "active"})
    assert promoted.status_code == 200, promoted.text
    return name


async def _chat(seen: Seen, client: openai.AsyncOpenAI, model: str, **extra: Any) -> None:
    try:
        if extra.pop("stream", False):
            async for _ in await client.chat.completions.create(model=model, messages=PROMPT, stream=True):
                pass
        else:
            await client.chat.completions.create(model=model, messages=PROMPT, **extra)
    except openai.APIError as exc:
        seen.add(f"error of {model}", f"{type(exc).__name__}: {exc}\n{exc.body}")


async def test_no_backend_secret_appears_in_any_response_log_error_or_audit_entry(
    gateway: Gateway,
    key: str,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    for noisy in ("httpx", "httpcore", "gateway", "sqlalchemy.engine"):
        caplog.set_level(logging.DEBUG, logger=noisy)
    secrets = {name: _secret(name) for name in ("api", "updated", "env", "stdin", "cliEnv", "misplaced", "bad")}
    monkeypatch.setenv("GATEWAY_TEST_LEAK_KEY", secrets["env"])
    seen, api, by_env, cli_made = Seen(), f"leak-api-{uuid.uuid4().hex[:6]}", f"leak-env-{uuid.uuid4().hex[:6]}", ""
    upstream = gateway.upstream.base_url
    async with seen.client(gateway.base_url) as http:
        body = {"name": api, "kind": "openai", "base_url": upstream, "secret": secrets["api"], "timeout_seconds": 5}
        assert (await http.post("/admin/backends", headers=ADMIN, json=body)).status_code == 201
        assert (await http.post("/admin/backends", headers=ADMIN, json=body)).status_code == 409
        env_body = {
            "name": by_env,
            "kind": "openai",
            "base_url": upstream,
            "credential_ref": "env:GATEWAY_TEST_LEAK_KEY",
        }
        assert (await http.post("/admin/backends", headers=ADMIN, json=env_body)).status_code == 201
        for bad in (
            {"credential_ref": secrets["misplaced"]},  # a secret pasted into the wrong field
            {"base_url": f"ftp://example.com/{secrets['misplaced']}"},
            {"base_url": f"https://{secrets['misplaced']}@example.com/v1"},
            {"secret": secrets["bad"] + " \n"},
            {"secret": secrets["bad"], "credential_ref": "env:X"},
            {"secret": secrets["bad"], "kind": "openia"},
            {"secret": secrets["bad"], "kind": "azure", "entra": {"tenant_id": "t", "client_id": "c"}},
            {"secret": [secrets["bad"]]},
            {"secret": {"value": secrets["bad"]}},
        ):
            refused = await http.post("/admin/backends", headers=ADMIN, json=body | {"name": "leak-bad"} | bad)
            assert refused.status_code == 400, refused.text
        raw = json.dumps(body | {"name": "leak-raw"})[:-1] + f', "secret": "{secrets["bad"]}'  # truncated JSON
        malformed = await http.post(
            "/admin/backends", headers=ADMIN | {"content-type": "application/json"}, content=raw
        )
        assert malformed.status_code == 400
        models = {
            "api": await _model(http, api, "fake-tokens-12-7"),
            "env": await _model(http, by_env, "fake-tokens-12-7"),
            "refused": await _model(http, api, "fake-error-401"),
            "failing": await _model(http, api, "fake-error-500"),
        }
        client = gateway.openai(
            key, http_client=openai.DefaultAsyncHttpxClient(event_hooks={"response": [seen.response]})
        )
        for model in models.values():
            await _chat(seen, client, model)
        await _chat(seen, client, models["api"], stream=True)
        patched = await http.patch(f"/admin/backends/{api}", headers=ADMIN, json={"secret": secrets["updated"]})
        assert patched.status_code == 200
        refused = await http.patch(f"/admin/backends/{api}", headers=ADMIN, json={"secret": secrets["bad"] + "\t"})
        assert refused.status_code == 400
        await _chat(seen, client, models["api"])
        for path in ("/admin/backends", f"/admin/backends/{api}", f"/admin/backends/{by_env}", "/admin/models"):
            assert (await http.get(path, headers=ADMIN)).status_code == 200
        await http.get("/admin/audit", headers=ADMIN)  # where the audit log is served (once it is)

        env = cli_env(gateway) | {"LEAK_CLI_KEY": secrets["cliEnv"]}
        cli_made = f"leak-cli-{uuid.uuid4().hex[:6]}"
        runs = [
            await cli(
                env,
                "backends",
                "create",
                cli_made,
                "--kind",
                "openai",
                "--base-url",
                upstream,
                "--secret-stdin",
                stdin=secrets["stdin"],
            ),
            await cli(
                env,
                "backends",
                "create",
                "leak-cli-bad",
                "--kind",
                "openai",
                "--base-url",
                upstream,
                "--secret-stdin",
                stdin=secrets["bad"] + "\x07",
            ),
            await cli(env, "backends", "show", cli_made),
            await cli(env, "backends", "list"),
            await cli(env, "backends", "update", cli_made, "--secret-env", "LEAK_CLI_KEY"),
            await cli(env, "backends", "update", cli_made, "--base-url", "nope"),
            await cli(env, "models", "export"),
            await cli(cli_env(gateway, "not-a-key"), "backends", "show", cli_made),
        ]
        assert runs[0].returncode == 0 and runs[1].returncode == 2 and runs[4].returncode == 0
        for number, ran in enumerate(runs):
            seen.add(f"cli run {number} ({ran.returncode})", ran.stdout + ran.stderr)
        cli_model = await _model(http, cli_made, "fake-tokens-12-7")
        await _chat(seen, client, cli_model)

    sent = {r.headers.get("authorization") for r in gateway.upstream.requests}
    for used in ("api", "updated", "env", "cliEnv"):  # they were used, so the search means something
        assert f"Bearer {secrets[used]}" in sent, used
    async with gateway.runtime.sessions() as session:
        for entry in (await session.scalars(select(AuditEntry))).all():
            seen.add(f"audit {entry.id}", json.dumps([entry.object_name, entry.before, entry.after], default=str))
        for row in (await session.scalars(select(Backend))).all():
            seen.add(f"backend row {row.name}", f"{row.credential_ref} {row.secret_hint} {row.settings}")
            assert len(row.secret_hint or "") <= 4
    for record in caplog.records:
        seen.add(f"log {record.name}", record.getMessage() + (record.exc_text or "") + str(record.args))
    captured = capfd.readouterr()
    seen.add("stdout and stderr", captured.out + captured.err)
    seen.assert_none_of(secrets)


async def test_a_gateway_serve_process_at_debug_logs_no_backend_secret(tmp_path: Path) -> None:
    first, second = _secret("serve"), _secret("serveUpdated")
    async with FakeUpstream() as upstream:
        (tmp_path / "models.yaml").write_text(models_yaml(upstream.base_url))
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")} | {
            "GATEWAY_DATA_DIR": str(tmp_path / "data"),
            "GATEWAY_MODELS_FILE": str(tmp_path / "models.yaml"),
            "GATEWAY_ENCRYPTION_KEYS": ENCRYPTION_KEY,
            "GATEWAY_LOG_LEVEL": "DEBUG",
            "GATEWAY_CHANGE_CHECK_SECONDS": "0.2",
        }
        made = [
            await cli(
                env,
                "backends",
                "create",
                "served",
                "--kind",
                "openai",
                "--base-url",
                upstream.base_url,
                "--secret-stdin",
                stdin=first,
            ),
            await cli(env, "models", "create", "served-model"),
        ]
        (tmp_path / "version.yaml").write_text("backend: served\nupstream_model: fake-tokens-12-7\n")
        made += [
            await cli(env, "models", "version", "served-model", str(tmp_path / "version.yaml")),
            await cli(env, "models", "promote", "served-model", "1"),
            await cli(env, "keys", "create", "--name", "leak-serve"),
        ]
        assert all(ran.returncode == 0 for ran in made), [ran.stderr for ran in made]
        key = made[-1].stdout.splitlines()[0]
        log = tmp_path / "serve.log"
        server, base = await _serve_logging_to(log, env, tmp_path, key)
        try:
            client = openai.AsyncOpenAI(
                base_url=base + "/v1", api_key=key, max_retries=0, http_client=openai.DefaultAsyncHttpxClient()
            )
            await client.chat.completions.create(model="served-model", messages=PROMPT)
            updated = await cli(env, "backends", "update", "served", "--secret-stdin", stdin=second)
            assert updated.returncode == 0, updated.stderr
            for _ in range(200):  # the server's SQL check takes it up
                await client.chat.completions.create(model="served-model", messages=PROMPT)
                if upstream.requests[-1].headers.get("authorization") == f"Bearer {second}":
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the updated secret never reached the upstream")
        finally:
            server.terminate()
            await asyncio.wait_for(server.wait(), 120)
        assert upstream.requests[0].headers.get("authorization") == f"Bearer {first}"
    logged = log.read_text(errors="replace") + "".join(ran.stdout + ran.stderr for ran in [*made, updated])
    assert "DEBUG" in logged  # the server did log at DEBUG
    for secret in (first, second):
        assert secret not in logged and secret[4:] not in logged and secret[:-4] not in logged


async def _serve_logging_to(
    log: Path, env: dict[str, str], cwd: Path, key: str
) -> tuple[asyncio.subprocess.Process, str]:
    """``gateway serve`` as tests/test_serve.py starts it, its stderr going to ``log`` (a file, not
    a pipe: DEBUG logging would fill a pipe nobody reads meanwhile, and stall the server)."""
    for _ in range(5):
        port = _free_port()
        with log.open("ab") as stderr:
            server = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "gateway", "serve", "--port", str(port), env=env, cwd=cwd, stderr=stderr
            )
        base = f"http://127.0.0.1:{port}"
        if await _answers(base, key, server):
            return server, base
    raise AssertionError("gateway serve exited before answering, five times")
