"""Start-up failures of the real commands: one clear line on stderr, a non-zero exit, no password.

Each case runs the `gateway` command (or uvicorn on the ASGI factory) as a process, the way an
operator would, and reads what it prints.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from harness import POSTGRES_URL, models_yaml
from sqlalchemy.engine import make_url

PASSWORD = "s3cret-pw-do-not-print"


@dataclass
class Ended:
    returncode: int
    stderr: str

    @property
    def lines(self) -> list[str]:
        return self.stderr.strip().splitlines()


def _env(tmp_path: Path, **settings: str) -> dict[str, str]:
    """The caller's environment without its GATEWAY_* variables, plus a models file and ``settings``."""
    models = tmp_path / "models.yaml"
    models.write_text(models_yaml("http://127.0.0.1:9/v1"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    return env | {
        "GATEWAY_DATA_DIR": str(tmp_path / "data"),
        "GATEWAY_MODELS_FILE": str(models),
        "GATEWAY_QUOTAS_FILE": str(tmp_path / "no-quotas.yaml"),
        "GATEWAY_PORT": str(_free_port()),
        **{f"GATEWAY_{name.upper()}": value for name, value in settings.items()},
    }


async def _run(env: dict[str, str], *args: str, program: tuple[str, ...] = ("-m", "gateway")) -> Ended:
    process = await asyncio.create_subprocess_exec(
        sys.executable, *program, *args, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    # A safety net against a server that wrongly starts; the cases below all end on their own.
    try:
        _, stderr = await asyncio.wait_for(process.communicate(), 90)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError("the command did not end: it should have refused to start") from None
    assert process.returncode is not None
    return Ended(process.returncode, stderr.decode())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _assert_one_line(ended: Ended, *needles: str) -> None:
    assert ended.returncode != 0, ended.stderr
    assert len(ended.lines) == 1, ended.stderr
    assert "Traceback" not in ended.stderr
    assert PASSWORD not in ended.stderr
    for needle in needles:
        assert needle in ended.stderr, ended.stderr


@pytest.mark.parametrize(
    ("url", "advice"),
    [
        (f"postgres://u:{PASSWORD}@db/gateway", "postgresql+asyncpg://"),
        (f"postgresql://u:{PASSWORD}@db/gateway", "postgresql+asyncpg://"),
        (f"postgresql+psycopg2://u:{PASSWORD}@db/gateway", "postgresql+asyncpg://"),
        (f"mysql://u:{PASSWORD}@db/gateway", "postgresql+asyncpg://"),
        ("sqlite:///gateway.db", "sqlite+aiosqlite://"),
        ("garbage", "postgresql+asyncpg://"),
        (f"postgresql+asyncpg://u:{PASSWORD}@db:port/gateway", "port"),
    ],
)
async def test_a_malformed_database_url_is_refused_when_settings_load(tmp_path: Path, url: str, advice: str) -> None:
    ended = await _run(_env(tmp_path, database_url=url), "settings")
    _assert_one_line(ended, "GATEWAY_DATABASE_URL", advice)


@pytest.mark.parametrize("command", [("migrate",), ("keys", "list"), ("serve",)])
async def test_every_command_refuses_a_postgres_scheme_url(tmp_path: Path, command: tuple[str, ...]) -> None:
    ended = await _run(_env(tmp_path, database_url=f"postgres://u:{PASSWORD}@db/gateway"), *command)
    _assert_one_line(ended, "GATEWAY_DATABASE_URL", "postgresql+asyncpg://")


def _unreachable(kind: str) -> str:
    url = make_url(POSTGRES_URL).set(password=PASSWORD)
    if kind == "nothing listening":
        url = url.set(host="127.0.0.1", port=_free_port())
    else:
        url = url.set(database="gateway_no_such_database")
    return url.render_as_string(hide_password=False)


@pytest.mark.parametrize("kind", ["nothing listening", "unknown database"])
@pytest.mark.parametrize(
    ("command", "auto_migrate"),
    [(("migrate",), "false"), (("keys", "list"), "true"), (("serve",), "false"), (("serve",), "true")],
)
async def test_an_unreachable_database_is_one_line(
    tmp_path: Path, kind: str, command: tuple[str, ...], auto_migrate: str
) -> None:
    env = _env(tmp_path, database_url=_unreachable(kind), auto_migrate=auto_migrate)
    ended = await _run(env, *command)
    _assert_one_line(ended, "GATEWAY_DATABASE_URL", "***")
    if kind == "unknown database":
        assert "gateway_no_such_database" in ended.stderr


async def test_serve_reports_a_bad_quotas_file_in_one_line(tmp_path: Path) -> None:
    env = _env(tmp_path)
    (tmp_path / "quotas.yaml").write_text("limits: 5\n")
    env["GATEWAY_QUOTAS_FILE"] = str(tmp_path / "quotas.yaml")
    ended = await _run(env, "serve", "--workers", "2")
    _assert_one_line(ended, "quotas.yaml")


async def test_the_asgi_factory_reports_a_start_up_error_without_a_traceback(tmp_path: Path) -> None:
    # uvicorn on the factory skips the CLI's own checks: the app's start-up itself must say it plainly.
    env = _env(tmp_path)
    (tmp_path / "quotas.yaml").write_text("limits: 5\n")
    env["GATEWAY_QUOTAS_FILE"] = str(tmp_path / "quotas.yaml")
    program = ("-m", "uvicorn", "--factory", "gateway.app:create_app_from_env", "--port", env["GATEWAY_PORT"])
    ended = await _run(env, program=program)
    assert ended.returncode != 0
    assert "Traceback" not in ended.stderr
    assert [line for line in ended.lines if "quotas.yaml" in line], ended.stderr


async def test_an_unknown_gateway_variable_is_refused_with_the_closest_name(tmp_path: Path) -> None:
    env = _env(tmp_path)
    env["GATEWAY_MODLES_FILE"] = env.pop("GATEWAY_MODELS_FILE")
    for command in (("settings",), ("serve",)):
        ended = await _run(env, *command)
        _assert_one_line(ended, "GATEWAY_MODLES_FILE", "GATEWAY_MODELS_FILE")


async def test_variables_reserved_for_test_suites_are_not_refused(tmp_path: Path) -> None:
    env = _env(tmp_path) | {"GATEWAY_TEST_DATABASE_URL": "anything", "GATEWAY_TEST_UPSTREAM_KEY": "k"}
    ended = await _run(env, "settings")
    assert ended.returncode == 0, ended.stderr
