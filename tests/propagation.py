"""How fast a control-plane change made on one replica takes effect on another.

Two ``gateway serve`` processes share one PostgreSQL and one Redis. A change is made through the
admin API of replica A (a key revoked, a model version promoted or rolled back, a limit set or
removed, a backend changed); replica B is asked, request after request, until it answers the new
way. The delay is from the moment the change was sent to A until B's first answer that shows it.

The servers run with ``GATEWAY_CHANGE_CHECK_SECONDS`` set far beyond any wait here, so what brings
a change to B in time is the Redis change notice, not the periodic SQL check.

As a script (the figures the README and the issue note quote)::

    python tests/propagation.py [--rounds 25]

Each round makes seven changes (a key revoked, a version promoted, then rolled back, a limit set,
then removed, a backend pointed elsewhere, then back).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from fakes.fake_upstream import FakeUpstream
from harness import ADMIN_KEY, REDIS_URL, models_yaml
from sqlalchemy import text
from test_serve import _free_port, _run

from gateway.db.engine import create_engine

DATABASE_URL = os.environ.get(
    "GATEWAY_TEST_REPLICAS_DATABASE_URL", "postgresql+asyncpg://gateway:gateway@127.0.0.1:5432/gateway_replicas"
)
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
MODEL = "propagated"
PRICES = {"input": 1_000_000, "output": 2_000_000}
FIRST, SECOND = 7, 9
"""Completion tokens of versions 1 and 2 (``tokens-12-7``, ``tokens-12-9``): a reply says which served."""
MOVED = "moved"
"""A model on an API-made backend of the same name, which the backend round points away and back."""
NOWHERE = "http://127.0.0.1:9/v1"
WAIT_LIMIT = 30.0
"""How long B is asked before a change counts as never arrived: far below the SQL check's interval."""


@dataclass
class Cluster:
    a: str
    b: str
    env: dict[str, str]
    http: httpx.AsyncClient
    upstream: str = ""
    delays: dict[str, list[float]] = field(default_factory=dict)

    async def new_key(self) -> tuple[str, str]:
        """A fresh key made on A, known to B (B has answered it): its secret and id."""
        made = await self.http.post(f"{self.a}/admin/keys", headers=ADMIN, json={"name": "propagation"})
        assert made.status_code == 201, made.text
        secret, key_id = made.json()["key"], made.json()["info"]["id"]
        assert await self.status_on_b(secret) == 200
        return secret, key_id

    async def status_on_b(self, secret: str) -> int:
        return (await self._chat(self.b, secret)).status_code

    async def served_on_b(self, secret: str) -> int:
        """Which version answered on B, by its completion tokens."""
        response = await self._chat(self.b, secret)
        assert response.status_code == 200, response.text
        return int(response.json()["usage"]["completion_tokens"])

    async def _chat(self, base: str, secret: str, model: str = MODEL) -> httpx.Response:
        body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
        return await self.http.post(
            f"{base}/v1/chat/completions", json=body, headers={"authorization": f"Bearer {secret}"}
        )

    async def change(
        self, kind: str, make: Callable[[], Awaitable[httpx.Response]], seen: Callable[[], Awaitable[bool]]
    ) -> float:
        """Make a change on A; the seconds until B shows it (recorded under ``kind``)."""
        started = time.perf_counter()
        response = await make()
        assert response.status_code == 200, response.text
        while not await seen():
            if time.perf_counter() - started > WAIT_LIMIT:
                raise AssertionError(f"{kind}: replica B did not take up the change within {WAIT_LIMIT:.0f} s")
        delay = time.perf_counter() - started
        self.delays.setdefault(kind, []).append(delay)
        return delay

    async def revoke_round(self) -> None:
        secret, key_id = await self.new_key()

        async def refused() -> bool:
            return await self.status_on_b(secret) == 401

        await self.change(
            "key revoked", lambda: self.http.post(f"{self.a}/admin/keys/{key_id}/revoke", headers=ADMIN), refused
        )

    async def version_round(self, secret: str) -> None:
        """Version 2 promoted (B serves it), then rolled back (B serves version 1 again)."""
        base = f"{self.a}/admin/models/{MODEL}"

        async def serves(tokens: int) -> bool:
            return await self.served_on_b(secret) == tokens

        promote = lambda: self.http.post(f"{base}/versions/2/promote", headers=ADMIN, json={"to": "active"})  # noqa: E731
        await self.change("version promoted", promote, lambda: serves(SECOND))
        rollback = lambda: self.http.post(f"{base}/rollback", headers=ADMIN)  # noqa: E731
        await self.change("version rolled back", rollback, lambda: serves(FIRST))

    async def limit_round(self) -> None:
        """A key's limit set on A (B's snapshot holds it: its usage view lists it), then removed."""
        _, key_id = await self.new_key()
        target = {"scope": "key", "name": key_id}

        async def on_b() -> bool:
            usage = await self.http.get(f"{self.b}/admin/quotas/usage", headers=ADMIN, params={"key": key_id})
            assert usage.status_code == 200, usage.text
            return any(row["scope"] == "key" and row["name"] == key_id for row in usage.json()["data"])

        async def absent() -> bool:
            return not await on_b()

        put = lambda: self.http.put(  # noqa: E731
            f"{self.a}/admin/quotas/limits", headers=ADMIN, json={**target, "requests_per_minute": 100}
        )
        await self.change("limit set", put, on_b)
        listed = (await self.http.get(f"{self.a}/admin/quotas/limits", headers=ADMIN)).json()["api"]
        limit_id = next(limit["id"] for limit in listed if limit["name"] == key_id)
        remove = lambda: self.http.delete(f"{self.a}/admin/quotas/limits/{limit_id}", headers=ADMIN)  # noqa: E731
        await self.change("limit removed", remove, absent)

    async def backend_round(self, secret: str) -> None:
        """The backend of model ``moved`` pointed elsewhere on A (B's requests fail: 502), then back."""

        async def answers(status: int) -> bool:
            return (await self._chat(self.b, secret, MOVED)).status_code == status

        async def point(url: str) -> httpx.Response:
            return await self.http.patch(f"{self.a}/admin/backends/{MOVED}", headers=ADMIN, json={"base_url": url})

        await self.change("backend changed", lambda: point(NOWHERE), lambda: answers(502))
        await self.change("backend changed", lambda: point(self.upstream), lambda: answers(200))

    def summary(self) -> str:
        lines = []
        every = [d for delays in self.delays.values() for d in delays]
        for kind, delays in [*self.delays.items(), ("all changes", every)]:
            ms = sorted(d * 1000 for d in delays)
            lines.append(
                f"{kind:20} n={len(ms):3}  p50 {statistics.median(ms):6.1f} ms  "
                f"p95 {ms[max(0, round(len(ms) * 0.95) - 1)]:6.1f} ms  max {ms[-1]:6.1f} ms"
            )
        return "\n".join(lines)


async def _setup_model(http: httpx.AsyncClient, a: str, upstream: str) -> None:
    backend = {"name": MOVED, "kind": "openai", "base_url": upstream}
    made = await http.post(f"{a}/admin/backends", headers=ADMIN, json=backend)
    assert made.status_code == 201, made.text
    for model, spec in ((MOVED, {"backend": MOVED, "upstream_model": "fake-tokens-12-7", "prices": PRICES}),):
        assert (await http.post(f"{a}/admin/models", headers=ADMIN, json={"name": model})).status_code == 201
        assert (await http.post(f"{a}/admin/models/{model}/versions", headers=ADMIN, json=spec)).status_code == 201
        promoted = await http.post(f"{a}/admin/models/{model}/versions/1/promote", headers=ADMIN, json={"to": "active"})
        assert promoted.status_code == 200, promoted.text
    made = await http.post(f"{a}/admin/models", headers=ADMIN, json={"name": MODEL})
    assert made.status_code == 201, made.text
    for tokens in (FIRST, SECOND):
        spec = {"backend": "fake", "upstream_model": f"fake-tokens-12-{tokens}", "prices": PRICES}
        version = await http.post(f"{a}/admin/models/{MODEL}/versions", headers=ADMIN, json=spec)
        assert version.status_code == 201, version.text
    active = await http.post(f"{a}/admin/models/{MODEL}/versions/1/promote", headers=ADMIN, json={"to": "active"})
    assert active.status_code == 200, active.text


@contextlib.asynccontextmanager
async def cluster(tmp: Path, *, change_check_seconds: float = 3600.0) -> AsyncIterator[Cluster]:
    """Two replicas on a fresh schema of the replicas database, model ``propagated`` at version 1."""
    engine = create_engine(DATABASE_URL)
    async with engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await engine.dispose()
    async with FakeUpstream(record=False) as upstream:
        (tmp / "models.yaml").write_text(models_yaml(upstream.base_url))
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")},
            "GATEWAY_DATABASE_URL": DATABASE_URL,
            "GATEWAY_REDIS_URL": REDIS_URL,
            "GATEWAY_MODELS_FILE": str(tmp / "models.yaml"),
            "GATEWAY_ADMIN_KEY": ADMIN_KEY,
            "GATEWAY_AUTO_MIGRATE": "false",
            "GATEWAY_CHANGE_CHECK_SECONDS": str(change_check_seconds),
            # Nor the periodic full rebuild: a limit arrives by the notice too.
            "GATEWAY_QUOTA_REFRESH_SECONDS": str(max(change_check_seconds, 10.0)),
        }
        await _run(env, "migrate")
        async with _servers(env, tmp) as (a, b), httpx.AsyncClient(timeout=30) as http:
            await _setup_model(http, a, upstream.base_url)
            yield Cluster(a, b, env, http, upstream.base_url)


@contextlib.asynccontextmanager
async def _servers(env: dict[str, str], tmp: Path) -> AsyncIterator[tuple[str, str]]:
    ports = [_free_port(), _free_port()]
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway",
            "serve",
            "--port",
            str(port),
            env={**env, "GATEWAY_DATA_DIR": str(tmp / f"replica-{port}")},
            cwd=tmp,
        )
        for port in ports
    ]
    try:
        bases = [f"http://127.0.0.1:{port}" for port in ports]
        await asyncio.gather(*(_healthy(base) for base in bases))
        yield bases[0], bases[1]
    finally:
        for process in processes:
            process.terminate()
        await asyncio.gather(*(asyncio.wait_for(p.wait(), 30) for p in processes))


async def _healthy(base: str, within: float = 180.0) -> None:
    """Until a replica answers, on a deadline a loaded machine meets (start-up loads the tokenizer)."""
    deadline = time.monotonic() + within
    async with httpx.AsyncClient() as http:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                if (await http.get(base + "/healthz")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise AssertionError("gateway serve did not become healthy")


async def measure(tmp: Path, rounds: int) -> Cluster:
    async with cluster(tmp) as replicas:
        reader, _ = await replicas.new_key()
        for _ in range(rounds):
            await replicas.revoke_round()
            await replicas.version_round(reader)
            await replicas.limit_round()
            await replicas.backend_round(reader)
        return replicas


async def _main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=25, help="rounds of seven changes each")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        replicas = await measure(Path(tmp), args.rounds)
    print(replicas.summary())
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(_main()))
