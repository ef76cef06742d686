"""A deterministic, fast fake of Amazon Bedrock Runtime (Converse, ConverseStream, Titan embeddings).

Built on the same HTTP/1.1 layer as the other fakes (`fake_http`): this module is the server
(routing, headers, recording) and `fake_bedrock_replies` builds the answers and the frames.

Every request needs a SigV4-looking `authorization` header (`AWS4-HMAC-SHA256 Credential=...`)
and an `x-amz-date` header, else 403 AccessDeniedException; the signature itself is not checked.
`POST /model/<id>/converse` needs a minimally valid Converse body (else 400 ValidationException;
unknown top-level fields, blank text blocks and non-alternating roles are refused, as Bedrock
does). It answers "This is a fake reply from Bedrock." cut to `inferenceConfig.maxTokens` words
(stopReason max_tokens when cut), or, when the request has a toolConfig and the last turn is user
text, a `toolUse` of the first (or the chosen) tool with input {"query": "fake"}.
`/model/<id>/converse-stream` sends the same reply as binary event-stream frames
(`application/vnd.amazon.eventstream`): messageStart, one contentBlockDelta per word (a tool call:
contentBlockStart, then its input in two pieces), contentBlockStop, messageStop, metadata.
`/model/<id>/invoke` answers a Titan text embedding for `{"inputText": ...}`, or Cohere Embed
vectors for `{"texts": [...]}` when the model id starts with `cohere.`.

Errors are Bedrock's: a `{"message": ...}` body and the exception's name in `x-amzn-ErrorType`.
Markers in the model id: `slow-<ms>` (delay before headers), `chunkdelay-<ms>` (between stream
frames), `error-<status>` (that status; 429 is a ThrottlingException, 503 ServiceUnavailable),
`hang`, `tokens-<p>-<c>` (fixed usage, a reply of exactly <c> words) and `streamerror` (an
internalServerException event after the first delta).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from fakes.fake_bedrock_replies import (
    answer,
    cohere_embeddings,
    error_headers,
    marker_error,
    titan_embedding,
    validate,
)
from fakes.fake_http import Connection, Reply, Request, response_head
from fakes.fake_server import MALFORMED, FakeServer
from fakes.fake_validation import RequestError

EVENT_STREAM = "application/vnd.amazon.eventstream"
SIGV4_PREFIX = "AWS4-HMAC-SHA256 Credential="
_METHODS = ("converse", "converse-stream", "invoke")


class _EventStreamConnection(Connection):
    """A `fake_http` connection whose streams are AWS event streams rather than SSE."""

    def _stream_head(self, request: Request, reply: Reply) -> bytes:
        framing = "transfer-encoding: chunked" if request.http11 else ""
        keep_alive = request.keep_alive and request.http11
        return response_head(reply.status, EVENT_STREAM, framing, keep_alive, reply.headers)


class FakeBedrock(FakeServer):
    """A Bedrock Runtime server with deterministic answers (see the module docstring)."""

    _name = "FakeBedrock"
    _unquote_recorded_path = True
    _connection_class = _EventStreamConnection

    def error_reply(self, err: RequestError) -> Reply:
        return Reply(err.status, self._encode({"message": err.message}), headers=error_headers(err))

    # -- routing and replies ----------------------------------------------------------------------

    def _route(self, request: Request, path: str, query: str, body: Any) -> Reply:
        # Split before unquoting: a model id may be an ARN, with an encoded "/" inside.
        segments = [unquote(part) for part in path.split("/")]
        if (
            request.method != "POST"
            or len(segments) != 4
            or segments[:2] != ["", "model"]
            or not segments[2]
            or segments[3] not in _METHODS
        ):
            raise RequestError(404, f"Not found: {request.method} {'/'.join(segments)}")
        headers = request.headers
        if not headers.get("authorization", "").startswith(SIGV4_PREFIX) or not headers.get("x-amz-date"):
            raise RequestError(403, "Missing Authentication Token")
        if body is MALFORMED:
            raise RequestError(400, "Malformed input request, please reformat your input and try again.")
        model, method = segments[2], segments[3]
        behaviour = self._behaviour(model)
        if behaviour.error_status is not None:
            reply = self.error_reply(marker_error(behaviour.error_status))
        elif method == "invoke":
            reply = self._json(cohere_embeddings(body) if model.startswith("cohere.") else titan_embedding(body))
        else:
            result = answer(validate(body), next(self._seq), behaviour)
            if method == "converse":
                reply = self._json(result.response())
            else:
                reply = Reply(200, events=result.events(fail=behaviour.stream_error))
                reply.chunk_delay = behaviour.chunk_delay_ms / 1000
        return self._timed(reply, behaviour)
