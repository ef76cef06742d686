"""No input makes the gateway answer 500: every failure is a 4xx (or a backend 5xx) in OpenAI shape."""

from __future__ import annotations

import json
import random

import httpx
import pytest
from harness import ADMIN_KEY, Gateway

NASTY_BODIES: list[bytes] = [
    b"[" * 100_000 + b"]" * 100_000,
    b'{"model": "chat-model", "messages": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
    b"\xff\xfe{\x00",
    b'{"model": "chat-model", "messages": [{"role": "user", "content": "\\ud800"}]}',
    b'{"model": "chat-model", "messages": [{"role": "user", "content": "hi"}], "n": 1e400}',
    b'{"model": "chat-model\\u0000", "messages": [{"role": "user", "content": "hi"}]}',
    b'{"model": "../../../etc/passwd", "messages": [{"role": "user", "content": "hi"}]}',
    b'{"model": "chat-model", "messages": [{"role": "user", "content": "hi"}], "stream_options": []}',
    b'{"model": "chat-model", "messages": [{"role": "user", "content": "hi"}], "stream": null}',
    b'{"model": "chat-model", "messages": [null, 1, "x"]}',
    b'{"model": "chat-model", "messages": [{"role": "user", "content": {"nested": true}}]}',
    b'{"model": "chat-model", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1e30}',
    b'{"model": "chat-model", "prompt": 12, "input": {}}',
    b'{"model": "chat-model", "model": "embed-model", "messages": []}',
    b"null",
    b"true",
    b'"a string"',
    b"{}" * 1000,
]
PATHS = ["/v1/chat/completions", "/v1/completions", "/v1/embeddings"]


def _assert_well_formed(response: httpx.Response) -> None:
    assert response.status_code != 500, response.text
    if response.status_code >= 400:
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}


@pytest.mark.parametrize("path", PATHS)
async def test_nasty_bodies(gateway: Gateway, key: str, path: str) -> None:
    async with gateway.http() as http:
        for body in NASTY_BODIES:
            response = await http.post(path, content=body, headers={"authorization": f"Bearer {key}"})
            _assert_well_formed(response)


async def test_random_json_documents(gateway: Gateway, key: str) -> None:
    rng = random.Random(20261129)
    async with gateway.http() as http:
        for _ in range(150):
            body = _random_request(rng)
            response = await http.post(
                rng.choice(PATHS), content=json.dumps(body), headers={"authorization": f"Bearer {key}"}
            )
            _assert_well_formed(response)


async def test_nasty_headers_and_paths(gateway: Gateway, key: str) -> None:
    async with gateway.http() as http:
        cases = [
            ("GET", "/v1/models", {"authorization": "Bearer \xe9\xff".encode("latin-1")}),
            ("GET", "/v1/models", {"authorization": "Basic abc"}),
            ("GET", "/v1/models", {"authorization": "Bearer"}),
            ("GET", "/v1/models", {"x-api-key": "-"}),
            ("GET", "/v1/models/a%00b", {"authorization": f"Bearer {key}"}),
            ("GET", "/v1/models/" + "x" * 5000, {"authorization": f"Bearer {key}"}),
            ("POST", "/v1/models", {"authorization": f"Bearer {key}"}),
            ("GET", "/admin/keys?include_revoked=maybe", {"authorization": f"Bearer {ADMIN_KEY}"}),
            ("POST", "/admin/keys", {"authorization": f"Bearer {ADMIN_KEY}"}),
            ("PATCH", "/healthz", {}),
        ]
        for method, path, headers in cases:
            _assert_well_formed(await http.request(method, path, headers=headers))
        admin = {"authorization": f"Bearer {ADMIN_KEY}"}
        for body in (b"{", b"[]", b'{"name": 5}', b'{"name": "x", "expires_at": "soon"}', b'{"name": "x", "z": 1}'):
            _assert_well_formed(await http.post("/admin/keys", content=body, headers=admin))


def _random_request(rng: random.Random) -> object:
    fields = ["model", "messages", "prompt", "input", "stream", "stream_options", "max_tokens", "n", "tools"]
    values: list[object] = [
        None, True, 0, -1, 2**70, 1.5, "", "chat-model", "embed-model", [], {}, [{}], [{"role": 1}],
        [{"role": "user", "content": "hi"}], {"include_usage": True}, ["x"], [[1, 2]],
    ]  # fmt: skip
    if rng.random() < 0.1:
        return rng.choice(values)
    return {name: rng.choice(values) for name in rng.sample(fields, rng.randint(0, len(fields)))}
