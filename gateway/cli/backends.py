"""``gateway backends ...`` and ``gateway credentials ...``: backends with a stored secret, an
``env:`` reference or Entra ID, and the encryption keys their secrets are stored under.

A secret is never a command-line argument (arguments land in shell history and in ``ps``): it is
read from standard input (``--secret-stdin``) or from an environment variable of the CLI's own
(``--secret-env NAME``: the value is read now and stored encrypted; ``--credential-ref env:NAME``
instead stores the reference, for the gateway to read the variable at start). Each command is the
admin API's move of the same name, made as ``cli:<user>``; running gateways take it up within a
second.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import TYPE_CHECKING, Any

from gateway.cli.common import control, print_json, say
from gateway.errors import ConfigError

if TYPE_CHECKING:
    from gateway.catalog.backends import BackendInfo

_SETTINGS = ("timeout_seconds", "api_version", "region", "entra")
_CLEARABLE = ("credential", *_SETTINGS)


def register(commands: argparse._SubParsersAction[Any]) -> None:
    group = commands.add_parser("backends", help="backends: create, change, delete; secrets stored encrypted")
    backends = group.add_subparsers(dest="backends_command", required=True)
    backends.add_parser("list", help="every backend (secrets masked)").set_defaults(run=_list)
    show = backends.add_parser("show", help="a backend (JSON, its secret masked)")
    show.add_argument("backend", help="name or id")
    show.set_defaults(run=_show)
    create = backends.add_parser("create", help="create a backend")
    create.add_argument("name")
    create.add_argument("--kind", required=True, help="openai, anthropic, azure, gemini or bedrock")
    create.add_argument("--base-url", required=True)
    _settings_arguments(create)
    create.set_defaults(run=_create)
    update = backends.add_parser("update", help="change a backend's URL, settings or credential")
    update.add_argument("backend", help="name or id")
    update.add_argument("--kind")
    update.add_argument("--base-url")
    _settings_arguments(update)
    update.add_argument(
        "--clear", action="append", choices=_CLEARABLE, default=[], help="remove a setting, or the credential"
    )
    update.set_defaults(run=_update)
    remove = backends.add_parser("delete", help="delete a backend no model version uses")
    remove.add_argument("backend", help="name or id")
    remove.set_defaults(run=_delete)

    keys = commands.add_parser("credentials", help="the keys backend secrets are encrypted under")
    credentials = keys.add_subparsers(dest="credentials_command", required=True)
    credentials.add_parser("new-key", help="print a new Fernet key (for GATEWAY_ENCRYPTION_KEYS)").set_defaults(
        run=_new_key
    )
    credentials.add_parser(
        "re-encrypt", help="move every stored secret onto the first key of GATEWAY_ENCRYPTION_KEYS"
    ).set_defaults(run=_re_encrypt)


def _settings_arguments(parser: argparse.ArgumentParser) -> None:
    secret = parser.add_mutually_exclusive_group()
    secret.add_argument("--secret-stdin", action="store_true", help="read the secret from standard input")
    secret.add_argument("--secret-env", metavar="NAME", help="read the secret from this variable now, store it")
    secret.add_argument("--credential-ref", metavar="env:NAME", help="store only a reference the gateway reads")
    parser.add_argument("--timeout-seconds", type=float)
    parser.add_argument("--api-version", help="Azure's api-version")
    parser.add_argument("--region", help="the AWS region a Bedrock backend signs for")
    parser.add_argument("--entra-tenant-id", help="Azure: authenticate with Entra ID (with the two below)")
    parser.add_argument("--entra-client-id")
    parser.add_argument("--entra-client-secret-env", metavar="NAME")
    parser.add_argument("--entra-authority")


def _fields(args: argparse.Namespace) -> dict[str, Any]:
    """The options given, as the backend service takes them."""
    fields: dict[str, Any] = {}
    for name in ("kind", "base_url", "timeout_seconds", "api_version", "region", "credential_ref"):
        if getattr(args, name, None) is not None:
            fields[name] = getattr(args, name)
    if args.secret_stdin:
        fields["secret"] = sys.stdin.read().strip()
    elif args.secret_env:
        value = os.environ.get(args.secret_env, "").strip()
        if not value:
            raise ConfigError(f"--secret-env: the environment variable {args.secret_env} is not set or empty")
        fields["secret"] = value
    entra = {
        "tenant_id": args.entra_tenant_id,
        "client_id": args.entra_client_id,
        "client_secret_env": args.entra_client_secret_env,
        "authority": args.entra_authority,
    }
    if any(entra.values()):
        fields["entra"] = {name: value for name, value in entra.items() if value is not None}
    return fields


def _list(_args: argparse.Namespace) -> None:
    async def run() -> None:
        async with control() as plane:
            infos = await plane.backends.list()
        print(f"{'backend':32}  {'kind':9}  {'source':6}  {'credential':32}  used by")
        for info in infos:
            view = info.view
            credential = view["secret"] or view["credential_ref"] or "-"
            print(
                f"{info.backend.name[:32]:32}  {info.backend.kind:9}  {info.backend.source:6}  "
                f"{credential[:32]:32}  {len(info.used_by)} version(s)"
            )

    asyncio.run(run())


def _show(args: argparse.Namespace) -> None:
    async def run() -> None:
        async with control() as plane:
            print_json(_shown(await plane.backends.get(args.backend)))

    asyncio.run(run())


def _create(args: argparse.Namespace) -> None:
    from gateway.audit.actor import cli_actor

    fields = _fields(args)

    async def run() -> None:
        async with control() as plane:
            info = await plane.backends.create(cli_actor(), args.name, fields)
        print_json(_shown(info))

    asyncio.run(run())


def _update(args: argparse.Namespace) -> None:
    from gateway.audit.actor import cli_actor

    changes = _fields(args)
    for name in args.clear:
        if name == "credential":
            changes |= {"secret": None, "credential_ref": None, "entra": None}
        else:
            changes[name] = None
    if not changes:
        raise ConfigError("nothing to change: give an option (see `gateway backends update --help`)")

    async def run() -> None:
        async with control() as plane:
            info = await plane.backends.update(cli_actor(), args.backend, changes)
        print_json(_shown(info))

    asyncio.run(run())


def _delete(args: argparse.Namespace) -> None:
    from gateway.audit.actor import cli_actor

    async def run() -> None:
        async with control() as plane:
            _, name = await plane.backends.delete(cli_actor(), args.backend)
        say(f"deleted backend {name}")

    asyncio.run(run())


def _new_key(_args: argparse.Namespace) -> None:
    from gateway.vault.fernet import new_key

    print(new_key())
    say("put it first in GATEWAY_ENCRYPTION_KEYS (keep the old keys after it until `re-encrypt` has run)")


def _re_encrypt(_args: argparse.Namespace) -> None:
    from gateway.audit.actor import cli_actor

    async def run() -> None:
        async with control() as plane:
            count = await plane.backends.re_encrypt(cli_actor())
        print(count)
        say(f"re-encrypted {count} stored secret(s) under the first key; the older keys may now be removed")

    asyncio.run(run())


def _shown(info: BackendInfo) -> Any:
    import msgspec

    from gateway.admin.backend_schemas import BackendView

    return msgspec.to_builtins(BackendView.of(info))
