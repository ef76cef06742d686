"""The served OpenAPI schema describes what the gateway does: Schemathesis finds no mismatch.

Every operation, every check (status codes, content types, response schemas, schema-valid
requests accepted and invalid ones refused, Allow headers, created resources retrievable, ...).
Bounded for the suite: ``GATEWAY_TEST_SCHEMATHESIS_EXAMPLES`` (default 10) examples per operation;
``python tests/schema_fuzz.py --max-examples 100`` is the longer run.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from harness import ADMIN_KEY, Gateway, running_gateway
from schema_fuzz import fuzz

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
EXAMPLES = int(os.environ.get("GATEWAY_TEST_SCHEMATHESIS_EXAMPLES", "10"))


@pytest.mark.timeout(600)
async def test_schemathesis_finds_no_mismatch_with_the_served_schema(tmp_path: Path) -> None:
    async with running_gateway("embedded", tmp_path) as gateway:
        runs = await fuzz(gateway, EXAMPLES)
    failed = [run for run in runs if run.returncode != 0]
    assert not failed, "\n\n".join(f"--- {run.who} ---\n{run.output}" for run in failed)


async def test_options_lists_every_method_of_a_path(gateway: Gateway) -> None:
    """Found by Schemathesis: Litestar's own OPTIONS answer listed only the methods of the first
    handler registered on a path (``OPTIONS, POST`` on ``/admin/keys``)."""
    async with gateway.http() as http:
        keys = await http.options("/admin/keys", headers=ADMIN)
        limits = await http.options("/admin/quotas/limits", headers=ADMIN)
        refused = await http.patch("/admin/keys", headers=ADMIN)
    assert keys.status_code == 204 and keys.headers["allow"] == "GET, OPTIONS, POST"
    assert limits.headers["allow"] == "GET, OPTIONS, PUT"
    assert refused.status_code == 405 and set(refused.headers["allow"].split(", ")) == {"GET", "OPTIONS", "POST"}


async def test_a_tool_choice_of_the_wrong_type_is_a_clear_400(gateway: Gateway, key: str) -> None:
    """Found by Schemathesis: ``tool_choice: {"type": {}}`` was a 500 (an unhashable table key)."""
    body = {"model": "claude-model", "messages": [{"role": "user", "content": "hi"}], "tool_choice": {"type": {}}}
    async with gateway.http() as http:
        response = await http.post("/v1/messages/count_tokens", headers={"x-api-key": key}, json=body)
    assert response.status_code == 400, response.text
    assert response.json()["type"] == "error" and "tool_choice" in response.json()["error"]["message"]
