"""uvicorn's httptools protocol, with one change: a request body that breaks HTTP's framing (a
malformed chunk, say) is answered in the API's error shape, and the request it cut short learns why.

uvicorn answers such a body itself, in plain text, and closes the connection; the application
only sees the client go away, and would record a 499 for what is the client's malformed request.
So the answer here is a 400 in OpenAI's shape (Anthropic's on ``/v1/messages``) carrying the
request's id, and the ASGI scope is marked: ``RequestClient`` then raises ``InvalidRequest``, and
the request's usage record says 400 like its answer. ``gateway serve`` and the tests run with this.
"""

from __future__ import annotations

from typing import Any

import msgspec
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from gateway.errors import InvalidRequest
from gateway.web.client import MALFORMED_BODY, MALFORMED_MESSAGE
from gateway.web.errors import openai_error_body, status_and_type
from gateway.web.request_id import request_id
from gateway.wire.anthropic_errors import anthropic_error_body

_encoder = msgspec.json.Encoder()


class HttpProtocol(HttpToolsProtocol):
    def send_400_response(self, msg: str) -> None:
        cycle = self.cycle
        # Only a body in progress, before any answer: a malformed request line or header has no
        # request to speak of yet, and a request whose body has ended is not the one at fault.
        if cycle is None or cycle.response_started or not cycle.more_body:
            super().send_400_response(msg)
            return
        scope: Any = cycle.scope  # uvicorn's scope type; the same dict the application was given
        scope[MALFORMED_BODY] = True
        error = InvalidRequest(MALFORMED_MESSAGE)
        status, _ = status_and_type(error)
        path = scope["path"]
        on_messages = path == "/v1/messages" or path.startswith("/v1/messages/")
        body = _encoder.encode(anthropic_error_body(status, error.message) if on_messages else openai_error_body(error))
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head.append(name + b": " + value + b"\r\n")
        head.append(b"content-type: application/json\r\n")
        head.append(b"content-length: %d\r\n" % len(body))
        head.append(b"x-request-id: " + request_id(scope).encode() + b"\r\n")
        head.append(b"connection: close\r\n\r\n")
        self.transport.write(b"".join(head) + body)
        self.transport.close()
