"""A deterministic, fast fake of Anthropic's Messages API for tests and benchmarks.

Built on the same HTTP/1.1 layer as the OpenAI-compatible fake (`fake_http`): this module is the
server (routing, headers, recording) and `fake_anthropic_events` builds the answers.

`POST /v1/messages` needs `x-api-key` or a bearer `authorization` (else 401 authentication_error),
`anthropic-version` (else 400) and a minimally valid body (else 400 invalid_request_error). It answers the fixed text
"This is a fake reply from Anthropic." cut to `max_tokens` words (stop_reason "max_tokens" when
cut), or, when the request has `tools` and the last user turn is not a tool_result, a short text
then a `tool_use` block for the first tool with input {"query": "fake"}. With `"stream": true` it
sends Anthropic's SSE event sequence. `POST /v1/messages/count_tokens` counts the input words.

Markers in the model name (see `fake_markers`): `slow-<ms>` (delay before headers),
`firstbyte-<ms>` (delay after them), `chunkdelay-<ms>` (between stream events), `hang`,
`hangstream` (nothing after the first event), `error-<status>` (that status in Anthropic's error
shape; 429 adds `retry-after: 1`, `retryafter-<s>` sets it on a 429 or 503), `contextlen`
(Anthropic's 400 "prompt is too long"), `contentfilter` (a plain 400: Anthropic has no such error),
`flaky-<n>` (only the first n requests fail), `tokens-<in>-<out>` (fixed usage, a reply of exactly
<out> words) and `cache-<read>-<write>` (cache_read_input_tokens / cache_creation_input_tokens).

Run standalone with `python -m fakes.fake_anthropic --port 9200 [--no-record]`.
"""

from __future__ import annotations

from typing import Any

from fakes.fake_anthropic_events import answer, error_body, input_tokens, marker_error, sse_event, validate
from fakes.fake_http import Reply, Request
from fakes.fake_server import MALFORMED, SSE_HEADERS, FakeServer, run_cli
from fakes.fake_validation import Json, RequestError


def _has_credentials(headers: dict[str, str]) -> bool:
    """An `x-api-key`, or a bearer token (which recent `anthropic` SDKs send the API key as)."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return bool(headers.get("x-api-key")) or (scheme.lower() == "bearer" and bool(token.strip()))


class FakeAnthropic(FakeServer):
    """An Anthropic Messages API server with deterministic answers (see the module docstring)."""

    _name = "FakeAnthropic"
    _base_path = "/v1"

    # `root_url` is what to give the `anthropic` SDK, which appends `/v1/messages` itself.

    def error_reply(self, err: RequestError) -> Reply:
        request_id = f"req_fake_{self.request_count}"
        headers = (("request-id", request_id), *err.headers)
        return Reply(err.status, self._encode(error_body(err, request_id)), headers=headers)

    # -- routing and replies ----------------------------------------------------------------------

    def _route(self, request: Request, path: str, query: str, body: Any) -> Reply:
        if request.method != "POST" or path not in ("/v1/messages", "/v1/messages/count_tokens"):
            raise RequestError(404, f"Not found: {request.method} {path}")
        if not _has_credentials(request.headers):
            raise RequestError(401, "x-api-key header is required")
        if not request.headers.get("anthropic-version"):
            raise RequestError(400, "anthropic-version: header is required")
        if body is MALFORMED:
            raise RequestError(400, "The request body is not valid JSON.")
        if path == "/v1/messages/count_tokens":
            return self._count_tokens(body)
        return self._messages(validate(body))

    def _count_tokens(self, body: Any) -> Reply:
        if not isinstance(body, dict):
            raise RequestError(400, "The request body must be a JSON object.")
        validate({"max_tokens": 1, **body})  # count_tokens takes no max_tokens
        return self._timed(self._json({"input_tokens": input_tokens(body)}), self._behaviour(body["model"]))

    def _messages(self, body: Json) -> Reply:
        behaviour = self._behaviour(body["model"])
        if behaviour.error_status is not None:
            reply = self.error_reply(marker_error(behaviour))
        else:
            result = answer(body, next(self._seq), behaviour)
            if body.get("stream") is True:
                events = (sse_event(kind, data) for kind, data in result.events())
                reply = Reply(200, events=events, headers=(*SSE_HEADERS, self._request_id()))
                reply.chunk_delay = behaviour.chunk_delay_ms / 1000
            else:
                reply = self._json(result.message())
        return self._timed(reply, behaviour)

    def _request_id(self) -> tuple[str, str]:
        return ("request-id", f"req_fake_{self.request_count}")

    def _json(self, payload: Any, status: int = 200) -> Reply:
        return Reply(status, self._encode(payload), headers=(self._request_id(),))


# -- command line ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    run_cli(
        lambda record: FakeAnthropic(record=record),
        prog="python -m fakes.fake_anthropic",
        description="Deterministic fake of Anthropic's Messages API.",
        default_port=9200,
        label="fake-anthropic",
        argv=argv,
    )


if __name__ == "__main__":
    main()
