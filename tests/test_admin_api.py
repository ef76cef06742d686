"""The admin HTTP API: bad input is refused naming the field, keys and limits have typed shapes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from harness import ADMIN_KEY, Gateway

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
    assert "too far" in refused[2].json()["error"]["message"]


async def test_a_key_for_an_unknown_model_is_refused(gateway: Gateway) -> None:
    body = {"name": "typo", "models": ["chat-model", "nosuchmodel", "gpt-5-nope"]}
    async with gateway.http() as http:
        before = len((await http.get("/admin/keys", headers=ADMIN)).json()["data"])
        response = await http.post("/admin/keys", headers=ADMIN, json=body)
        after = len((await http.get("/admin/keys", headers=ADMIN)).json()["data"])
    error = response.json()["error"]
    assert response.status_code == 400 and error["param"] == "models", response.text
    assert "'gpt-5-nope', 'nosuchmodel'" in error["message"] and "'chat-model'" not in error["message"]
    assert before == after, "nothing was created"
