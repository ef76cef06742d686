"""The real entry points: `gateway serve` as a process, health, readiness, the OpenAPI schema,
and the promise that the request path asks SQL nothing while keys are cached."""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
import sys
import time
from pathlib import Path

import httpx
import openai
from fakes.fake_upstream import FakeUpstream
from harness import KEY_CACHE_TTL, Gateway, models_yaml
from sqlalchemy import event


async def test_health_readiness_and_schema(gateway: Gateway) -> None:
    async with gateway.http() as http:
        health = await http.get("/healthz")
        ready = await http.get("/readyz")
        schema = await http.get("/schema/openapi.json")
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    assert ready.status_code == 200
    expected = {"database": "ok"} | ({"redis": "ok"} if gateway.mode == "postgres" else {})
    assert ready.json()["checks"] == expected
    assert "/v1/chat/completions" in schema.json()["paths"]


async def test_request_path_asks_sql_nothing_while_the_key_is_cached(gateway: Gateway) -> None:
    loop = asyncio.get_running_loop()
    warmed = loop.time()  # the key's cache entry is no older than this
    # A key of its own: the suite's shared key may have been cached by an earlier test, up to a
    # TTL ago, and expire a moment into this one, which the bound below would not allow for.
    client = gateway.openai(await gateway.create_key("sql-free"))
    await client.chat.completions.create(model="chat-model", messages=[{"role": "user", "content": "warm"}])
    await gateway.runtime.ledger.flush()
    statements: list[str] = []
    # SQLAlchemy's async engine runs the driver in the calling task: its name says who asked.
    background = {"usage-writer", "snapshot-refresh"}

    def seen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        task = asyncio.current_task()
        if task is None or task.get_name() not in background:
            statements.append(statement)

    event.listen(gateway.runtime.engine.sync_engine, "before_cursor_execute", seen)
    try:
        for _ in range(5):
            await client.chat.completions.create(model="chat-model", messages=[{"role": "user", "content": "hi"}])
            await client.embeddings.create(model="embed-model", input="hi")
    finally:
        event.remove(gateway.runtime.engine.sync_engine, "before_cursor_execute", seen)
    # The batched writer and the snapshot refresher read and write SQL beside requests, in tasks of
    # their own. In a request, only a key-cache miss may touch SQL, and only once the cached entry
    # is older than the TTL (a slow machine can take that long).
    key_lookups = [s for s in statements if "FROM api_keys" in s]
    assert statements == key_lookups
    assert len(key_lookups) <= int((loop.time() - warmed) / KEY_CACHE_TTL)


async def test_gateway_serve_runs_the_readme_command(tmp_path: Path) -> None:
    async with FakeUpstream() as upstream:
        (tmp_path / "models.yaml").write_text(models_yaml(upstream.base_url))
        env = {
            **os.environ,
            "GATEWAY_DATA_DIR": str(tmp_path / "data"),
            "GATEWAY_MODELS_FILE": str(tmp_path / "models.yaml"),
        }
        created = await _run(env, "keys", "create", "--name", "serve-test")
        secret = created.splitlines()[0]
        server, base = await _serve(env, tmp_path, secret)
        try:
            client = openai.AsyncOpenAI(
                base_url=base + "/v1", api_key=secret, max_retries=0, http_client=openai.DefaultAsyncHttpxClient()
            )
            reply = await client.chat.completions.create(
                model="chat-model", messages=[{"role": "user", "content": "hello"}]
            )
            assert reply.usage is not None and reply.usage.completion_tokens == 7
        finally:
            server.terminate()
            # uvicorn shuts down gracefully, then re-raises SIGTERM to report how it ended.
            assert await asyncio.wait_for(server.wait(), 120) in (0, -15)
    # The usage record was flushed at shutdown.
    with sqlite3.connect(tmp_path / "data" / "gateway.db") as db:
        assert db.execute("SELECT count(*), max(completion_tokens) FROM usage_records").fetchone() == (1, 7)


async def _run(env: dict[str, str], *args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", *args, env=env, stdout=asyncio.subprocess.PIPE
    )
    stdout, _ = await process.communicate()
    assert process.returncode == 0
    return stdout.decode()


async def _serve(env: dict[str, str], cwd: Path, secret: str) -> tuple[asyncio.subprocess.Process, str]:
    """``gateway serve`` on a free port, once it answers our key. The port is free when picked but
    may be taken before the server binds it (other processes share the machine): a server that
    exits before answering is started again on another port."""
    for _ in range(5):
        port = _free_port()
        server = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway", "serve", "--port", str(port), env=env, cwd=cwd
        )
        base = f"http://127.0.0.1:{port}"
        if await _answers(base, secret, server):
            return server, base
    raise AssertionError("gateway serve exited before answering, five times")


async def _answers(base: str, secret: str, server: asyncio.subprocess.Process) -> bool:
    """Whether the server comes to answer our key (a process listening on a taken port would not
    know it), or False once it has exited. The deadline only bounds a server that hangs."""
    deadline = time.monotonic() + 180
    async with httpx.AsyncClient(headers={"authorization": f"Bearer {secret}"}) as http:
        while server.returncode is None:
            try:
                if (await http.get(base + "/v1/models")).status_code == 200:
                    return True
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                server.kill()
                raise AssertionError("gateway serve did not start answering")
            await asyncio.sleep(0.05)
    return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
