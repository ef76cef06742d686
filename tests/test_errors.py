"""Every failure answers in OpenAI's error shape with the right status, and is still recorded."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import httpx
import openai
import pytest
from harness import Gateway
from openai_spec import validate

PROMPT = [{"role": "user", "content": "hi"}]


def _error_of(response: httpx.Response) -> dict[str, object]:
    body = response.json()
    validate("ErrorResponse", body)
    assert response.headers.get("x-request-id", "").startswith("req_")
    return body["error"]  # type: ignore[no-any-return]


async def _post(gateway: Gateway, key: str | None, body: object, **kwargs: object) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    async with gateway.http() as http:
        if isinstance(body, bytes):
            return await http.post("/v1/chat/completions", content=body, headers=headers, **kwargs)  # type: ignore[arg-type]
        return await http.post("/v1/chat/completions", json=body, headers=headers, **kwargs)  # type: ignore[arg-type]


async def test_missing_key_is_401(gateway: Gateway) -> None:
    # The SDK refuses to send no key at all, so this one goes over plain HTTP.
    response = await _post(gateway, None, {"model": "chat-model", "messages": PROMPT})
    assert response.status_code == 401 and _error_of(response)["code"] == "missing_api_key"


async def test_unknown_key_is_401_and_recorded(gateway: Gateway) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:
        await gateway.openai("sk-gw-not-a-real-key-at-all").chat.completions.create(model="chat-model", messages=PROMPT)
    assert "sk-gw-not-a-real-key-at-all" not in str(caught.value), "the secret must not be echoed"
    row = await gateway.usage(caught.value.response.headers["x-request-id"])
    assert (row.status_code, row.error_type, row.key_id) == (401, "AuthenticationFailed", None)


async def test_x_api_key_header_is_accepted(gateway: Gateway, key: str) -> None:
    async with gateway.http() as http:
        response = await http.post(
            "/v1/chat/completions", headers={"x-api-key": key}, json={"model": "chat-model", "messages": PROMPT}
        )
    assert response.status_code == 200


async def test_expired_key_is_401(gateway: Gateway) -> None:
    expired = await gateway.create_key("expired", expires_at=datetime.now(UTC) - timedelta(seconds=1))
    with pytest.raises(openai.AuthenticationError, match="expired"):
        await gateway.openai(expired).chat.completions.create(model="chat-model", messages=PROMPT)


async def test_model_outside_the_keys_list_is_403(gateway: Gateway) -> None:
    limited = await gateway.create_key("limited", models=["embed-model"])
    with pytest.raises(openai.PermissionDeniedError) as caught:
        await gateway.openai(limited).chat.completions.create(model="chat-model", messages=PROMPT)
    assert caught.value.status_code == 403
    row = await gateway.usage(caught.value.response.headers["x-request-id"])
    assert (row.status_code, row.model) == (403, "chat-model")


async def test_unknown_model_is_404(gateway: Gateway, key: str) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        await gateway.openai(key).chat.completions.create(model="no-such-model", messages=PROMPT)
    assert caught.value.code == "model_not_found"
    validate("ErrorResponse", caught.value.response.json())


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b"{not json", None),
        (b"", None),
        (b"[1, 2]", None),
        ({"messages": PROMPT}, "model"),
        ({"model": 42, "messages": PROMPT}, "model"),
        ({"model": "chat-model"}, "messages"),
        ({"model": "chat-model", "messages": "hi"}, "messages"),
        ({"model": "chat-model", "messages": []}, "messages"),
        ({"model": "chat-model", "messages": [{"content": "no role"}]}, "messages[0].role"),
        ({"model": "chat-model", "messages": PROMPT, "stream": "yes"}, "stream"),
        ({"model": "chat-model", "messages": PROMPT, "max_tokens": "ten"}, "max_tokens"),
        ({"model": "chat-model", "messages": PROMPT, "temperature": True}, "temperature"),
    ],
)
async def test_malformed_requests_are_400(gateway: Gateway, key: str, body: object, param: str | None) -> None:
    response = await _post(gateway, key, body)
    assert response.status_code == 400
    error = _error_of(response)
    assert error["type"] == "invalid_request_error" and error["param"] == param
    row = await gateway.usage(response.headers["x-request-id"])
    assert row.status_code == 400


async def test_sdk_raises_bad_request(gateway: Gateway, key: str) -> None:
    with pytest.raises(openai.BadRequestError):
        await gateway.openai(key).chat.completions.create(model="chat-model", messages=[])


async def test_body_over_the_limit_is_413(gateway: Gateway, key: str) -> None:
    limit = gateway.runtime.settings.max_body_bytes
    big = b'{"model": "chat-model", "messages": [{"role": "user", "content": "' + b"x" * limit + b'"}]}'
    response = await _post(gateway, key, big)
    assert response.status_code == 413 and _error_of(response)["code"] == "request_too_large"
    row = await gateway.usage(response.headers["x-request-id"])
    assert (row.status_code, row.error_type) == (413, "RequestTooLarge")


async def test_backend_failure_is_502(gateway: Gateway, key: str) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        await gateway.openai(key).chat.completions.create(model="upstream-500", messages=PROMPT)
    assert caught.value.status_code == 502
    row = await gateway.usage(caught.value.response.headers["x-request-id"])
    assert (row.status_code, row.error_type, row.cost_nano_usd) == (502, "UpstreamError", 0)


async def test_backend_refusing_our_credential_is_502_without_its_message(gateway: Gateway, key: str) -> None:
    # Backends quote (part of) the key they were given in their 401 text: it must not be passed on.
    response = await _post(gateway, key, {"model": "upstream-401", "messages": PROMPT})
    error = _error_of(response)
    assert response.status_code == 502 and error["code"] == "backend_auth_failed"
    assert "fake upstream error" not in str(error["message"])


async def test_unreachable_backend_is_502(gateway: Gateway, key: str) -> None:
    response = await _post(gateway, key, {"model": "unreachable", "messages": PROMPT})
    assert response.status_code == 502 and "could not be reached" in str(_error_of(response)["message"])


async def test_backend_timeout_is_504(gateway: Gateway, key: str) -> None:
    response = await _post(gateway, key, {"model": "hangs", "messages": PROMPT})
    assert response.status_code == 504 and _error_of(response)["code"] == "upstream_timeout"
    stream = await _post(gateway, key, {"model": "hangs", "messages": PROMPT, "stream": True})
    assert stream.status_code == 504


async def test_backend_4xx_is_passed_on(gateway: Gateway, key: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await gateway.openai(key).chat.completions.create(model="upstream-400", messages=PROMPT)
    assert "fake upstream error 400" in caught.value.message
    with pytest.raises(openai.RateLimitError) as limited:
        await gateway.openai(key).chat.completions.create(model="upstream-429", messages=PROMPT, stream=True)
    assert limited.value.response.headers["retry-after"] == "1"


async def test_backend_credentials_never_reach_the_client_or_the_log(
    gateway: Gateway, key: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for model in ("upstream-500", "upstream-400", "unreachable", "chat-model"):
        response = await _post(gateway, key, {"model": model, "messages": PROMPT})
        assert "upstream-secret-do-not-leak" not in response.text
    async with gateway.http() as http:
        schema = await http.get("/schema/openapi.json")
        models = await http.get("/v1/models", headers={"authorization": f"Bearer {key}"})
    assert "upstream-secret-do-not-leak" not in schema.text + models.text
    assert caplog.records, "the log was captured"
    assert "upstream-secret-do-not-leak" not in caplog.text
    assert "upstream-secret-do-not-leak" not in repr(gateway.runtime.pipeline.catalog)


async def test_unknown_routes_and_methods_answer_in_openai_shape(gateway: Gateway) -> None:
    async with gateway.http() as http:
        missing = await http.get("/v1/nothing-here")
        wrong_method = await http.delete("/v1/chat/completions")
    assert missing.status_code == 404 and _error_of(missing)["code"] == "not_found"
    assert wrong_method.status_code == 405 and _error_of(wrong_method)["code"] == "method_not_allowed"


async def test_embeddings_reject_streaming(gateway: Gateway, key: str) -> None:
    async with gateway.http() as http:
        response = await http.post(
            "/v1/embeddings",
            headers={"authorization": f"Bearer {key}"},
            json={"model": "embed-model", "input": "x", "stream": True},
        )
    assert response.status_code == 400 and _error_of(response)["param"] == "stream"
