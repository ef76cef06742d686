"""A deterministic, fast fake of Google's Gemini API (`generativelanguage`, v1beta) for tests.

Built on the same HTTP/1.1 layer as the other fakes (`fake_http`): this module is the server
(routing, headers, recording) and `fake_gemini_replies` builds the answers.

`POST /v1beta/models/<model>:generateContent` needs an `x-goog-api-key` header or a `key` query
parameter (else 403 PERMISSION_DENIED, as Gemini answers a call without one) and a minimally valid
body (else 400 INVALID_ARGUMENT; unknown top-level fields are refused, as Gemini does). It answers
"This is a fake reply from Gemini." cut to `generationConfig.maxOutputTokens` words (finishReason
MAX_TOKENS when cut), or, when the request declares functions and the last turn is user text, a
`functionCall` of the first (or first allowed) function with args {"query": "fake"}.
`:streamGenerateContent?alt=sse` sends the same reply as SSE chunks, one per word, usage in each
and the finishReason in the last; without `alt=sse` it answers the chunks as one JSON array.
`:batchEmbedContents` answers deterministic unit vectors.

Markers in the model name: `slow-<ms>` (delay before headers), `chunkdelay-<ms>` (between stream
chunks), `error-<status>` (that status in Gemini's error shape; 429 carries a RetryInfo of 1s),
`hang` and `tokens-<p>-<c>` (fixed usage, a reply of exactly <c> words).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, unquote

from fakes.fake_gemini_replies import answer, embeddings, error_body, marker_error, sse_chunk, validate
from fakes.fake_http import Reply, Request
from fakes.fake_server import MALFORMED, SSE_HEADERS, FakeServer
from fakes.fake_validation import RequestError

PREFIX = "/v1beta/models/"


class FakeGemini(FakeServer):
    """A Gemini API server with deterministic answers (see the module docstring)."""

    _name = "FakeGemini"
    _base_path = "/v1beta"
    _unquote_recorded_path = True

    def error_reply(self, err: RequestError) -> Reply:
        return Reply(err.status, self._encode(error_body(err)), headers=err.headers)

    # -- routing and replies ----------------------------------------------------------------------

    def _route(self, request: Request, path: str, query: str, body: Any) -> Reply:
        path, params = unquote(path), parse_qs(query)
        model, _, method = path.removeprefix(PREFIX).rpartition(":")
        known = ("generateContent", "streamGenerateContent", "batchEmbedContents")
        if request.method != "POST" or not path.startswith(PREFIX) or not model or method not in known:
            raise RequestError(404, f"Not found: {request.method} {path}")
        if not request.headers.get("x-goog-api-key") and not params.get("key"):
            raise RequestError(403, "The caller has no API key; pass one in the x-goog-api-key header.")
        if body is MALFORMED:
            raise RequestError(400, "Invalid JSON payload received.")
        behaviour = self._behaviour(model)
        if behaviour.error_status is not None:
            reply = self.error_reply(marker_error(behaviour.error_status))
        elif method == "batchEmbedContents":
            reply = self._json(embeddings(body, model))
        else:
            result = answer(validate(body), model, next(self._seq), behaviour)
            if method == "generateContent":
                reply = self._json(result.response())
            elif params.get("alt") == ["sse"]:
                reply = Reply(200, events=(sse_chunk(chunk) for chunk in result.chunks()), headers=SSE_HEADERS)
                reply.chunk_delay = behaviour.chunk_delay_ms / 1000
            else:
                reply = self._json(list(result.chunks()))
        return self._timed(reply, behaviour)
