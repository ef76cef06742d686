"""``gateway models ...``: versions and their lifecycle, and the models file as code (sync, export).

Each command is the admin API's move of the same name, made as whoever runs the CLI (the audit
log's actor ``cli:<user>``); running gateways take it up within a second.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from gateway.cli.common import control, print_json, say
from gateway.errors import ConfigError

if TYPE_CHECKING:
    from gateway.catalog.versions import ModelInfo


def register(commands: argparse._SubParsersAction[Any]) -> None:
    group = commands.add_parser("models", help="model versions: create, promote, canary, roll back, diff, sync")
    models = group.add_subparsers(dest="models_command", required=True)
    models.add_parser("list", help="every model with its active and canary versions").set_defaults(run=_list)
    show = models.add_parser("show", help="a model and all its versions (JSON)")
    show.add_argument("model")
    show.set_defaults(run=_show)
    create = models.add_parser("create", help="create a model (served once one of its versions is active)")
    create.add_argument("name")
    create.add_argument("--rollout", choices=("auto", "manual"), default="auto")
    create.set_defaults(run=_create)
    version = models.add_parser("version", help="create a draft version from a YAML or JSON file")
    version.add_argument("model")
    version.add_argument("file", help="the version's configuration, as a model in the models file writes it")
    version.set_defaults(run=_version)
    promote = models.add_parser("promote", help="make a version active, or a canary with --canary PERCENT")
    promote.add_argument("model")
    promote.add_argument("version", type=int)
    promote.add_argument("--canary", type=int, metavar="PERCENT", help="a canary's share of traffic (1-99)")
    promote.set_defaults(run=_promote)
    rollback = models.add_parser("rollback", help="make the previously active version active again")
    rollback.add_argument("model")
    rollback.set_defaults(run=_rollback)
    retire = models.add_parser("retire", help="retire a draft or canary version")
    retire.add_argument("model")
    retire.add_argument("version", type=int)
    retire.set_defaults(run=_retire)
    diff = models.add_parser("diff", help="what differs between two versions")
    diff.add_argument("model")
    diff.add_argument("first", type=int)
    diff.add_argument("second", type=int)
    diff.set_defaults(run=_diff)
    history = models.add_parser("history", help="a model's versions and every change to them")
    history.add_argument("model")
    history.set_defaults(run=_history)
    export = models.add_parser("export", help="write what the database serves as a models file (YAML)")
    export.add_argument("--output", "-o", help="a file to write (default: standard output)")
    export.set_defaults(run=_export)
    sync = models.add_parser("sync", help="apply a models file (as `gateway serve` does at start)")
    sync.add_argument("file")
    sync.add_argument("--dry-run", action="store_true", help="print the plan; change nothing")
    sync.set_defaults(run=_sync)


def _list(_args: argparse.Namespace) -> None:
    async def run() -> None:
        async with control() as plane:
            models = await plane.versions.models()
        print(f"{'model':32}  {'source':6}  {'rollout':7}  {'active':6}  {'canary':10}  versions")
        for info in models:
            print(_line(info))

    asyncio.run(run())


def _line(info: ModelInfo) -> str:
    active, canary = info.in_state("active"), info.in_state("canary")
    shown = f"v{active[0].version.number}" if active and info.model.active else "-"
    share = f"v{canary[0].version.number} {canary[0].version.canary_share}%" if canary else "-"
    return (
        f"{info.model.name[:32]:32}  {info.model.source:6}  {info.model.rollout:7}  {shown:6}  {share:10}  "
        f"{len(info.versions)}"
    )


def _show(args: argparse.Namespace) -> None:
    from gateway.admin.model_schemas import ModelView

    async def run() -> None:
        async with control() as plane:
            print_json(_builtins(ModelView.of(await plane.versions.model(args.model))))

    asyncio.run(run())


def _create(args: argparse.Namespace) -> None:
    from gateway.audit.actor import cli_actor

    async def run() -> None:
        async with control() as plane:
            info = await plane.versions.create_model(cli_actor(), args.name, rollout=args.rollout)
        say(f"created model {info.model.name} ({info.model.id}); add a version with `gateway models version`")

    asyncio.run(run())


def _version(args: argparse.Namespace) -> None:
    from gateway.audit.actor import cli_actor

    spec = _read(args.file)

    async def run() -> None:
        async with control() as plane:
            info = await plane.versions.create_version(cli_actor(), args.model, spec)
        say(f"created {args.model} v{info.version.number} as a draft; promote it with `gateway models promote`")

    asyncio.run(run())


def _promote(args: argparse.Namespace) -> None:
    from gateway.audit.actor import cli_actor

    to = "canary" if args.canary is not None else "active"

    async def run() -> None:
        async with control() as plane:
            info = await plane.versions.promote(cli_actor(), args.model, args.version, to=to, share=args.canary)
        print(_line(info))

    asyncio.run(run())


def _rollback(args: argparse.Namespace) -> None:
    from gateway.audit.actor import cli_actor

    async def run() -> None:
        async with control() as plane:
            print(_line(await plane.versions.rollback(cli_actor(), args.model)))

    asyncio.run(run())


def _retire(args: argparse.Namespace) -> None:
    from gateway.audit.actor import cli_actor

    async def run() -> None:
        async with control() as plane:
            print(_line(await plane.versions.retire(cli_actor(), args.model, args.version)))

    asyncio.run(run())


def _diff(args: argparse.Namespace) -> None:
    async def run() -> None:
        async with control() as plane:
            changes = await plane.versions.diff(args.model, args.first, args.second)
        if not changes:
            say(f"v{args.first} and v{args.second} are configured alike")
        for name, change in changes.items():
            print(f"{name}: {change['from']!r} -> {change['to']!r}")

    asyncio.run(run())


def _history(args: argparse.Namespace) -> None:
    async def run() -> None:
        async with control() as plane:
            _, entries = await plane.versions.history(args.model)
        for entry in entries:
            state = entry.after.get("state") if entry.after else None
            detail = f" ({state})" if state and entry.action != "version.create" else ""
            print(f"{entry.at.isoformat()}  {entry.actor:24}  {entry.action:17}  {entry.object_name}{detail}")

    asyncio.run(run())


def _export(args: argparse.Namespace) -> None:
    async def run() -> None:
        async with control() as plane:
            state = await plane.versions.export()
        text = "# Exported by `gateway models export`: what the database serves.\n" + yaml.safe_dump(
            state, sort_keys=False, allow_unicode=True
        )
        if args.output:
            await asyncio.to_thread(Path(args.output).write_text, text, encoding="utf-8")
            say(f"wrote {len(state['models'])} models and {len(state['backends'])} backends to {args.output}")
        else:
            sys.stdout.write(text)

    asyncio.run(run())


def _sync(args: argparse.Namespace) -> None:
    from gateway.audit.actor import cli_actor
    from gateway.catalog.config import load_catalog_config

    config = load_catalog_config(args.file)

    async def run() -> None:
        async with control() as plane:
            steps = (
                await plane.versions.plan(config) if args.dry_run else await plane.versions.sync(cli_actor(), config)
            )
        for step in steps:
            print(("would " if args.dry_run else "") + step)
        if not steps:
            say("nothing to change: the database already serves this file")

    asyncio.run(run())


def _read(path: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML or JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of the version's fields")
    return data


def _builtins(value: Any) -> Any:
    import msgspec

    return msgspec.to_builtins(value)
