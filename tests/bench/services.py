"""The processes a benchmark run owns: fake upstream, gateway, load generators; CPU pinning;
the PostgreSQL database; memory readings from ``/proc``."""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

LOOPBACK = "127.0.0.1"
STOP_GRACE_SECONDS = 5.0


# -- CPU pinning -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Pinning:
    """Which CPUs the gateway and the load side (fake upstream, wrk, load generator) may use."""

    gateway: frozenset[int] | None
    load: frozenset[int] | None
    note: str

    @classmethod
    def choose(cls, enabled: bool, workers: int) -> Pinning:
        cpus = sorted(os.sched_getaffinity(0))
        if not enabled:
            return cls(None, None, "not pinned (--no-pin)")
        if len(cpus) < 2:
            return cls(None, None, "not pinned (fewer than 2 CPUs available)")
        load, gateway = frozenset(cpus[-1:]), frozenset(cpus[:-1])
        note = ""
        if workers > len(gateway):
            gateway = frozenset(cpus)
            note = f"; {workers} workers > {len(cpus) - 1} spare CPU(s), so the gateway may use every CPU"
        return cls(
            gateway,
            load,
            f"gateway on CPU {_cpus(gateway)}; fake upstream, wrk and load generator on CPU {_cpus(load)}"
            f"{note}; PostgreSQL and Redis not pinned",
        )

    def for_gateway(self) -> Callable[[], None] | None:
        return _affinity(self.gateway)

    def for_load(self) -> Callable[[], None] | None:
        return _affinity(self.load)


def _cpus(cpus: Iterable[int]) -> str:
    return ",".join(str(c) for c in sorted(cpus))


def _affinity(cpus: frozenset[int] | None) -> Callable[[], None] | None:
    if cpus is None:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


# -- processes -------------------------------------------------------------------------------------


class Processes:
    """Starts long-running children in their own process groups and stops every one of them."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def start(
        self,
        name: str,
        command: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        preexec: Callable[[], None] | None = None,
        cwd: Path | None = None,
    ) -> subprocess.Popen[bytes]:
        with self.log(name).open("wb") as log:
            proc = subprocess.Popen(
                list(command),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=cwd,
                preexec_fn=preexec,
                start_new_session=True,  # its own process group: uvicorn workers are stopped with it
            )
        self.running[name] = proc
        return proc

    def log(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def stop(self, name: str) -> None:
        proc = self.running.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            proc.wait(STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait(STOP_GRACE_SECONDS)
        _signal_group(proc.pid, signal.SIGKILL)  # stragglers left in the group, if any

    def stop_all(self) -> None:
        for name in list(self.running):
            self.stop(name)

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc: object) -> None:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut cleanup short
        try:
            self.stop_all()
        finally:
            signal.signal(signal.SIGINT, previous)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def _exited(proc: subprocess.Popen[bytes], log: Path) -> RuntimeError:
    return RuntimeError(f"{log.stem} exited with status {proc.returncode}:\n{tail(log)}")


def wait_for_log_line(proc: subprocess.Popen[bytes], log: Path, pattern: str, timeout: float = 20.0) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = re.search(pattern, log.read_text(errors="replace"))
        if match:
            return match
        if proc.poll() is not None:
            raise _exited(proc, log)
        time.sleep(0.05)
    raise RuntimeError(f"{log.stem} did not print {pattern!r} within {timeout:.0f}s:\n{tail(log)}")


def http_get(port: int, path: str, timeout: float = 2.0) -> tuple[int, str]:
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        conn.close()


def wait_for_http(proc: subprocess.Popen[bytes], log: Path, port: int, path: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise _exited(proc, log)
        with contextlib.suppress(OSError, http.client.HTTPException):
            if http_get(port, path)[0] == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"GET {path} on port {port} not 200 within {timeout:.0f}s:\n{tail(log)}")


def start_fake_upstream(procs: Processes, pinning: Pinning) -> int:
    proc = procs.start(
        "fake-upstream",
        [
            sys.executable,
            "-m",
            "fakes.fake_upstream",
            "--host",
            LOOPBACK,
            "--port",
            "0",
            "--no-record",
        ],
        preexec=pinning.for_load(),
        cwd=Path(__file__).resolve().parents[1],  # tests/, where the package `fakes` lives
    )
    match = wait_for_log_line(proc, procs.log("fake-upstream"), r"fake-upstream listening on http://[\d.]+:(\d+)")
    return int(match.group(1))


# -- gateway ---------------------------------------------------------------------------------------


def gateway_command() -> list[str]:
    script = Path(sys.executable).parent / "gateway"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from gateway.cli import main; main()"]


def gateway_env(settings: dict[str, str]) -> dict[str, str]:
    """The caller's environment without its GATEWAY_* variables, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update({f"GATEWAY_{name.upper()}": value for name, value in settings.items()})
    return env


def gateway_cli(args: Sequence[str], env: dict[str, str]) -> str:
    command = [*gateway_command(), *args]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"`gateway {' '.join(args)}` exited {done.returncode}:\n{done.stdout}{done.stderr}")
    return done.stdout


# -- PostgreSQL ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Postgres:
    """Administration over the Unix socket; the gateway connects over TCP with a password."""

    socket_dir: str
    superuser: str
    database: str
    role: str = "gateway_bench"
    password: str = "gateway_bench"
    port: int = 5432

    def psql(self, *statements: str, database: str = "postgres") -> str:
        command = ["psql", "-h", self.socket_dir, "-p", str(self.port), "-U", self.superuser, "-d", database]
        command += ["-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1"]
        for statement in statements:
            command += ["-c", statement]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr}")
        return done.stdout.strip()

    def recreate(self) -> None:
        self.psql(
            f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{self.role}') "
            f"THEN CREATE ROLE {self.role}; END IF; END $$",
            f"ALTER ROLE {self.role} LOGIN PASSWORD '{self.password}'",
            f"DROP DATABASE IF EXISTS {self.database} WITH (FORCE)",
            f"CREATE DATABASE {self.database} OWNER {self.role}",
        )

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://{self.role}:{self.password}@{LOOPBACK}:{self.port}/{self.database}"

    def count(self, table: str) -> int:
        return int(self.psql(f"SELECT count(*) FROM {table}", database=self.database))


# -- memory ----------------------------------------------------------------------------------------


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants (uvicorn's worker processes), from /proc/*/stat."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rpartition(")")[2].split()
            parents[int(stat.parent.name)] = int(fields[1])
    tree, frontier = [root], [root]
    while frontier:
        children = [pid for pid, parent in parents.items() if parent in frontier]
        tree += children
        frontier = children
    return tree


def cpu_seconds(pids: Iterable[int]) -> float:
    """User plus system CPU time consumed so far by ``pids`` (/proc/<pid>/stat utime, stime)."""
    ticks = 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def memory_kib(pid: int, field: str) -> int:
    """A ``kB`` field (VmRSS, VmHWM) of /proc/<pid>/status; 0 if the process is gone."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0
