"""Serve through a PostgreSQL outage under load (production mode), and count what happened.

One gateway (PostgreSQL through a TCP proxy this script cuts, Redis) with a short key-cache TTL,
so every key is past its TTL during the outage. Keys are created (some with the CLI before the
start, the rest through the admin API), each used once, some revoked; then a paced load of chat
completions runs before, during and after the cut. Checks: zero 503s for known keys, every
revoked-key request 401, and exactly one usage row per request id the clients were given.

Usage: python tests/bench/db_outage.py [--outage-seconds 30] [--json out.json] ...
See tests/bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import math
import os
import re
import secrets
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import redis
from outage_load import PHASES, Load, Outcome, check_ledger, checks, error_samples, phase_stats, render, send
from services import (
    LOOPBACK,
    Pinning,
    Postgres,
    Processes,
    free_port,
    gateway_cli,
    gateway_command,
    gateway_env,
    http_get,
    start_fake_upstream,
    tail,
    wait_for_http,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, where the package `fakes` lives
from fakes.tcp_proxy import TcpProxy

MODEL = "bench-model"
GATEWAY = "gateway"
LEDGER_POLL_SECONDS = 0.5


def progress(message: str) -> None:
    print(f"[outage {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass(slots=True)
class Setup:
    port: int
    admin_key: str
    data_dir: Path
    known: list[str]
    revoked: list[str]
    outcomes: list[Outcome]


# -- the gateway and its keys ----------------------------------------------------------------------


def write_models(path: Path, upstream_port: int) -> Path:
    path.write_text(
        f"backends:\n  fake:\n    kind: openai\n    base_url: http://{LOOPBACK}:{upstream_port}/v1\n"
        f"models:\n  {MODEL}:\n    backend: fake\n    upstream_model: {MODEL}\n"
        "    prices: {input: 150000, cached_input: 75000, output: 600000}\n"
    )
    return path


def settings(opts: argparse.Namespace, data_dir: Path, database_url: str) -> dict[str, str]:
    return gateway_env(
        {
            "database_url": database_url,
            "redis_url": opts.redis_url,
            "models_file": str(data_dir / "models.yaml"),
            "quotas_file": str(data_dir / "no-quotas.yaml"),  # no limits: the outage is what is measured
            "data_dir": str(data_dir),
            "log_level": opts.log_level,
            "auto_migrate": "false",
            "key_cache_ttl_seconds": str(opts.key_ttl),
        }
    )


async def start_gateway(
    opts: argparse.Namespace, procs: Processes, pg: Postgres, proxy: TcpProxy, upstream_port: int
) -> Setup:
    data_dir = procs.log_dir / GATEWAY
    data_dir.mkdir()
    write_models(data_dir / "models.yaml", upstream_port)
    direct = settings(opts, data_dir, pg.url)  # the CLI goes straight to PostgreSQL
    await asyncio.to_thread(gateway_cli, ["migrate"], direct)
    progress(f"{opts.cli_keys} keys with `gateway keys create` before the start (cached at start)")
    cli_keys = [
        (await asyncio.to_thread(gateway_cli, ["keys", "create", "--name", f"outage-cli-{i}"], direct)).split()[0]
        for i in range(opts.cli_keys)
    ]
    admin_key = secrets.token_urlsafe(24)
    env = settings(opts, data_dir, pg.url.replace(f":{pg.port}/", f":{proxy.port}/"))
    env["GATEWAY_ADMIN_KEY"] = admin_key
    port = free_port()
    command = [*gateway_command(), "serve", "--host", LOOPBACK, "--port", str(port), "--workers", "1"]
    proc = procs.start(GATEWAY, command, env=env, preexec=opts.pinning.for_gateway())
    await asyncio.to_thread(wait_for_http, proc, procs.log(GATEWAY), port, "/readyz")
    return Setup(port, admin_key, data_dir, cli_keys, [], [])


async def prepare_keys(opts: argparse.Namespace, setup: Setup) -> None:
    """All keys made and used once; the revoked ones revoked and refused once: all cached."""
    admin = {"authorization": f"Bearer {setup.admin_key}"}
    async with httpx.AsyncClient(base_url=f"http://{LOOPBACK}:{setup.port}", timeout=30) as client:
        progress(f"{opts.keys - opts.cli_keys} keys through the admin API")
        for i in range(opts.keys - opts.cli_keys):
            created = await client.post("/admin/keys", json={"name": f"outage-api-{i}"}, headers=admin)
            created.raise_for_status()
            setup.known.append(created.json()["key"])
        body = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}).encode()
        for key in setup.known:
            setup.outcomes.append(await send(client, key, body, "setup", revoked=False))
        step = max(1, len(setup.known) // max(1, opts.revoked))
        setup.revoked = setup.known[::step][: opts.revoked]  # from both the CLI's keys and the API's
        setup.known = [k for k in setup.known if k not in setup.revoked]
        for key in setup.revoked:
            (await client.post(f"/admin/keys/{key[:12]}/revoke", headers=admin)).raise_for_status()
            setup.outcomes.append(await send(client, key, body, "setup", revoked=True))
    unexpected = [o for o in setup.outcomes if o.error is not None]
    if unexpected:
        raise RuntimeError(f"before any load: {len(unexpected)} unexpected answers, first {unexpected[0]}")


# -- the run ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class Run:
    phase_seconds: dict[str, float]
    outcomes: list[Outcome]
    readyz_during: dict[str, Any]
    metrics: dict[str, float]
    rows: list[tuple[str, int]]
    caught_up_seconds: float
    spilled_lines: int
    log_retry_warnings: int
    log_errors: int
    log_tail: str


Driven = tuple[list[Outcome], dict[str, float], dict[str, Any]]
"""What the load saw, each phase's length, and /readyz in mid-outage."""


async def drive(opts: argparse.Namespace, setup: Setup, proxy: TcpProxy) -> Driven:
    total = opts.before_seconds + opts.outage_seconds + opts.after_seconds
    load = Load(
        f"http://{LOOPBACK}:{setup.port}",
        MODEL,
        setup.known,
        setup.revoked,
        rate=opts.rate,
        concurrency=opts.concurrency,
        revoked_every=opts.revoked_every,
        timeout=opts.request_timeout,
        max_requests=math.ceil(opts.rate * total),
    )
    seconds: dict[str, float] = {}
    runner = asyncio.create_task(load.run())
    started = time.monotonic()
    progress(f"load: {opts.rate:g} req/s over {opts.concurrency} clients; {opts.before_seconds:g}s before the cut")
    await asyncio.sleep(opts.before_seconds)
    load.phase = "outage"
    await proxy.cut()
    cut = time.monotonic()
    seconds["before"] = cut - started
    progress(f"PostgreSQL cut for {opts.outage_seconds:g}s")
    await asyncio.sleep(opts.outage_seconds / 2)
    readyz = await asyncio.to_thread(http_get, setup.port, "/readyz", 10.0)
    await asyncio.sleep(opts.outage_seconds / 2)
    await proxy.restore()
    load.phase = "after"
    restored = time.monotonic()
    seconds["outage"] = restored - cut
    progress(f"PostgreSQL back; {opts.after_seconds:g}s more load")
    await asyncio.sleep(opts.after_seconds)
    load.stop()
    await runner
    seconds["after"] = time.monotonic() - restored
    ready = {"status": readyz[0], "body": json.loads(readyz[1]) if readyz[1].startswith("{") else readyz[1]}
    return load.outcomes, seconds, ready


async def wait_for_ledger(opts: argparse.Namespace, pg: Postgres, expected: int) -> tuple[list[tuple[str, int]], float]:
    """Poll SQL until the writer has written a row per request id (or the wait runs out)."""
    started = time.monotonic()
    for _ in range(math.ceil(opts.ledger_wait / LEDGER_POLL_SECONDS)):
        if await asyncio.to_thread(pg.count, "usage_records") >= expected:
            break
        await asyncio.sleep(LEDGER_POLL_SECONDS)
    caught_up = time.monotonic() - started
    text = await asyncio.to_thread(pg.psql, "SELECT request_id, status_code FROM usage_records", database=pg.database)
    rows = [(line.split("|")[0], int(line.split("|")[1])) for line in text.splitlines() if line]
    return rows, caught_up


def read_metrics(port: int) -> dict[str, float]:
    status, text = http_get(port, "/metrics", 10.0)
    if status != 200:
        return {}
    values = (line.split() for line in text.splitlines() if line and not line.startswith("#"))
    return {parts[0]: float(parts[1]) for parts in values if len(parts) == 2}


async def outage(opts: argparse.Namespace, pg: Postgres, workdir: Path) -> Run:
    with Processes(workdir) as procs:
        progress("fake upstream; fresh database " + pg.database)
        upstream_port = await asyncio.to_thread(start_fake_upstream, procs, opts.pinning)
        await asyncio.to_thread(pg.recreate)
        async with TcpProxy(pg.port) as proxy:
            setup = await start_gateway(opts, procs, pg, proxy, upstream_port)
            await prepare_keys(opts, setup)
            outcomes, seconds, readyz = await drive(opts, setup, proxy)
            outcomes = setup.outcomes + outcomes
            ids = sum(1 for o in outcomes if o.request_id is not None)
            progress(f"load stopped; waiting for {ids} usage rows (up to {opts.ledger_wait:g}s)")
            rows, caught_up = await wait_for_ledger(opts, pg, ids)
            metrics = await asyncio.to_thread(read_metrics, setup.port)
            await asyncio.to_thread(procs.stop, GATEWAY)  # while PostgreSQL is reachable: a clean stop
        log = procs.log(GATEWAY).read_text(errors="replace")
        spill = setup.data_dir / "usage-spill.jsonl"
        return Run(
            phase_seconds=seconds,
            outcomes=outcomes,
            readyz_during=readyz,
            metrics=metrics,
            rows=rows,
            caught_up_seconds=caught_up,
            spilled_lines=len(spill.read_text().splitlines()) if spill.exists() else 0,
            log_retry_warnings=len(re.findall(r"will retry", log)),
            log_errors=len(re.findall(r"^.*\b(ERROR|CRITICAL|Traceback)\b", log, re.MULTILINE)),
            log_tail=tail(procs.log(GATEWAY), 15),
        )


# -- report ----------------------------------------------------------------------------------------


def report(opts: argparse.Namespace, run: Run) -> tuple[str, dict[str, Any], bool]:
    stats = [phase_stats(p, run.phase_seconds.get(p, 0.0), run.outcomes) for p in PHASES]
    ledger = check_ledger(run.outcomes, run.rows, run.caught_up_seconds)
    results = checks(stats, ledger, run.outcomes)
    passed = all(ok for _, ok in results)
    shown = {k: v for k, v in run.metrics.items() if "usage" in k or "snapshot" in k}
    lines = [
        f"gateway: production mode (PostgreSQL through a TCP proxy, Redis), 1 worker, key cache TTL {opts.key_ttl:g}s",
        f"keys: {opts.keys} ({opts.cli_keys} from the CLI before the start), {opts.revoked} revoked before the load; "
        f"every one used before the outage",
        f"load: {opts.rate:g} req/s paced over {opts.concurrency} httpx clients, 1 in {opts.revoked_every} with a "
        f"revoked key; PostgreSQL cut {opts.outage_seconds:g}s after {opts.before_seconds:g}s, then "
        f"{opts.after_seconds:g}s more; {opts.pinning.note}",
        f"load average before the run: {' '.join(f'{x:.2f}' for x in opts.load_average)}",
        "",
        render(stats),
        "",
        f"/readyz in mid-outage: {run.readyz_during['status']} {json.dumps(run.readyz_during['body'])}",
        f"usage rows: {ledger.rows} for {ledger.ids_given} request ids; all there {ledger.caught_up_seconds:.1f}s "
        f"after the load stopped; spilled to disk: {run.spilled_lines} lines",
        "gateway metrics: " + ", ".join(f"{k.removeprefix('gateway_')} {v:g}" for k, v in shown.items()),
        f"gateway log: {run.log_retry_warnings} 'usage batch not written; will retry' warnings, "
        f"{run.log_errors} ERROR/Traceback lines",
        "",
        *(f"{'PASS' if ok else 'FAIL'}  {text}" for text, ok in results),
    ]
    for sample in error_samples(run.outcomes):
        lines.append(f"  unexpected: {json.dumps(sample)}")
    if not passed:
        lines += ["", "gateway log (tail):", run.log_tail]
        for name, ids in (("missing", ledger.missing), ("doubled", ledger.doubled), ("extra", ledger.extra)):
            if ids:
                lines.append(f"  {name} request ids (first 5): {', '.join(ids[:5])}")
    data = {
        "options": {**{k: v for k, v in vars(opts).items() if k != "json"}, "pinning": opts.pinning.note},
        "phases": [dataclasses.asdict(s) for s in stats],
        "ledger": dataclasses.asdict(ledger) | {"spilled_lines": run.spilled_lines},
        "readyz_during_outage": run.readyz_during,
        "metrics": run.metrics,
        "log": {"retry_warnings": run.log_retry_warnings, "errors": run.log_errors},
        "checks": [{"check": text, "passed": ok} for text, ok in results],
        "passed": passed,
    }
    return "\n".join(lines), data, passed


# -- command line ----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--outage-seconds", type=float, default=30.0, help="how long PostgreSQL is cut (default 30)")
    add("--before-seconds", type=float, default=10.0, help="load before the cut (default 10)")
    add("--after-seconds", type=float, default=10.0, help="load after PostgreSQL is back (default 10)")
    add("--rate", type=float, default=150.0, help="requests per second, paced (default 150)")
    add("--concurrency", type=int, default=12, help="httpx clients, one connection each (default 12)")
    add("--keys", type=int, default=50, help="keys created (default 50)")
    add("--cli-keys", type=int, default=10, help="of those, made with the CLI before the start (default 10)")
    add("--revoked", type=int, default=5, help="of those, revoked before the load (default 5)")
    add("--revoked-every", type=int, default=20, help="1 request in N uses a revoked key (default 20)")
    add("--key-ttl", type=float, default=2.0, help="GATEWAY_KEY_CACHE_TTL_SECONDS (default 2)")
    add("--request-timeout", type=float, default=30.0, help="client timeout per request (default 30)")
    add("--ledger-wait", type=float, default=120.0, help="longest wait for the usage rows (default 120)")
    add("--pin", action=argparse.BooleanOptionalAction, default=True, help="gateway on CPU 0, load on the last")
    add("--json", type=Path, help="also write the figures to this JSON file")
    add("--redis-url", default="redis://127.0.0.1:6379/0")
    add("--pg-socket", default="/var/run/postgresql", help="PostgreSQL Unix socket directory")
    add("--pg-port", type=int, default=5432)
    add("--pg-superuser", default="postgres", help="role that may create roles and databases")
    add("--database", default="gateway_outage", help="dropped and recreated for the run")
    add("--log-level", default="WARNING", help="GATEWAY_LOG_LEVEL for the gateway")
    add("--keep-logs", action="store_true", help="keep the temporary directory with the logs")
    opts = parser.parse_args(argv)
    if not 0 <= opts.revoked < opts.keys or not 0 <= opts.cli_keys <= opts.keys:
        parser.error("need 0 <= --revoked < --keys and 0 <= --cli-keys <= --keys")
    opts.pinning = Pinning.choose(opts.pin, workers=1)
    opts.load_average = os.getloadavg()
    return opts


class Interrupted(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise Interrupted(signum)  # unwinds through the `with Processes` block, which stops the children


def preflight(opts: argparse.Namespace, pg: Postgres) -> None:
    pg.psql("SELECT 1")
    try:
        redis.Redis.from_url(opts.redis_url, socket_connect_timeout=2, socket_timeout=2).ping()
    except redis.RedisError as exc:
        raise RuntimeError(f"Redis at {opts.redis_url}: {exc}") from exc


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    pg = Postgres(opts.pg_socket, opts.pg_superuser, opts.database, port=opts.pg_port)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    if opts.pinning.load is not None:
        os.sched_setaffinity(0, opts.pinning.load)  # this process is the load side (and the proxy)
    workdir = Path(tempfile.mkdtemp(prefix="gateway-outage-"))
    try:
        preflight(opts, pg)
        run = asyncio.run(outage(opts, pg, workdir))
    except (RuntimeError, OSError, ValueError, httpx.HTTPError) as exc:
        print(f"outage run failed: {exc}\nlogs kept in {workdir}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, Interrupted) as exc:
        signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
        print(f"interrupted; every process started is stopped; logs in {workdir}", file=sys.stderr)
        return 128 + signum
    text, data, passed = report(opts, run)
    print(text)
    if opts.json:
        opts.json.write_text(json.dumps(data, indent=2, default=str) + "\n")
        print(f"figures written to {opts.json}")
    if opts.keep_logs or not passed:
        print(f"logs kept in {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
