"""``gateway orgs|teams|users|tokens`` against a running gateway's database: a round trip through
every command, what they print, their one-line errors (exit 2), and that a token the CLI makes
is an admin token of the running gateway, refused there at once once the CLI revokes it."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from dataclasses import dataclass
from typing import Any

from harness import Gateway
from sqlalchemy import select

from gateway.db.models import AuditEntry


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        assert self.returncode == 0, self.stderr
        return json.loads(self.stdout)


def _env(gateway: Gateway) -> dict[str, str]:
    settings = gateway.runtime.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env |= {"GATEWAY_DATA_DIR": settings.data_dir, "GATEWAY_DATABASE_URL": settings.database_url}
    if settings.redis_url:
        env["GATEWAY_REDIS_URL"] = settings.redis_url
    return env


async def _cli(gateway: Gateway, *args: str) -> Ran:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        *args,
        env=_env(gateway),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await process.communicate()
    assert process.returncode is not None
    return Ran(process.returncode, stdout.decode(), stderr.decode())


def _refused(ran: Ran, *words: str) -> None:
    assert ran.returncode == 2, ran
    assert ran.stderr.startswith("gateway: ") and ran.stderr.count("\n") == 1, ran.stderr
    assert all(word in ran.stderr for word in words), ran.stderr


async def test_orgs_teams_users_and_tokens_round_trip_through_the_cli(gateway: Gateway) -> None:
    org, email = f"cli-{uuid.uuid4().hex[:8]}", f"cli-{uuid.uuid4().hex[:8]}@example.com"
    made = (await _cli(gateway, "orgs", "create", org, "--description", "from the CLI")).json()
    assert made["name"] == org and made["description"] == "from the CLI"
    header, *rows = (await _cli(gateway, "orgs", "list")).stdout.splitlines()
    assert header.split() == ["id", "name", "description"]
    assert [made["id"], org, "from", "the", "CLI"] in [row.split() for row in rows]
    listed = (await _cli(gateway, "orgs", "list", "--json")).json()
    assert made in listed["data"]
    assert (await _cli(gateway, "orgs", "show", made["id"])).json() == made
    team = (await _cli(gateway, "teams", "create", org, "ml")).json()
    assert team["org_id"] == made["id"]
    assert (await _cli(gateway, "teams", "list", org)).stdout.splitlines()[1].split() == [team["id"], "ml", "-"]
    renamed = (await _cli(gateway, "teams", "update", org, "ml", "--name", "ml2", "--description", "d")).json()
    assert (renamed["name"], renamed["description"]) == ("ml2", "d")
    assert (await _cli(gateway, "teams", "show", org, team["id"])).json() == renamed

    user = (await _cli(gateway, "users", "create", email, "--org", org, "--team", "ml2", "--role", "org_admin")).json()
    assert (user["role"], user["team_id"]) == ("org_admin", team["id"])
    users = (await _cli(gateway, "users", "list", "--org", org)).stdout.splitlines()
    assert users[1].split() == [user["id"], email, "org_admin", team["id"], "active"]
    created = await _cli(gateway, "tokens", "create", email, "--name", "laptop", "--expires", "7d")
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip()
    assert secret.startswith("sk-gwa-") and "shown only once" in created.stderr
    tokens = (await _cli(gateway, "tokens", "list", email, "--json")).json()["data"]
    assert [t["prefix"] for t in tokens] == [secret[:13]] and secret not in json.dumps(tokens)

    async with gateway.http() as http:
        as_user = {"authorization": f"Bearer {secret}"}
        seen = await http.get("/admin/orgs", headers=as_user)
        assert seen.status_code == 200 and [o["name"] for o in seen.json()["data"]] == [org]
        revoked = await _cli(gateway, "tokens", "revoke", email, secret[:13])
        assert revoked.returncode == 0 and revoked.stdout.startswith("revoked admin token"), revoked.stderr
        assert (await http.get("/admin/orgs", headers=as_user)).status_code == 401

    changed = (await _cli(gateway, "users", "update", email, "--role", "none", "--team", "", "--disable")).json()
    assert (changed["role"], changed["team_id"], changed["disabled"]) == (None, None, True)
    _refused(await _cli(gateway, "orgs", "delete", org), "1 team", "1 user", "remove")
    _refused(await _cli(gateway, "users", "create", "x@example.com", "--org", org, "--role", "team_admin"), "team")
    _refused(await _cli(gateway, "users", "create", "not-an-email", "--org", org), "'email'")
    _refused(await _cli(gateway, "teams", "create", org, "ml2"), "ml2")
    _refused(await _cli(gateway, "orgs", "show", "no-such-org"), "No organization")
    _refused(await _cli(gateway, "tokens", "create", email, "--name", "t", "--expires", "soon"), "--expires")

    deleted = await _cli(gateway, "users", "delete", email)
    assert deleted.returncode == 0 and email in deleted.stderr
    assert (await _cli(gateway, "teams", "delete", org, "ml2")).returncode == 0
    orgs_gone = await _cli(gateway, "orgs", "delete", org)
    assert orgs_gone.returncode == 0, orgs_gone.stderr
    _refused(await _cli(gateway, "orgs", "show", org), "No organization")

    async with gateway.runtime.sessions() as session:
        entries = (
            await session.scalars(
                select(AuditEntry).where(AuditEntry.object_id.in_([made["id"], team["id"], user["id"]]))
            )
        ).all()
    assert {(e.source, e.role) for e in entries} == {("cli", "superuser")}
    assert all(e.actor.startswith("cli:") for e in entries)
    actions = {
        "org": ["create", "delete"],
        "team": ["create", "update", "delete"],
        "user": ["create", "update", "delete"],
    }
    assert sorted(e.action for e in entries) == sorted(f"{kind}.{a}" for kind, moves in actions.items() for a in moves)
