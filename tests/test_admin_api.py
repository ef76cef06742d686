"""The admin HTTP API: bad input is refused naming the field, keys and limits have typed shapes."""

from __future__ import annotations

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
