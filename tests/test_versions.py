"""Model versions through the admin API: every lifecycle move (the illegal ones refused, changing
nothing), the audit log's before and after for each, canaries sticky by key and by end user,
rollback serving and recording the old version, output caps, and prices that change on a date."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import openai
import pytest
from harness import ADMIN_KEY, Gateway
from sqlalchemy import func, select, text

from gateway.db.models import AuditEntry, ModelVersion

ADMIN = {"authorization": f"Bearer {ADMIN_KEY}"}
PRICES = {"input": 1_000_000, "output": 2_000_000}


def _spec(upstream: str = "fake-tokens-12-7", **extra: Any) -> dict[str, Any]:
    return {"backend": "fake", "upstream_model": upstream, "prices": PRICES, **extra}


async def _model(http: httpx.AsyncClient, *specs: dict[str, Any]) -> str:
    """A new API-managed model with a draft version per spec; returns its name."""
    name = f"lc-{uuid.uuid4().hex[:8]}"
    created = await http.post("/admin/models", headers=ADMIN, json={"name": name})
    assert created.status_code == 201, created.text
    for spec in specs:
        version = await http.post(f"/admin/models/{name}/versions", headers=ADMIN, json=spec)
        assert version.status_code == 201, version.text
        assert version.json()["state"] == "draft"
    return name


async def _promote(http: httpx.AsyncClient, name: str, number: int, **body: Any) -> httpx.Response:
    return await http.post(f"/admin/models/{name}/versions/{number}/promote", headers=ADMIN, json=body)


async def _states(http: httpx.AsyncClient, name: str) -> dict[int, tuple[str, int | None]]:
    model = (await http.get(f"/admin/models/{name}", headers=ADMIN)).json()
    return {v["number"]: (v["state"], v["canary_share"]) for v in model["versions"]}


async def _audit(gateway: Gateway, name: str) -> list[AuditEntry]:
    async with gateway.runtime.sessions() as session:
        rows = await session.scalars(
            select(AuditEntry).where(AuditEntry.object_name.like(f"{name}%")).order_by(AuditEntry.id)
        )
        return list(rows.all())


async def _served_by(gateway: Gateway, key: str, model: str, **extra: Any) -> int:
    """Which version number served one chat request (from its usage record)."""
    client = gateway.openai(key)
    raw = await client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": "hi"}], **extra
    )
    row = await gateway.usage(raw.headers["x-request-id"])
    async with gateway.runtime.sessions() as session:
        version = await session.get(ModelVersion, row.model_version_id)
    assert version is not None
    return version.number


async def test_every_legal_move_is_made_and_audited_with_its_before_and_after(gateway: Gateway, key: str) -> None:
    async with gateway.http() as http:
        name = await _model(http, _spec(), _spec("fake-tokens-20-9"), _spec("fake-tokens-30-3"))
        with pytest.raises(openai.NotFoundError):  # drafts only: not served yet
            await gateway.openai(key).chat.completions.create(model=name, messages=[{"role": "user", "content": "hi"}])
        assert (await _promote(http, name, 1, to="active")).status_code == 200
        assert (await _promote(http, name, 2, to="canary", share=30)).status_code == 200
        assert (await _promote(http, name, 2, to="canary", share=60)).status_code == 200  # the share moves
        assert await _states(http, name) == {1: ("active", None), 2: ("canary", 60), 3: ("draft", None)}
        assert (await _promote(http, name, 2, to="active")).status_code == 200
        assert await _states(http, name) == {1: ("retired", None), 2: ("active", None), 3: ("draft", None)}
        rolled = await http.post(f"/admin/models/{name}/rollback", headers=ADMIN)
        assert rolled.status_code == 200, rolled.text
        assert rolled.json()["active_version"] == 1
        retired = await http.post(f"/admin/models/{name}/versions/3/retire", headers=ADMIN)
        assert retired.status_code == 200, retired.text
        assert await _states(http, name) == {1: ("active", None), 2: ("retired", None), 3: ("retired", None)}
    moves = [(e.action, e.object_name, e.before, e.after) for e in await _audit(gateway, name)]
    states = [move for move in moves if move[0] not in ("model.create", "version.create")]
    assert states == [
        ("version.activate", f"{name} v1", {"number": 1, "state": "draft"}, {"number": 1, "state": "active"}),
        (
            "version.canary",
            f"{name} v2",
            {"number": 2, "state": "draft"},
            {"number": 2, "state": "canary", "canary_share": 30},
        ),
        (
            "version.canary",
            f"{name} v2",
            {"number": 2, "state": "canary", "canary_share": 30},
            {"number": 2, "state": "canary", "canary_share": 60},
        ),
        ("version.retire", f"{name} v1", {"number": 1, "state": "active"}, {"number": 1, "state": "retired"}),
        (
            "version.activate",
            f"{name} v2",
            {"number": 2, "state": "canary", "canary_share": 60},
            {"number": 2, "state": "active"},
        ),
        ("version.retire", f"{name} v2", {"number": 2, "state": "active"}, {"number": 2, "state": "retired"}),
        ("version.activate", f"{name} v1", {"number": 1, "state": "retired"}, {"number": 1, "state": "active"}),
        ("version.retire", f"{name} v3", {"number": 3, "state": "draft"}, {"number": 3, "state": "retired"}),
    ]
    created = [move for move in moves if move[0] == "version.create"]
    assert [m[1] for m in created] == [f"{name} v1", f"{name} v2", f"{name} v3"]
    assert created[1][2] is None and created[1][3]["upstream_model"] == "fake-tokens-20-9"
    entries = await _audit(gateway, name)
    assert {(e.actor, e.role, e.source) for e in entries} == {("admin-key", "superuser", "api")}
    assert all(e.remote == "127.0.0.1" for e in entries)
    assert [e.generation for e in entries] == sorted(e.generation for e in entries)


@pytest.mark.parametrize(
    ("setup", "move", "status", "param"),
    [
        ("fresh", ("canary", 1, {"to": "canary", "share": 10}), 409, None),  # no active version to share with
        ("fresh", ("rollback", None, None), 409, None),  # nothing active to roll back from
        ("one", ("rollback", None, None), 409, None),  # nothing active before it
        ("one", ("promote", 1, {"to": "active"}), 409, None),  # already active
        ("one", ("promote", 1, {"to": "canary", "share": 10}), 409, None),  # the active one cannot be a canary
        ("one", ("retire", 1, None), 409, None),  # a model keeps one active version
        ("one", ("promote", 2, {"to": "canary", "share": 0}), 400, "share"),
        ("one", ("promote", 2, {"to": "canary", "share": 100}), 400, "share"),
        ("one", ("promote", 2, {"to": "canary"}), 400, "share"),
        ("one", ("promote", 2, {"to": "active", "share": 5}), 400, "share"),
        ("one", ("promote", 2, {"to": "retired"}), 400, "to"),
        ("one", ("promote", 2, {"to": "active", "colour": "red"}), 400, "colour"),
        ("one", ("promote", 9, {"to": "active"}), 404, "version"),
        ("canary", ("promote", 3, {"to": "canary", "share": 5}), 409, None),  # one canary at a time
        ("canary", ("promote", 2, {"to": "canary", "share": 20}), 409, None),  # already at that share
        ("retired", ("retire", 2, None), 409, None),  # already retired
    ],
)
async def test_an_illegal_move_is_refused_and_changes_nothing(
    gateway: Gateway, setup: str, move: tuple[str, int | None, dict[str, Any] | None], status: int, param: str | None
) -> None:
    async with gateway.http() as http:
        name = await _model(http, _spec(), _spec("fake-tokens-20-9"), _spec("fake-tokens-30-3"))
        if setup != "fresh":
            assert (await _promote(http, name, 1, to="active")).status_code == 200
        if setup == "canary":
            assert (await _promote(http, name, 2, to="canary", share=20)).status_code == 200
        if setup == "retired":
            assert (await http.post(f"/admin/models/{name}/versions/2/retire", headers=ADMIN)).status_code == 200
        before, audited = await _states(http, name), len(await _audit(gateway, name))
        kind, number, body = move
        if kind == "rollback":
            response = await http.post(f"/admin/models/{name}/rollback", headers=ADMIN)
        elif kind == "retire":
            response = await http.post(f"/admin/models/{name}/versions/{number}/retire", headers=ADMIN)
        else:
            response = await http.post(f"/admin/models/{name}/versions/{number}/promote", headers=ADMIN, json=body)
        assert response.status_code == status, response.text
        error = response.json()["error"]
        assert error["param"] == param and error["message"], error
        assert await _states(http, name) == before
    assert len(await _audit(gateway, name)) == audited, "a refused move writes no audit entry"


@pytest.mark.parametrize(
    ("spec", "param"),
    [
        ({"upstream_model": "x"}, "backend"),
        ({"backend": "fake", "prices": {"input": -1}}, "prices.input"),
        ({"backend": "fake", "prices": {"input": 1.5}}, "prices.input"),
        ({"backend": "fake", "prices": {"inptu": 1}}, "prices.inptu"),
        ({"backend": "fake", "params": {"model": "x"}}, "params"),
        ({"backend": "fake", "limits": {"max_tokens": 0}}, "limits.max_tokens"),
        ({"backend": "fake", "context_window": -5}, "context_window"),
        ({"backend": "fake", "capabilities": ["Vision!"]}, "capabilities"),
        (
            {"backend": "fake", "price_changes": [{"effective_from": "someday", "prices": {}}]},
            "price_changes[0].effective_from",
        ),
        (
            {"backend": "fake", "price_changes": [{"effective_from": "2027-01-01T00:00:00", "prices": {}}]},
            "price_changes[0].effective_from",
        ),
        ({"backend": "fake", "colour": "red"}, "colour"),
    ],
)
async def test_a_bad_version_is_refused_naming_the_field(gateway: Gateway, spec: dict[str, Any], param: str) -> None:
    async with gateway.http() as http:
        name = await _model(http)
        response = await http.post(f"/admin/models/{name}/versions", headers=ADMIN, json=spec)
        assert response.status_code == 400, response.text
        assert response.json()["error"]["param"] == param, response.json()
        assert (await http.get(f"/admin/models/{name}", headers=ADMIN)).json()["versions"] == []


async def test_a_version_on_an_unknown_backend_is_a_404_naming_the_field(gateway: Gateway) -> None:
    async with gateway.http() as http:
        name = await _model(http)
        response = await http.post(f"/admin/models/{name}/versions", headers=ADMIN, json={"backend": "no-such"})
        assert response.status_code == 404, response.text
        assert response.json()["error"]["param"] == "backend"
        assert (await http.get(f"/admin/models/{name}", headers=ADMIN)).json()["versions"] == []


async def test_price_changes_take_the_order_of_their_dates(gateway: Gateway) -> None:
    later = {"effective_from": "2031-01-01T00:00:00Z", "prices": {"input": 3}}
    sooner = {"effective_from": "2030-01-01t00:00:00z", "prices": {"input": 2}}
    async with gateway.http() as http:
        name = await _model(http)
        url = f"/admin/models/{name}/versions"
        made = await http.post(url, headers=ADMIN, json={"backend": "fake", "price_changes": [later, sooner]})
        twice = await http.post(url, headers=ADMIN, json={"backend": "fake", "price_changes": [later, later]})
    assert made.status_code == 201, made.text
    assert [c["effective_from"][:4] for c in made.json()["config"]["price_changes"]] == ["2030", "2031"]
    assert twice.status_code == 400 and twice.json()["error"]["param"] == "price_changes[1].effective_from"


async def test_a_model_name_taken_or_unknown(gateway: Gateway) -> None:
    async with gateway.http() as http:
        taken = await http.post("/admin/models", headers=ADMIN, json={"name": "chat-model"})
        bad = await http.post("/admin/models", headers=ADMIN, json={"name": "has space"})
        missing = await http.get("/admin/models/no-such-model", headers=ADMIN)
        version = await http.post("/admin/models/no-such-model/versions", headers=ADMIN, json=_spec())
    assert taken.status_code == 409 and taken.json()["error"]["param"] == "name"
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "name"
    assert missing.status_code == 404 and missing.json()["error"]["param"] == "model"
    assert version.status_code == 404


async def test_after_a_rollback_the_old_version_serves_and_is_recorded(gateway: Gateway, key: str) -> None:
    async with gateway.http() as http:
        name = await _model(http, _spec("fake-tokens-12-7"), _spec("fake-tokens-20-9"))
        await _promote(http, name, 1, to="active")
        assert await _served_by(gateway, key, name) == 1
        await _promote(http, name, 2, to="active")
        assert await _served_by(gateway, key, name) == 2
        assert (await http.post(f"/admin/models/{name}/rollback", headers=ADMIN)).status_code == 200
    gateway.upstream.clear_requests()
    client = gateway.openai(key)
    raw = await client.chat.completions.with_raw_response.create(
        model=name, messages=[{"role": "user", "content": "x"}]
    )
    row = await gateway.usage(raw.headers["x-request-id"])
    [sent] = [r for r in gateway.upstream.requests if r.path == "/v1/chat/completions"]
    assert sent.body["model"] == "fake-tokens-12-7"
    assert (row.prompt_tokens, row.completion_tokens) == (12, 7)
    async with gateway.runtime.sessions() as session:
        version = await session.get(ModelVersion, row.model_version_id)
    assert version is not None and version.number == 1
    assert row.cost_nano_usd == 12 * 1_000 + 7 * 2_000  # v1's prices: 1 and 2 USD per million


async def test_a_canary_takes_its_share_sticky_per_key_and_per_end_user(gateway: Gateway) -> None:
    async with gateway.http() as http:
        name = await _model(http, _spec("fake-tokens-12-7"), _spec("fake-tokens-20-9"))
        await _promote(http, name, 1, to="active")
        assert (await _promote(http, name, 2, to="canary", share=50)).status_code == 200
    keys = [await gateway.create_key(f"canary-{i}") for i in range(24)]
    sides = {}
    for key in keys:
        served = {await _served_by(gateway, key, name) for _ in range(3)}
        assert len(served) == 1, "a key stays on one side of the canary"
        sides[key] = served.pop()
    canary = sum(1 for side in sides.values() if side == 2)
    assert 3 <= canary <= 21, canary  # binomial(24, 0.5): outside this 1 run in ~3000
    # Naming the end user moves the stickiness to the user: one key, many users, both sides.
    users = {
        f"user-{i}": {await _served_by(gateway, keys[0], name, user=f"user-{i}") for _ in range(2)} for i in range(16)
    }
    assert all(len(side) == 1 for side in users.values())
    assert {side for served in users.values() for side in served} == {1, 2}
    # Growing the share keeps everyone already on the canary there.
    async with gateway.http() as http:
        await _promote(http, name, 2, to="canary", share=90)
    for key, side in sides.items():
        if side == 2:
            assert await _served_by(gateway, key, name) == 2


async def test_a_version_caps_output_tokens(gateway: Gateway, key: str) -> None:
    async with gateway.http() as http:
        name = await _model(http, _spec(limits={"max_tokens": 50}))
        await _promote(http, name, 1, to="active")
    client = gateway.openai(key)
    gateway.upstream.clear_requests()
    await client.chat.completions.create(model=name, messages=[{"role": "user", "content": "x"}])
    await client.chat.completions.create(model=name, messages=[{"role": "user", "content": "x"}], max_tokens=20)
    sent = [r.body.get("max_tokens") for r in gateway.upstream.requests if r.path == "/v1/chat/completions"]
    assert sent == [50, 20]
    http_client = gateway.http()
    async with http_client as http:
        refused = await http.post(
            "/v1/chat/completions",
            headers={"authorization": f"Bearer {key}"},
            json={"model": name, "messages": [{"role": "user", "content": "x"}], "max_completion_tokens": 51},
        )
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "max_completion_tokens"


async def test_a_request_is_costed_at_the_price_in_force_when_it_was_made(gateway: Gateway, key: str) -> None:
    switch = (datetime.now(UTC) + timedelta(seconds=2)).replace(microsecond=0)
    changes = [
        {"effective_from": "2000-01-01T00:00:00Z", "prices": {"input": 2_000_000, "output": 4_000_000}},
        {"effective_from": switch.isoformat(), "prices": {"input": 3_000_000, "output": 6_000_000}},
        {"effective_from": "2100-01-01T00:00:00Z", "prices": {"input": 9_000_000, "output": 9_000_000}},
    ]
    async with gateway.http() as http:
        name = await _model(http, _spec(price_changes=changes))
        await _promote(http, name, 1, to="active")
    client = gateway.openai(key)
    first = await client.chat.completions.with_raw_response.create(
        model=name, messages=[{"role": "user", "content": "x"}]
    )
    # Wait for the announced change: sleep until it (a slow machine only makes the wait shorter).
    await asyncio.sleep(max(0.0, (switch - datetime.now(UTC)).total_seconds()) + 0.01)
    second = await client.chat.completions.with_raw_response.create(
        model=name, messages=[{"role": "user", "content": "x"}]
    )
    for raw in (first, second):
        row = await gateway.usage(raw.headers["x-request-id"])
        per_million = (3, 6) if row.started_at >= switch else (2, 4)  # base prices (1, 2) were replaced in 2000
        assert row.cost_nano_usd == 12 * per_million[0] * 1000 + 7 * per_million[1] * 1000, (row.started_at, switch)
        assert row.unpriced is False
    assert (await gateway.usage(second.headers["x-request-id"])).cost_nano_usd == 12 * 3000 + 7 * 6000


async def test_an_unpriced_version_is_served_and_flagged_not_free(gateway: Gateway, key: str) -> None:
    async with gateway.http() as http:
        name = await _model(http, {"backend": "fake", "upstream_model": "fake-tokens-12-7"})
        await _promote(http, name, 1, to="active")
        zero = await _model(http, {"backend": "fake", "upstream_model": "fake-tokens-12-7", "prices": {}})
        await _promote(http, zero, 1, to="active")
    client = gateway.openai(key)
    unpriced = await client.chat.completions.with_raw_response.create(
        model=name, messages=[{"role": "user", "content": "x"}]
    )
    free = await client.chat.completions.with_raw_response.create(
        model=zero, messages=[{"role": "user", "content": "x"}]
    )
    unpriced_row = await gateway.usage(unpriced.headers["x-request-id"])
    free_row = await gateway.usage(free.headers["x-request-id"])
    assert (unpriced_row.unpriced, unpriced_row.cost_nano_usd) == (True, 0)
    assert (free_row.unpriced, free_row.cost_nano_usd) == (False, 0)  # prices of zero: free by choice


async def test_diff_and_history(gateway: Gateway) -> None:
    async with gateway.http() as http:
        name = await _model(
            http, _spec(), _spec("fake-tokens-20-9", prices={"input": 5, "output": 2_000_000}, context_window=8192)
        )
        await _promote(http, name, 1, to="active")
        diff = await http.get(f"/admin/models/{name}/diff", headers=ADMIN, params={"first": 1, "second": 2})
        history = await http.get(f"/admin/models/{name}/history", headers=ADMIN)
        unknown = await http.get(f"/admin/models/{name}/diff", headers=ADMIN, params={"first": 1, "second": 7})
    assert diff.status_code == 200, diff.text
    assert diff.json()["changes"] == {
        "context_window": {"from": None, "to": 8192},
        "prices.input": {"from": 1_000_000, "to": 5},
        "prices.cache_write_input": {"from": 1_000_000, "to": 5},
        "prices.cached_input": {"from": 1_000_000, "to": 5},
        "upstream_model": {"from": "fake-tokens-12-7", "to": "fake-tokens-20-9"},
    }
    events = history.json()["events"]
    assert [e["action"] for e in events] == ["model.create", "version.create", "version.create", "version.activate"]
    assert unknown.status_code == 404 and unknown.json()["error"]["param"] == "version"


async def test_the_audit_log_cannot_be_edited_or_deleted(gateway: Gateway) -> None:
    async with gateway.http() as http:
        await _model(http)
    async with gateway.runtime.sessions() as session:
        count = await session.scalar(select(func.count()).select_from(AuditEntry))
    for statement in ("UPDATE audit_log SET actor = 'someone else'", "DELETE FROM audit_log"):
        with pytest.raises(Exception, match="append-only"):
            async with gateway.runtime.sessions.begin() as session:
                await session.execute(text(statement))
    async with gateway.runtime.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(AuditEntry)) == count
