"""A deterministic fake of Azure OpenAI's data plane, for tests: the OpenAI fake behind Azure's URLs.

`POST /openai/deployments/{deployment}/chat/completions|completions|embeddings|...?api-version=...`
(and `POST /openai/v1/responses`, the v1 API, where the body's model names the deployment)
needs an `api-key` header or an Entra ID `authorization: Bearer` token this fake issued at
`POST /{tenant}/oauth2/v2.0/token` (else 401), and an
`api-version` query parameter (else 400). The request is then answered by `FakeUpstream` as if it
had asked for the model named like the deployment, so its markers (`tokens-12-7`, `error-500`,
`slow-<ms>`, `streamerror`, ...) work in deployment names. Every error is OpenAI-shaped, as
Azure's are.

Like Azure with its default content filter, successful chat and completions answers carry
`prompt_filter_results`, and streams open with a chunk holding only those (`choices: []`), which
is what trips clients that assume every chunk has a choice.
"""

from __future__ import annotations

import itertools
import re
from typing import Any
from urllib.parse import parse_qs, unquote

import msgspec

from fakes.fake_embeddings import DEFAULT_EMBEDDING_DIM
from fakes.fake_http import Reply, Request
from fakes.fake_server import MALFORMED
from fakes.fake_upstream import FakeUpstream
from fakes.fake_validation import Json, RequestError

_DEPLOYMENT_PATH = re.compile(
    r"/openai/deployments/([^/]+)"
    r"(/chat/completions|/completions|/embeddings|/images/generations|/audio/speech|/audio/transcriptions"
    r"|/audio/translations)"
)
_FILTERED_OPERATIONS = ("/chat/completions", "/completions")  # embeddings are not content-filtered
_CATEGORIES = ("hate", "self_harm", "sexual", "violence")
_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()


def filter_results() -> Json:
    """A content-filter verdict that lets everything through, category by category."""
    return {category: {"filtered": False, "severity": "safe"} for category in _CATEGORIES}


def prompt_filter_results() -> list[Json]:
    return [{"prompt_index": 0, "content_filter_results": filter_results()}]


_TOKEN_PATH = re.compile(r"/([^/]+)/oauth2/v2\.0/token")


class FakeAzure(FakeUpstream):
    """`FakeUpstream` that answers on Azure OpenAI's deployment URLs (see the module docstring)."""

    def __init__(self, *, record: bool = True, embedding_dim: int = DEFAULT_EMBEDDING_DIM) -> None:
        super().__init__(record=record, embedding_dim=embedding_dim)
        # Entra ID: this fake is also the token endpoint (`{authority}/{tenant}/oauth2/v2.0/token`).
        self.token_lifetime = 3599
        self.token_failures = 0  # answer this many token requests with an error first
        self.issued: list[str] = []
        self.token_requests: list[dict[str, list[str]]] = []  # the forms received, secrets included

    def _has_credentials(self, headers: dict[str, str]) -> bool:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        return bool(headers.get("api-key", "").strip()) or (scheme.lower() == "bearer" and token in self.issued)

    def _token(self, request: Request) -> Reply:
        form = parse_qs(request.body.decode("latin-1"))
        self.token_requests.append(form)
        if form.get("grant_type") != ["client_credentials"] or not form.get("client_secret"):
            raise RequestError(400, "AADSTS900144: The request body must contain client_credentials.", code="400")
        if self.token_failures > 0:
            self.token_failures -= 1
            return Reply(503, _encoder.encode({"error": "temporarily_unavailable"}))
        token = f"fake-entra-token-{len(self.issued) + 1}"
        self.issued.append(token)
        return Reply(
            200, _encoder.encode({"token_type": "Bearer", "expires_in": self.token_lifetime, "access_token": token})
        )

    _base_path = ""  # the resource endpoint, as in `https://<resource>.openai.azure.com`: no path

    # -- routing and replies ----------------------------------------------------------------------

    def _route(self, request: Request, path: str, query: str, body: Any) -> Reply:
        # Recorded (by `dispatch`) as sent, before the deployment is turned into a model name.
        if request.method == "POST" and _TOKEN_PATH.fullmatch(path):
            return self._token(request)
        if request.method == "POST" and path == "/openai/v1/responses":  # the v1 API: model = deployment
            if not self._has_credentials(request.headers):
                raise RequestError(
                    401, "Access denied: send an api-key header or an Entra ID bearer token.", code="401"
                )
            return super()._route(request, "/v1/responses", query, body)
        match = _DEPLOYMENT_PATH.fullmatch(path)
        if request.method != "POST" or match is None:
            raise RequestError(404, f"Resource not found ({request.method} {path}).", code="404")
        if not self._has_credentials(request.headers):
            raise RequestError(401, "Access denied: send an api-key header or an Entra ID bearer token.", code="401")
        if not any(version.strip() for version in parse_qs(query).get("api-version", [])):
            raise RequestError(400, "The api-version query parameter is required.", code="MissingApiVersionParameter")
        deployment, operation = unquote(match.group(1)), match.group(2)
        if body is MALFORMED and not operation.startswith(("/audio/transcriptions", "/audio/translations")):
            raise RequestError(400, "We could not parse the JSON body of your request.")
        if isinstance(body, dict):  # the deployment decides the model, whatever the body says
            body = {**body, "model": deployment}
        reply = super()._route(request, "/v1" + operation, query, body)
        if reply.status == 200 and operation in _FILTERED_OPERATIONS:
            _annotate(reply)
        return reply


def _annotate(reply: Reply) -> None:
    """Add the content-filter fields Azure puts on successful generations."""
    if reply.events is not None:
        opening: Json = {
            "id": "",
            "object": "",
            "created": 0,
            "model": "",
            "choices": [],
            "prompt_filter_results": prompt_filter_results(),
        }
        reply.events = itertools.chain((b"data: " + _encoder.encode(opening) + b"\n\n",), reply.events)
        return
    payload = _decoder.decode(reply.body)
    if isinstance(payload, dict):
        payload["prompt_filter_results"] = prompt_filter_results()
        for choice in payload.get("choices") or ():
            if isinstance(choice, dict):
                choice["content_filter_results"] = filter_results()
        reply.body = _encoder.encode(payload)
