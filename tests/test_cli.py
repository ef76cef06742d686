"""The CLI against a running gateway's database: what it prints, and what it refuses."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass

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
