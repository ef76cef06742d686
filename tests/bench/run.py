"""Benchmark the gateway against the same load sent straight to the fake upstream.

Usage: python tests/bench/run.py [--quick] [--transport httpx|aiohttp|both] [--json out.json] ...
See tests/bench/README.md for what is measured and how to read the table.
"""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import redis
from report import GatewayStats, Measurement, compare_transports, render
from services import (
    LOOPBACK,
    Pinning,
    Postgres,
    Processes,
    cpu_seconds,
    free_port,
    gateway_cli,
    gateway_command,
    gateway_env,
    http_get,
    memory_kib,
    process_tree,
    start_fake_upstream,
    tail,
    wait_for_http,
)
from wrkrun import WrkResult, lua_script, run_wrk

BENCH_DIR = Path(__file__).resolve().parent
CHAT_PATH = "/v1/chat/completions"
MODEL = "bench-model"
TRANSPORTS = ("aiohttp", "httpx")
USAGE_SETTLE_SECONDS = 1.0  # the gateway writes usage in batches; give the last batch this long
USAGE_MAX_WAIT_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Plan:
    duration: float
    warmup: float
    rate: float
    rate_warmup: float
    threads: int
    connections: int
    stream_count: int
    stream_concurrent: int
    stream_concurrency: int
    chunk_delay_ms: int
    transports: tuple[str, ...]
    workers: int
    pinning: Pinning
    log_level: str
    redis_url: str
    quotas: bool = False

    @property
    def stream_model(self) -> str:
        return f"{MODEL}-chunkdelay-{self.chunk_delay_ms}" if self.chunk_delay_ms else MODEL

    def describe(self) -> list[str]:
        return [
            f"CPUs: {os.cpu_count()}; {self.pinning.note}",
            f"gateway: {self.workers} worker(s), PostgreSQL + Redis, auth and usage recording on"
            + (", quotas on every scope (14 counters per request)" if self.quotas else ""),
            f"max throughput: wrk {self.threads} threads x {self.connections} connections x "
            f"{self.duration:g}s (after {self.warmup:g}s warm-up), non-streaming {MODEL}",
            f"fixed rate: {self.rate:g} req/s x {self.duration:g}s open loop (after {self.rate_warmup:g}s "
            "warm-up); latency from issuing a request to its last byte",
            f"streaming: model {self.stream_model} (SSE events {self.chunk_delay_ms} ms apart upstream); "
            "TTFB = request sent -> first body bytes",
        ]


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    port: int
    token: str | None = None

    @property
    def slug(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-")

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}{CHAT_PATH}"

    @property
    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers


def chat_body(model: str, stream: bool) -> str:
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": "Say hello to the benchmark."}],
        "max_tokens": 16,
        "user": "bench-user",  # an end user, for the quota rules on users (--quotas)
    }
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return json.dumps(body, separators=(",", ":"))


def progress(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- measuring one target --------------------------------------------------------------------------


def run_loadgen(args: list[str], plan: Plan, timeout: float) -> dict[str, Any]:
    command = [sys.executable, str(BENCH_DIR / "loadgen.py"), *args]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=plan.pinning.for_load(),
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}:\n{done.stdout}{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def wrk(target: Target, script: Path, seconds: float, plan: Plan) -> WrkResult:
    return run_wrk(
        target.url,
        script,
        threads=plan.threads,
        connections=plan.connections,
        seconds=seconds,
        preexec=plan.pinning.for_load(),
    )


def write_spec(path: Path, target: Target, body: str) -> Path:
    path.write_text(json.dumps({"url": target.url, "headers": target.headers, "body": body}))
    return path


def measure(target: Target, plan: Plan, workdir: Path) -> tuple[Measurement, int]:
    """All three phases against one target; also returns how many requests were sent and answered."""
    body = chat_body(MODEL, stream=False)
    script = workdir / f"{target.slug}.lua"
    script.write_text(lua_script(body, target.headers))

    progress(f"{target.name}: wrk warm-up {plan.warmup:g}s, then {plan.duration:g}s")
    warm = wrk(target, script, plan.warmup, plan)
    throughput = wrk(target, script, plan.duration, plan)

    progress(f"{target.name}: open loop at {plan.rate:g} req/s for {plan.duration:g}s")
    chat_spec = write_spec(workdir / f"{target.slug}-chat.json", target, body)
    rate_args = ["rate", "--spec", str(chat_spec), "--rate", str(plan.rate)]
    rate_args += ["--duration", str(plan.duration), "--warmup", str(plan.rate_warmup)]
    rate = run_loadgen(rate_args, plan, timeout=plan.duration + plan.rate_warmup + 90)

    progress(f"{target.name}: {plan.stream_count} sequential + {plan.stream_concurrent} concurrent streams")
    stream_spec = write_spec(workdir / f"{target.slug}-stream.json", target, chat_body(plan.stream_model, True))
    stream_args = ["stream", "--spec", str(stream_spec), "--count", str(plan.stream_count)]
    stream_args += [
        "--concurrent",
        str(plan.stream_concurrent),
        "--concurrency",
        str(plan.stream_concurrency),
    ]
    stream = run_loadgen(stream_args, plan, timeout=300)

    sent = warm.requests + throughput.requests + rate["sent"] + rate["warmup_sent"]
    sent += plan.stream_count + plan.stream_concurrent + stream["warmup_sent"]
    return Measurement(target.name, throughput, rate, stream), sent


# -- the gateway -----------------------------------------------------------------------------------


def write_models(path: Path, upstream_port: int, plan: Plan) -> Path:
    models = sorted({MODEL, plan.stream_model})
    lines = [
        "backends:",
        "  fake:",
        "    kind: openai",
        f"    base_url: http://{LOOPBACK}:{upstream_port}/v1",
        "models:",
    ]
    for model in models:
        lines += [
            f"  {model}:",
            "    backend: fake",
            f"    upstream_model: {model}",
            "    prices: {input: 150000, cached_input: 75000, output: 600000}",
        ]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_quotas(path: Path) -> Path:
    """Every scope checked on every request: 14 counters, none ever full."""
    big = "requests_per_minute: 1000000000, tokens_per_minute: 1000000000000"
    path.write_text(
        "limits:\n"
        f"  - {{scope: org, name: '*', {big}, concurrent_requests: 100000,"
        " budget: {micro_usd: 1000000000000, period: month}}\n"
        f"  - {{scope: team, name: '*', {big}, budget: {{micro_usd: 1000000000000, period: day}}}}\n"
        f"  - {{scope: key, name: '*', {big}, concurrent_requests: 100000}}\n"
        "  - {scope: user, name: '*', requests_per_minute: 1000000000, input_tokens_per_minute: 1000000000000}\n"
        f"  - {{scope: key, name: '*', model: {MODEL}, requests_per_minute: 1000000000,"
        " output_tokens_per_minute: 1000000000000, budget: {micro_usd: 1000000000000, period: week}}\n"
    )
    return path


def check_one_request(target: Target) -> None:
    """One chat completion before the load, so that a broken gateway fails with its own answer."""
    conn = http.client.HTTPConnection(LOOPBACK, target.port, timeout=10)
    try:
        conn.request("POST", CHAT_PATH, body=chat_body(MODEL, stream=False), headers=target.headers)
        response = conn.getresponse()
        text = response.read().decode(errors="replace")
    finally:
        conn.close()
    if response.status != 200:
        raise RuntimeError(f"{target.name}: POST {CHAT_PATH} answered {response.status}: {text}")


def wait_for_usage(pg: Postgres, sent: int) -> tuple[int, int, float]:
    """Usage rows after USAGE_SETTLE_SECONDS, then (if fewer than sent) after waiting up to the max."""
    time.sleep(USAGE_SETTLE_SECONDS)
    first = final = pg.count("usage_records")
    waited = USAGE_SETTLE_SECONDS
    while final < sent and waited < USAGE_MAX_WAIT_SECONDS:
        time.sleep(0.25)
        waited += 0.25
        final = pg.count("usage_records")
    return first, final, waited


def count_log_errors(log: Path) -> int:
    text = log.read_text(errors="replace")
    return len(re.findall(r"^.*\b(ERROR|CRITICAL|Traceback)\b", text, re.MULTILINE))


def run_gateway(
    transport: str, plan: Plan, procs: Processes, pg: Postgres, upstream_port: int, workdir: Path
) -> Measurement:
    name = f"gateway-{transport}"
    data_dir = workdir / name
    data_dir.mkdir()
    progress(f"{name}: fresh database {pg.database}, migrate, create key")
    pg.recreate()
    env = gateway_env(
        {
            "database_url": pg.url,
            "redis_url": plan.redis_url,
            "models_file": str(write_models(data_dir / "models.yaml", upstream_port, plan)),
            "data_dir": str(data_dir),
            "upstream_transport": transport,
            "log_level": plan.log_level,
            "auto_migrate": "false",
            "admin_key": "",
        }
    )
    if plan.quotas:
        env["GATEWAY_QUOTAS_FILE"] = str(write_quotas(data_dir / "quotas.yaml"))
    gateway_cli(["migrate"], env)
    token = gateway_cli(["keys", "create", "--name", "bench", "--team", "bench"], env).splitlines()[0].strip()
    if not token.startswith("sk-"):
        raise RuntimeError(f"`gateway keys create` printed {token!r}, expected a secret")

    port = free_port()
    command = [*gateway_command(), "serve", "--host", LOOPBACK, "--port", str(port)]
    proc = procs.start(name, [*command, "--workers", str(plan.workers)], env=env, preexec=plan.pinning.for_gateway())
    wait_for_http(proc, procs.log(name), port, "/healthz")
    status, ready = http_get(port, "/readyz")
    if status != 200:
        raise RuntimeError(f"{name}: GET /readyz answered {status}: {ready}")
    target = Target(f"gateway {transport}", port, token)
    check_one_request(target)

    cpu_before = cpu_seconds(process_tree(proc.pid))
    measurement, sent = measure(target, plan, workdir)
    cpu_used = cpu_seconds(process_tree(proc.pid)) - cpu_before
    sent += 1  # check_one_request
    first, rows, waited = wait_for_usage(pg, sent)
    pids = process_tree(proc.pid)
    measurement.gateway = GatewayStats(
        transport=transport,
        processes=len(pids),
        rss_kib=sum(memory_kib(pid, "VmRSS") for pid in pids),
        peak_rss_kib=sum(memory_kib(pid, "VmHWM") for pid in pids),
        cpu_seconds=cpu_used,
        requests_sent=sent,
        in_flight_bound=2 * plan.connections,
        usage_rows_after_1s=first,
        usage_rows=rows,
        usage_wait_seconds=waited,
        log_errors=count_log_errors(procs.log(name)),
        log=tail(procs.log(name), 10),
    )
    procs.stop(name)
    return measurement


# -- command line ----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short phases for a smoke run (under ~60 s)")
    parser.add_argument("--duration", type=float, help="seconds per measured phase (default 10, quick 2)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (default 64)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--rate", type=float, default=500.0, help="fixed request rate, req/s (default 500)")
    parser.add_argument("--transport", choices=[*TRANSPORTS, "both"], default="aiohttp")
    parser.add_argument("--workers", type=int, default=1, help="gateway worker processes (default 1)")
    parser.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="pin the gateway to CPU 0 and the load side to the last CPU (default on)",
    )
    parser.add_argument("--streams", type=int, help="sequential streaming requests (default 200, quick 30)")
    parser.add_argument("--concurrent-streams", type=int, help="streams in the concurrent batch (200, quick 32)")
    parser.add_argument("--stream-concurrency", type=int, default=16, help="concurrency of that batch")
    parser.add_argument("--chunk-delay-ms", type=int, default=2, help="upstream delay between SSE events")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--pg-socket", default="/var/run/postgresql", help="PostgreSQL Unix socket directory")
    parser.add_argument("--pg-port", type=int, default=5432)
    parser.add_argument("--pg-superuser", default="postgres", help="role that may create roles and databases")
    parser.add_argument("--database", default="gateway_bench", help="dropped and recreated per gateway run")
    parser.add_argument("--log-level", default="WARNING", help="GATEWAY_LOG_LEVEL for the gateway")
    parser.add_argument("--keep-logs", action="store_true", help="keep the temporary directory with logs")
    parser.add_argument(
        "--quotas",
        action="store_true",
        help="check quotas on every scope (org, team, key, end user and model; limits never reached)",
    )
    return parser.parse_args(argv)


def make_plan(args: argparse.Namespace) -> Plan:
    def pick(value: Any, full: Any, quick: Any) -> Any:
        return value if value is not None else (quick if args.quick else full)

    return Plan(
        duration=pick(args.duration, 10.0, 2.0),
        warmup=pick(None, 2.0, 1.0),
        rate=args.rate,
        rate_warmup=pick(None, 1.0, 0.5),
        threads=args.threads,
        connections=args.connections,
        stream_count=pick(args.streams, 200, 30),
        stream_concurrent=pick(args.concurrent_streams, 200, 32),
        stream_concurrency=args.stream_concurrency,
        chunk_delay_ms=args.chunk_delay_ms,
        transports=TRANSPORTS if args.transport == "both" else (args.transport,),
        workers=args.workers,
        pinning=Pinning.choose(args.pin, args.workers),
        log_level=args.log_level,
        redis_url=args.redis_url,
        quotas=args.quotas,
    )


def preflight(plan: Plan, pg: Postgres) -> None:
    """Fail before any load if a tool, PostgreSQL or Redis is missing."""
    missing = [tool for tool in ("wrk", "psql") if shutil.which(tool) is None]
    if missing:
        raise RuntimeError(f"not on PATH: {', '.join(missing)}")
    pg.psql("SELECT 1")
    try:
        redis.Redis.from_url(plan.redis_url, socket_connect_timeout=2, socket_timeout=2).ping()
    except redis.RedisError as exc:
        raise RuntimeError(f"Redis at {plan.redis_url}: {exc}") from exc


class Interrupted(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise Interrupted(signum)  # unwinds through the `with Processes` block, which stops the children


def benchmark(plan: Plan, pg: Postgres, workdir: Path) -> list[Measurement]:
    with Processes(workdir) as procs:
        progress("starting fake upstream")
        upstream_port = start_fake_upstream(procs, plan.pinning)
        direct, _ = measure(Target("direct", upstream_port), plan, workdir)
        results = [direct]
        for transport in plan.transports:
            results.append(run_gateway(transport, plan, procs, pg, upstream_port, workdir))
    return results


def print_report(plan: Plan, results: list[Measurement], load: tuple[float, ...]) -> None:
    print()
    for line in plan.describe():
        print(line)
    averages = " ".join(f"{x:.2f}" for x in load)
    print(f"load average before the run: {averages} (other work on this machine adds noise)")
    print()
    print(render(results, plan.rate))
    for m in results:
        achieved, offered = m.rate["achieved_rps"], m.rate["offered_rps"]
        if achieved < 0.95 * offered:
            print(
                f"note: {m.target} sustained only {achieved:,.0f} of {offered:g} req/s, so its latency at "
                "that rate is mostly queueing, not added latency"
            )
        g = m.gateway
        if g is not None and g.usage_rows < g.requests_sent:
            missing = g.requests_sent - g.usage_rows
            print(f"note: {m.target}: {missing} requests have no usage row after {g.usage_wait_seconds:.1f}s")
    print(
        "usage rows / requests sent: requests counted as answered by wrk and the load generator; wrk may "
        f"also leave up to {2 * plan.connections} requests in flight when it stops, which can add rows."
    )
    for line in compare_transports(results):
        print(line)


def write_json(path: Path, plan: Plan, results: list[Measurement]) -> None:
    data = {
        "plan": {**dataclasses.asdict(plan), "pinning": plan.pinning.note, "stream_model": plan.stream_model},
        "results": [dataclasses.asdict(m) for m in results],
    }
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan = make_plan(args)
    pg = Postgres(args.pg_socket, args.pg_superuser, args.database, port=args.pg_port)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    workdir = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    load = os.getloadavg()
    started = time.monotonic()
    try:
        preflight(plan, pg)
        results = benchmark(plan, pg, workdir)
    except (RuntimeError, OSError, subprocess.TimeoutExpired, ValueError) as exc:
        print(f"benchmark failed: {exc}\nlogs kept in {workdir}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, Interrupted) as exc:
        signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
        name = signal.Signals(signum).name
        print(f"interrupted ({name}); every process started is stopped; logs in {workdir}", file=sys.stderr)
        return 128 + signum
    print_report(plan, results, load)
    print(f"total time {time.monotonic() - started:.0f}s")
    if args.json:
        write_json(args.json, plan, results)
        print(f"results written to {args.json}")
    if args.keep_logs:
        print(f"logs kept in {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
