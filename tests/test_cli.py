"""The CLI against a running gateway's database: what it prints, and what it refuses."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from harness import Gateway
from leaks import WATCH


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
    WATCH.output(f"gateway {' '.join(args)[:80]}", stdout.decode() + stderr.decode())
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


def test_quotas_list_prints_a_table_of_file_and_stored_limits(tmp_path: Path) -> None:
    quotas_file = tmp_path / "quotas.yaml"
    quotas_file.write_text("limits:\n  - {scope: org, name: acme, budget: {micro_usd: 50000000, period: month}}\n")
    env = {**os.environ, "GATEWAY_DATA_DIR": str(tmp_path / "data"), "GATEWAY_QUOTAS_FILE": str(quotas_file)}

    def cli(*args: str) -> str:
        ran = subprocess.run([sys.executable, "-m", "gateway", *args], env=env, capture_output=True, text=True)
        assert ran.returncode == 0, ran.stderr
        return ran.stdout

    target = ["--scope", "team", "--name", "ml", "--model", "chat-model"]
    printed = cli("quotas", "set", *target, "--tokens-per-minute", "1000", "--concurrent-requests", "4")
    limit_id = printed.split()[2].rstrip(":")
    header, *rows = cli("quotas", "list").splitlines()
    assert header.split() == ["scope", "name", "model", "limits", "source/id"]
    assert rows[0].split() == ["org", "acme", "(any)", "budget=$50.00/month", "file"]
    assert rows[1].split() == ["team", "ml", "chat-model", "tokens_per_minute=1000", "concurrent_requests=4", limit_id]
