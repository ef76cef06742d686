"""Every response under /v1/messages takes Anthropic's error shape, whatever went wrong: an unknown
path, a wrong method, a body over the limit, a bad key, a bad body. Anthropic's SDK reads no other."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import pytest
from harness import Gateway

MESSAGES = [{"role": "user", "content": "Say hello"}]


def _anthropic_error(response: httpx.Response, status: int, type_: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["x-request-id"].startswith("req_")
    body = response.json()
    assert set(body) == {"type", "error"} and body["type"] == "error"
    assert body["error"]["type"] == type_ and body["error"]["message"]
    error: dict[str, Any] = body["error"]
    return error


async def test_the_sdks_batches_api_gets_an_anthropic_not_found(gateway: Gateway, key: str) -> None:
    client = gateway.anthropic(key)
    with pytest.raises(anthropic.NotFoundError) as listed:
        await client.messages.batches.list()
    with pytest.raises(anthropic.NotFoundError) as created:
        request = {"custom_id": "a", "params": {"model": "chat-model", "max_tokens": 5, "messages": MESSAGES}}
        await client.messages.batches.create(requests=[request])  # type: ignore[list-item]
    for caught in (listed.value, created.value):
        _anthropic_error(caught.response, 404, "not_found_error")
        assert caught.body["error"]["type"] == "not_found_error"  # type: ignore[index]


@pytest.mark.parametrize(
    ("method", "path", "status", "type_"),
    [
        ("GET", "/v1/messages", 405, "invalid_request_error"),
        ("DELETE", "/v1/messages", 405, "invalid_request_error"),
        ("GET", "/v1/messages/count_tokens", 405, "invalid_request_error"),
        ("POST", "/v1/messages/xyz", 404, "not_found_error"),
        ("GET", "/v1/messages/batches/msgbatch_1/results", 404, "not_found_error"),
    ],
)
async def test_unknown_paths_and_wrong_methods(
    gateway: Gateway, method: str, path: str, status: int, type_: str
) -> None:
    async with gateway.http() as http:
        response = await http.request(method, path, json={})
    _anthropic_error(response, status, type_)


async def test_a_bad_key_and_a_bad_body_on_every_messages_route(gateway: Gateway, key: str) -> None:
    async with gateway.http() as http:
        for path in ("/v1/messages", "/v1/messages/count_tokens"):
            response = await http.post(path, headers={"x-api-key": "sk-gw-" + "x" * 40}, json={"model": "chat-model"})
            _anthropic_error(response, 401, "authentication_error")
            response = await http.post(path, headers={"x-api-key": key}, content=b"{not json")
            _anthropic_error(response, 400, "invalid_request_error")
    with pytest.raises(anthropic.AuthenticationError) as caught:
        await gateway.anthropic("sk-gw-" + "y" * 40).messages.count_tokens(model="claude-model", messages=MESSAGES)  # type: ignore[arg-type]
    assert caught.value.body["type"] == "error"  # type: ignore[index]


async def test_a_body_over_the_limit(gateway: Gateway, key: str) -> None:
    limit = gateway.runtime.settings.max_body_bytes
    big = b'{"model": "chat-model", "max_tokens": 5, "messages": [{"role": "user", "content": "'
    big += b"x" * limit + b'"}]}'
    async with gateway.http() as http:
        response = await http.post("/v1/messages", headers={"x-api-key": key}, content=big)
    _anthropic_error(response, 413, "request_too_large")


async def test_paths_outside_messages_keep_openais_shape(gateway: Gateway) -> None:
    async with gateway.http() as http:
        for path in ("/v1/messagesx", "/v1/nothing", "/v1/chat/completions/x"):
            response = await http.get(path)
            assert response.status_code == 404
            assert response.json()["error"]["code"] == "not_found"
