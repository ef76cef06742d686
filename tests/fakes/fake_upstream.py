"""A deterministic, fast, OpenAI-compatible fake upstream for tests and benchmarks.

It speaks just enough HTTP/1.1 (keep-alive, pipelining, chunked request bodies) straight on an
asyncio `Protocol` with httptools (`fake_http`), so a benchmark of the gateway measures the
gateway, not this. This module is the server: routing, recording and introspection, and turning
the endpoints' payloads (`fake_chat`, `fake_completions`, `fake_embeddings`, `fake_models`,
`fake_responses_api`, `fake_media`) into replies. Markers inside the model name choose
misbehaviour: timing (`slow-<ms>`, `firstbyte-<ms>`, `chunkdelay-<ms>`, `hang`, `hangstream`),
errors (`error-<status>`, `contextlen`, `contentfilter`, `retryafter-<s>`, `flaky-<n>`), broken
streams (`streamerror`, `nodone`, `notsse`) and usage (`tokens-<p>-<c>`); see `fake_markers`.

Run standalone with `python -m fakes.fake_upstream --port 9100 [--no-record]`.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import unquote

from fakes.fake_chat import chat
from fakes.fake_completions import completions
from fakes.fake_embeddings import DEFAULT_EMBEDDING_DIM, embeddings
from fakes.fake_http import Reply, Request
from fakes.fake_markers import Behaviour, BehaviourLookup, marker_error
from fakes.fake_media import images, moderations, speech, transcription
from fakes.fake_models import model_list, model_object
from fakes.fake_payloads import Answer
from fakes.fake_responses_api import responses
from fakes.fake_server import MALFORMED, SSE_HEADERS, FakeServer, run_cli
from fakes.fake_server import MAX_RECORDED as MAX_RECORDED  # re-exported, as before
from fakes.fake_server import RecordedRequest as RecordedRequest  # re-exported, as before
from fakes.fake_validation import Json, RequestError, require_model, require_object

_MEDIA_PATHS = frozenset(
    {
        "/v1/images/generations",
        "/v1/moderations",
        "/v1/audio/speech",
        "/v1/audio/transcriptions",
        "/v1/audio/translations",
    }
)
DEFAULT_MODELS: tuple[str, ...] = ("fake-model", "fake-embedding")
SSE_DONE = b"data: [DONE]\n\n"
STREAM_ERROR_EVENTS = 3  # role chunk + two content chunks, then the connection is cut

Endpoint = Callable[[Any, int, BehaviourLookup], Answer]


class FakeUpstream(FakeServer):
    """An OpenAI-compatible HTTP server with deterministic answers (see the module docstring)."""

    _name = "FakeUpstream"
    _base_path = "/v1"

    def __init__(
        self,
        *,
        record: bool = True,
        models: tuple[str, ...] = DEFAULT_MODELS,
        embedding_dim: int = DEFAULT_EMBEDDING_DIM,
    ) -> None:
        super().__init__(record=record)
        self.models = models
        self.embedding_dim = embedding_dim
        self._routes: dict[tuple[str, str], Endpoint] = {
            ("POST", "/v1/chat/completions"): chat,
            ("POST", "/v1/completions"): completions,
            ("POST", "/v1/embeddings"): functools.partial(embeddings, default_dim=embedding_dim),
        }

    # -- routing and replies ----------------------------------------------------------------------

    def _route(self, request: Request, path: str, query: str, body: Any) -> Reply:
        method = request.method
        endpoint = self._routes.get((method, path))
        if endpoint is not None:
            if body is MALFORMED:
                raise RequestError(400, "We could not parse the JSON body of your request.")
            return self._deliver(endpoint(body, next(self._seq), self._behaviour))
        if method == "POST" and path == "/v1/responses":  # named SSE events, so delivered apart
            if body is MALFORMED:
                raise RequestError(400, "We could not parse the JSON body of your request.")
            return self._deliver_events(responses(body, next(self._seq), self._behaviour))
        if method == "POST" and path in _MEDIA_PATHS:
            return self._media(request, path, body)
        if method == "GET" and path == "/v1/models":
            return self._json(model_list(self.models))
        if method == "GET" and path.startswith("/v1/models/") and len(path) > len("/v1/models/"):
            return self._json(model_object(unquote(path[len("/v1/models/") :])))
        raise RequestError(404, f"Invalid URL ({method} {path})", code="unknown_url")

    def _media(self, request: Request, path: str, body: Any) -> Reply:
        """Images, moderations, speech and audio uploads (see `fake_media`)."""
        if path in ("/v1/audio/transcriptions", "/v1/audio/translations"):
            content_type = request.headers.get("content-type", "")
            kind, pieces, received = transcription(content_type, request.body, path.endswith("translations"))
            if self.record and self._recorded:
                self._recorded[-1].body = received  # the upload, as the fake understood it
            behaviour = self._behaviour(str(received["fields"].get("model", "")))
            return self._pieces(kind, pieces, behaviour)
        if body is MALFORMED:
            raise RequestError(400, "We could not parse the JSON body of your request.")
        if path == "/v1/audio/speech":
            behaviour = self._behaviour(require_model(require_object(body)))
            return self._pieces(*speech(body), behaviour)
        builder = images if path == "/v1/images/generations" else moderations
        return self._deliver(builder(body, next(self._seq), self._behaviour_of(body)))

    def _behaviour_of(self, body: Any) -> Behaviour:
        model = body.get("model") if isinstance(body, dict) else None
        return self._behaviour(model if isinstance(model, str) else "")

    def _pieces(self, content_type: str, pieces: list[bytes], behaviour: Behaviour) -> Reply:
        """A reply sent in pieces (audio as it is made, or events), with the markers applied."""
        if behaviour.error_status is not None:
            return self._timed(self.error_reply(marker_error(behaviour)), behaviour)
        reply = Reply(200, events=iter(pieces), content_type=content_type, chunk_delay=behaviour.chunk_delay_ms / 1000)
        if behaviour.stream_error:
            reply.events, reply.abort = iter(pieces[:1]), True
        return self._timed(reply, behaviour)

    def _introspect(self, method: str, path: str) -> Reply:
        if path == "/_fake/requests" and method == "GET":
            return self._json(list(self._recorded))  # msgspec encodes dataclasses as objects
        if path == "/_fake/requests" and method == "DELETE":
            deleted = len(self._recorded)
            self.clear_requests()
            return self._json({"deleted": deleted})
        if path == "/_fake/stats" and method == "GET":
            return self._json(self.stats())
        if path == "/_fake/stats" and method == "DELETE":
            self.reset()
            return self._json(self.stats())
        return self.error_reply(RequestError(404, f"Invalid URL ({method} {path})", code="unknown_url"))

    def _deliver(self, answer: Answer) -> Reply:
        """Encode an endpoint's answer, applying the markers of the requested model."""
        behaviour = answer.behaviour
        if behaviour.error_status is not None:
            reply = self.error_reply(marker_error(behaviour))
        elif answer.chunks is not None:
            reply = self._stream(answer.chunks, behaviour)
        else:
            reply = self._json(answer.payload)
        # Inline rather than `self._timed(...)`: this runs for every benchmark request.
        reply.delay = behaviour.slow_ms / 1000
        reply.first_byte_delay = behaviour.first_byte_ms / 1000
        reply.hang = behaviour.hang
        reply.stall = behaviour.hang_stream
        return reply

    def _stream(self, chunks: Iterator[Json], behaviour: Behaviour) -> Reply:
        if behaviour.not_sse:
            return self._json({"id": "not-a-stream", "object": "chat.completion", "choices": []})
        encode = self._encode
        events: Iterator[bytes] = (b"data: " + encode(chunk) + b"\n\n" for chunk in chunks)
        reply = Reply(200, chunk_delay=behaviour.chunk_delay_ms / 1000, headers=SSE_HEADERS)
        if behaviour.stream_error:
            reply.events, reply.abort = itertools.islice(events, STREAM_ERROR_EVENTS), True
        elif behaviour.no_done:
            reply.events = events
        else:
            reply.events = itertools.chain(events, (SSE_DONE,))
        return reply

    def _deliver_events(self, answer: Answer) -> Reply:
        """Like `_deliver`, for streams of named events (`event: <type>`) that end without `[DONE]`."""
        behaviour = answer.behaviour
        if behaviour.error_status is not None or answer.chunks is None or behaviour.not_sse:
            if answer.chunks is not None:  # notsse: a plain JSON body instead of the stream
                answer.payload, answer.chunks = {"id": "not-a-stream", "object": "response", "output": []}, None
            return self._deliver(answer)
        encode = self._encode
        events: Iterator[bytes] = (
            b"event: " + event["type"].encode() + b"\ndata: " + encode(event) + b"\n\n" for event in answer.chunks
        )
        reply = Reply(200, chunk_delay=behaviour.chunk_delay_ms / 1000, headers=SSE_HEADERS)
        if behaviour.stream_error:
            reply.events, reply.abort = itertools.islice(events, STREAM_ERROR_EVENTS), True
        else:
            reply.events = events
        return self._timed(reply, behaviour)


# -- command line ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    run_cli(
        lambda record: FakeUpstream(record=record),
        prog="python -m fakes.fake_upstream",
        description="Deterministic OpenAI-compatible fake upstream.",
        default_port=9100,
        label="fake-upstream",
        argv=argv,
    )


if __name__ == "__main__":
    main()
