"""``gateway``: serve, migrate, manage keys, print the settings reference."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING

from gateway.audit.actor import cli_actor
from gateway.catalog.config import load_catalog_config
from gateway.cli import audit, backends, directory, models
from gateway.cli import keys as key_commands
from gateway.errors import GatewayError
from gateway.settings import Settings, field_docs

if TYPE_CHECKING:  # imported when used: `gateway --help` should not load SQLAlchemy
    from gateway.quotas.config import LimitRule
    from gateway.quotas.limits import LimitService
    from gateway.quotas.service import LimitUsage

_SIGPIPE_EXIT = 141  # 128 + SIGPIPE: what a shell reports for a writer whose reader went away


def main(argv: Sequence[str] | None = None) -> None:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.config:
        # Exported so that every server worker process reads the same file.
        os.environ["GATEWAY_CONFIG"] = args.config
    try:
        args.run(args)
        sys.stdout.flush()  # here, so that a reader gone early (`| head`) is caught below
    except GatewayError as exc:
        print(f"gateway: {exc.message}", file=sys.stderr)
        sys.exit(2)
    except BrokenPipeError:
        # Whoever read our output stopped: end quietly, as `yes | head` does. Pointing stdout at
        # /dev/null keeps the interpreter's own last flush from failing in turn.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(_SIGPIPE_EXIT)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway", description="Self-hosted model gateway.")
    parser.add_argument("--config", help="YAML settings file (same names as the GATEWAY_* variables)")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the gateway")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int)
    serve.add_argument("--config", help=argparse.SUPPRESS, default=argparse.SUPPRESS)
    serve.set_defaults(run=_serve)

    migrate = commands.add_parser("migrate", help="apply database migrations")
    migrate.set_defaults(run=_migrate)

    reference = commands.add_parser("settings", help="print every setting with its variable and default")
    reference.set_defaults(run=_settings_reference)

    key_commands.register(commands)
    quotas = commands.add_parser("quotas", help="quota usage").add_subparsers(dest="quotas_command", required=True)
    usage = quotas.add_parser("usage", help="a key's usage against every limit that applies to it")
    usage.add_argument("--key", required=True, help="the key's id or prefix")
    usage.add_argument("--user", help="also the limits on this end user (the OpenAI `user` field)")
    usage.set_defaults(run=_quotas_usage)
    setter = quotas.add_parser("set", help="set a limit (replacing the one on the same scope, name and model)")
    setter.add_argument("--scope", required=True, choices=("org", "team", "key", "user"))
    setter.add_argument("--name", default="*", help="org or team name, key prefix or id, user id; * = each one")
    setter.add_argument("--model", help="only requests for this model")
    for flag in ("requests-per-minute", "tokens-per-minute", "input-tokens-per-minute", "output-tokens-per-minute"):
        setter.add_argument(f"--{flag}", type=int)
    setter.add_argument("--concurrent-requests", type=int)
    setter.add_argument("--budget-micro-usd", type=int, help="a budget in whole micro-USD (5000000 = $5)")
    setter.add_argument("--period", choices=("day", "week", "month"), help="the budget's calendar period")
    setter.set_defaults(run=_quotas_set)
    lister = quotas.add_parser("list", help="the limits in force: from the quotas file, and set here or by the API")
    lister.set_defaults(run=_quotas_list)
    remover = quotas.add_parser("remove", help="remove a limit set through the CLI or the admin API")
    remover.add_argument("id")
    remover.set_defaults(run=_quotas_remove)
    for group in (directory, backends, models, audit):
        group.register(commands)
    return parser


def _serve(args: argparse.Namespace) -> None:
    import uvicorn

    from gateway.db.engine import check_connection
    from gateway.quotas.config import load_quota_config

    settings = Settings.load()
    # What the workers' start-up would trip over is checked here, once: each failure is then one
    # line and exit 2, where a worker's would be uvicorn's traceback (and, with several workers,
    # a parent exiting 0).
    load_catalog_config(settings.models_file)
    load_quota_config(settings.quotas_file)
    asyncio.run(check_connection(settings.effective_database_url, settings.database_setting))
    uvicorn.run(
        "gateway.app:create_app_from_env",
        factory=True,
        host=args.host or settings.host,
        port=args.port or settings.port,
        workers=args.workers or settings.workers,
        loop="uvloop" if _has_uvloop() else "asyncio",
        http="gateway.web.http_protocol:HttpProtocol",  # httptools, with API-shaped 400s for broken bodies
        log_level=settings.log_level.lower(),
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=max(1, round(settings.shutdown_timeout_seconds)),
    )


def _has_uvloop() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def _migrate(_args: argparse.Namespace) -> None:
    from gateway.db.migrate import upgrade

    settings = Settings.load()
    upgrade(settings.effective_database_url, setting=settings.database_setting)
    print("migrations applied")


def _settings_reference(_args: argparse.Namespace) -> None:
    Settings.load()  # the reference is printed only once the settings in force are valid
    for variable, default, doc in field_docs():
        print(f"{variable} (default {default})\n    {doc}")


def _quotas_set(args: argparse.Namespace) -> None:
    spec: dict[str, object] = {"scope": args.scope, "name": args.name, "model": args.model}
    for field in ("requests_per_minute", "tokens_per_minute", "input_tokens_per_minute", "output_tokens_per_minute"):
        spec[field] = getattr(args, field)
    spec["concurrent_requests"] = args.concurrent_requests
    if args.budget_micro_usd is not None or args.period is not None:
        spec["budget"] = {"micro_usd": args.budget_micro_usd, "period": args.period}

    async def run() -> None:
        async with _limit_service() as limits:
            stored = await limits.put({k: v for k, v in spec.items() if v is not None}, actor=cli_actor())
        print(f"set limit {stored.id}: {_limits_text(stored.rule)} on {stored.rule.where}")
        print("(running gateways take it up within a second)", file=sys.stderr)

    asyncio.run(run())


def _quotas_list(_args: argparse.Namespace) -> None:
    from gateway.quotas.config import load_quota_config

    async def run() -> None:
        async with _limit_service() as limits:
            stored = await limits.list()
        in_file = load_quota_config(Settings.load().quotas_file).limits
        rows = [(rule, "file") for rule in in_file] + [(limit.rule, str(limit.id)) for limit in stored]
        if not rows:
            print("no limits: none in GATEWAY_QUOTAS_FILE, none set through the CLI or the admin API")
            return
        print(f"{'scope':6}  {'name':20}  {'model':16}  {'limits':56}  source/id")
        for rule, source in rows:
            model = rule.model or "(any)"
            print(f"{rule.scope:6}  {rule.name[:20]:20}  {model[:16]:16}  {_limits_text(rule):56}  {source}")

    asyncio.run(run())


def _limits_text(rule: LimitRule) -> str:
    """``requests_per_minute=600 budget=$50.00/month``: a rule's limits, as the quotas file names them."""
    import msgspec

    from gateway.admin.quota_schemas import LimitView, dollars

    given = msgspec.to_builtins(LimitView.of(rule))  # only the limits set, by their names in the file
    parts = [f"{field}={value}" for field, value in given.items() if field.endswith(("_minute", "_requests"))]
    if rule.budget is not None:
        parts.append(f"budget={dollars(rule.budget.nano_usd)}/{rule.budget.period}")
    return " ".join(parts)


def _quotas_remove(args: argparse.Namespace) -> None:
    async def run() -> None:
        async with _limit_service() as limits:
            await limits.remove(args.id, actor=cli_actor())
        print(f"removed limit {args.id}")

    asyncio.run(run())


def _quotas_usage(args: argparse.Namespace) -> None:
    from gateway.quotas.config import load_quota_config
    from gateway.quotas.service import Quotas

    async def run() -> None:
        settings = Settings.load()
        if not settings.redis_url:
            # Embedded mode counts in the gateway's own process: only it can say where a key stands.
            print("embedded mode: quota counters live in the running gateway; ask it at GET /admin/quotas/usage")
            raise SystemExit(1)
        async with key_commands.key_service() as keys, _limit_service() as limits:
            info = await keys.info(args.key)
            stored = [limit.rule for limit in await limits.list()]
        quotas = Quotas(load_quota_config(settings.quotas_file), settings.redis_url or None, lease_seconds=60)
        try:
            rows = await quotas.usage(quotas.rules(tuple(stored)), info, args.user)
        finally:
            await quotas.stop()
        if not rows:
            print(f"no limits apply to key {info.prefix}")
            return
        _print_usage(rows)

    asyncio.run(run())


def _print_usage(rows: list[LimitUsage]) -> None:
    from gateway.admin.quota_schemas import dollars, unit_of

    head = ("scope", "name", "model", "metric", "limit", "used", "remaining", "unit")
    print("{:6}  {:20}  {:16}  {:14}  {:>14}  {:>14}  {:>14}  {:18}  resets".format(*head))
    for row in rows:
        numbers: tuple[object, ...] = (row.limit, row.used, row.remaining)
        unit = unit_of(row.metric)
        if unit == "nano_usd":  # for people: dollars (the API gives the exact integers)
            numbers, unit = tuple(dollars(n) for n in (row.limit, row.used, row.remaining)), "usd"
        limit, used, remaining = numbers
        print(
            f"{row.scope:6}  {row.name[:20]:20}  {(row.model or '(any)')[:16]:16}  {row.metric:14}  {limit!s:>14}  "
            f"{used!s:>14}  {remaining!s:>14}  {unit:18}  {row.resets_at or '-'}"
        )
    print(f"(counted in {rows[0].source})")


@contextlib.asynccontextmanager
async def _limit_service() -> AsyncIterator[LimitService]:
    from gateway.cli.common import control

    async with control() as plane:  # a limit change is published to the running gateways
        yield plane.limits
