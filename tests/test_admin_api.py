"""The admin HTTP API: bad input is refused naming the field, keys and limits have typed shapes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from harness import ADMIN_KEY, Gateway

from gateway.admin.quota_schemas import LimitSpec

ADMIN = {"authorization": f"Bearer {ADMIN_KEY}"}


@pytest.mark.parametrize(
    ("body", "param", "wording"),
    [
        ({}, "name", "Missing required parameter: 'name'."),
        ({"nom": "x"}, "nom", "Unrecognized request argument supplied: 'nom'."),
        ({"name": "x", "colour": "red"}, "colour", "Unrecognized request argument supplied: 'colour'."),
        ({"name": "x", "expires_at": "someday"}, "expires_at", "Invalid value for 'expires_at': "),
        ({"name": 7}, "name", "Invalid value for 'name': Expected `str`, got `int`"),
        ({"name": "x", "models": ["chat-model", 3]}, "models[1]", "Invalid value for 'models[1]': "),
        ([1, 2], None, "Invalid request body: "),
    ],
)
async def test_a_bad_key_body_names_the_field(gateway: Gateway, body: Any, param: str | None, wording: str) -> None:
    async with gateway.http() as http:
        response = await http.post("/admin/keys", headers=ADMIN, json=body)
    error = response.json()["error"]
    assert response.status_code == 400, response.text
    assert error["param"] == param and error["message"].startswith(wording), error
    assert error["type"] == "invalid_request_error"


async def test_a_bad_query_parameter_names_it(gateway: Gateway) -> None:
    async with gateway.http() as http:
        missing = await http.get("/admin/quotas/usage", headers=ADMIN)
        ill_typed = await http.get("/admin/keys", headers=ADMIN, params={"include_revoked": "maybe"})
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "key"
    assert missing.json()["error"]["message"] == "Missing required parameter: 'key'."
    assert ill_typed.status_code == 400 and ill_typed.json()["error"]["param"] == "include_revoked"
    assert "'include_revoked'" in ill_typed.json()["error"]["message"]


async def test_a_key_expires_in_a_duration_as_the_cli_takes_it(gateway: Gateway) -> None:
    async with gateway.http() as http:
        before = datetime.now(UTC)
        created = await http.post("/admin/keys", headers=ADMIN, json={"name": "in-30d", "expires_in": "30d"})
        after = datetime.now(UTC)
        at = await http.post("/admin/keys", headers=ADMIN, json={"name": "at", "expires_at": "2031-01-02T03:04:05Z"})
        both = {"name": "x", "expires_at": "2031-01-02T03:04:05Z", "expires_in": "12h"}
        refused = [
            await http.post("/admin/keys", headers=ADMIN, json=body)
            for body in (both, {"name": "x", "expires_in": "soon"}, {"name": "x", "expires_in": "99999999d"})
        ]
    assert created.status_code == 201, created.text
    expires = datetime.fromisoformat(created.json()["info"]["expires_at"])
    assert before + timedelta(days=30) <= expires <= after + timedelta(days=30)
    assert at.status_code == 201 and datetime.fromisoformat(at.json()["info"]["expires_at"]) == datetime(
        2031, 1, 2, 3, 4, 5, tzinfo=UTC
    )
    for response in refused:
        assert response.status_code == 400 and response.json()["error"]["param"] == "expires_in", response.text
    assert "'expires_at' or 'expires_in'" in refused[0].json()["error"]["message"]
    assert "[0-9]{1,6}" in refused[2].json()["error"]["message"]  # at most six digits: no overflow


async def test_a_key_for_an_unknown_model_is_refused(gateway: Gateway) -> None:
    body = {"name": "typo", "models": ["chat-model", "nosuchmodel", "gpt-5-nope"]}
    async with gateway.http() as http:
        before = len((await http.get("/admin/keys", headers=ADMIN)).json()["data"])
        response = await http.post("/admin/keys", headers=ADMIN, json=body)
        after = len((await http.get("/admin/keys", headers=ADMIN)).json()["data"])
    error = response.json()["error"]
    # 404 model_not_found, as for the same model on /v1: the request itself is well formed.
    assert response.status_code == 404 and error["param"] == "models", response.text
    assert error["code"] == "model_not_found"
    assert "'gpt-5-nope', 'nosuchmodel'" in error["message"] and "'chat-model'" not in error["message"]
    assert before == after, "nothing was created"


async def test_quota_usage_names_the_unit_of_every_number(gateway: Gateway) -> None:
    created = await gateway.runtime.keys.create("usage-units")
    target = {"scope": "key", "name": created.key.prefix}
    budget = {"micro_usd": 5_000_000, "period": "month"}
    async with gateway.http() as http:
        # Two limits: one on a scope, name and model replaces the one there before.
        for limits in (
            {"requests_per_minute": 10, "concurrent_requests": 2},
            {"model": "chat-model", "budget": budget},
        ):
            put = await http.put("/admin/quotas/limits", headers=ADMIN, json={**target, **limits})
            assert put.status_code == 200, put.text
        usage = await http.get("/admin/quotas/usage", headers=ADMIN, params={"key": created.key.prefix})
    assert usage.status_code == 200, usage.text
    rows = {row["metric"]: row for row in usage.json()["data"] if row["name"] == created.key.prefix}
    assert {metric: row["unit"] for metric, row in rows.items()} == {
        "requests": "requests",
        "concurrent": "requests_in_flight",
        "spend": "nano_usd",
    }
    assert rows["spend"]["limit"] == 5_000_000_000 and rows["spend"]["usd"] == "$0.00 / $5.00"
    assert rows["requests"]["usd"] is None


async def test_quota_routes_have_typed_schemas(gateway: Gateway) -> None:
    async with gateway.http() as http:
        schema = (await http.get("/schema/openapi.json")).json()
    paths = schema["paths"]

    def body_of(operation: dict[str, Any]) -> str:
        body = operation["requestBody"]["content"]["application/json"]["schema"]
        return str(body["allOf"][0]["$ref"])  # and a rule across its fields (at least one limit)

    def answer_of(operation: dict[str, Any]) -> str:
        return str(operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"])

    assert answer_of(paths["/admin/quotas/usage"]["get"]).endswith("/UsageView")
    assert answer_of(paths["/admin/quotas/limits"]["get"]).endswith("/LimitList")
    assert body_of(paths["/admin/quotas/limits"]["put"]).endswith("/LimitSpec")
    assert answer_of(paths["/admin/quotas/limits"]["put"]).endswith("/LimitView")
    assert answer_of(paths["/admin/quotas/limits/{limit_id}"]["delete"]).endswith("/LimitDeleted")
    components = schema["components"]["schemas"]
    assert "budget" in components["LimitSpec"]["properties"] and "unit" in components["UsageRow"]["properties"]
    assert "expires_in" in components["CreateKey"]["properties"]


@pytest.mark.parametrize(
    ("body", "param", "wording"),
    [
        ({"scope": "key", "tokens_per_minute": "lots"}, "tokens_per_minute", "Invalid value for 'tokens_per_minute'"),
        ({"scope": "key", "budget": {"period": "day"}}, "budget.micro_usd", "Missing required parameter"),
        ({"scope": "key", "budget": {"micro_usd": 1, "period": "day", "x": 1}}, "budget.x", "Unrecognized"),
        ({"requests_per_minute": 5}, "scope", "Missing required parameter: 'scope'."),
        ({"scope": "key", "concurrent_requests": 0}, "concurrent_requests", "expected a whole number >= 1"),
    ],
)
async def test_a_bad_limit_names_the_field(gateway: Gateway, body: dict[str, Any], param: str, wording: str) -> None:
    async with gateway.http() as http:
        response = await http.put("/admin/quotas/limits", headers=ADMIN, json=body)
    error = response.json()["error"]
    assert response.status_code == 400 and error["param"] == param and wording in error["message"], error


async def test_limits_from_the_file_and_the_api_have_one_shape(gateway: Gateway) -> None:
    spec = {"scope": "team", "name": "one-shape", "budget": {"micro_usd": 7_000_000, "period": "day"}}
    async with gateway.http() as http:
        put = await http.put("/admin/quotas/limits", headers=ADMIN, json=spec)
        listed = (await http.get("/admin/quotas/limits", headers=ADMIN)).json()
        removed = await http.delete(f"/admin/quotas/limits/{put.json()['id']}", headers=ADMIN)
    assert put.json() == {**spec, "id": put.json()["id"]}
    assert put.json() in listed["api"]
    fields = set(LimitSpec.__struct_fields__) | {"id"}
    for entry in listed["file"] + listed["api"]:
        assert set(entry) <= fields, entry
    assert removed.json() == {"deleted": put.json()["id"]}
