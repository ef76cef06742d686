"""The CLI against a running gateway's database: what it prints, and what it refuses."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from harness import Gateway


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


async def _cli(env: dict[str, str], *args: str) -> Ran:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await process.communicate()
    assert process.returncode is not None
    return Ran(process.returncode, stdout.decode(), stderr.decode())


def _env(gateway: Gateway) -> dict[str, str]:
    """The CLI's settings pointing at the running gateway's database (and Redis)."""
    settings = gateway.runtime.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env |= {"GATEWAY_DATA_DIR": settings.data_dir, "GATEWAY_DATABASE_URL": settings.database_url}
    if settings.redis_url:
        env["GATEWAY_REDIS_URL"] = settings.redis_url
    return env


async def test_keys_create_refuses_models_the_gateway_does_not_serve(gateway: Gateway) -> None:
    env = _env(gateway)
    refused = await _cli(env, "keys", "create", "--name", "typo", "--models", "chat-model,nosuchmodel")
    assert refused.returncode == 2 and "'nosuchmodel'" in refused.stderr and "'chat-model'" not in refused.stderr
    created = await _cli(env, "keys", "create", "--name", "served", "--models", "chat-model")
    assert created.returncode == 0, created.stderr
    assert created.stdout.startswith("sk-gw-")


def _with_reader_gone(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run with stdout a pipe whose reader has closed already, as `gateway ... | head` ends up."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [sys.executable, "-m", "gateway", *args],
            env=env,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)


def test_printing_commands_end_quietly_when_the_reader_goes(tmp_path: Path) -> None:
    env = {**os.environ, "GATEWAY_DATA_DIR": str(tmp_path / "data")}
    assert (
        subprocess.run(
            [sys.executable, "-m", "gateway", "keys", "create", "--name", "k"],
            env=env,
            check=False,
            capture_output=True,
        ).returncode
        == 0
    )
    for args in (["settings"], ["keys", "list"], ["quotas", "list"], ["migrate"]):
        ran = _with_reader_gone(env, *args)
        assert ran.returncode in (0, 141) and ran.stderr == "", (args, ran.returncode, ran.stderr)
