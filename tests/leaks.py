"""The suite watches itself for backend secrets (issue 9): every response a gateway under test sends
(headers and body, streams included), every log record, and every CLI run's output are scanned
for the secrets the suite gives the backends. ``tests/test_secrets_never_leak.py`` runs last and
fails on any sighting.

Every backend secret the suite sets contains ``do-not-leak`` (the models file's, the Entra client
secret, those given through the admin API); the AWS secret key is watched by its value. Scanning
happens as bytes pass, keeping only a short tail between chunks, so nothing is stored but the
sightings themselves.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

MARKER = b"do-not-leak"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]


@dataclass
class Watch:
    needles: list[bytes] = field(default_factory=lambda: [MARKER])
    sightings: list[str] = field(default_factory=list)
    responses: int = 0
    log_records: int = 0
    outputs: int = 0
    scanned_bytes: int = 0

    def add_secret(self, secret: str) -> None:
        if secret and secret.encode() not in self.needles:
            self.needles.append(secret.encode())

    def scan(self, where: str, data: bytes) -> None:
        self.scanned_bytes += len(data)
        for needle in self.needles:
            if needle in data:
                at = data.index(needle)
                self.sightings.append(f"{where}: ...{data[max(0, at - 60) : at + 80]!r}...")

    def output(self, where: str, text: str) -> None:
        self.outputs += 1
        self.scan(where, text.encode("utf-8", "replace"))


WATCH = Watch()
"""One per test session (a test helper; the product keeps no such state)."""


def watch_environment() -> None:
    WATCH.add_secret(os.environ.get("AWS_SECRET_ACCESS_KEY", ""))


class _LogWatch(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        WATCH.log_records += 1
        text = record.getMessage()
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        WATCH.scan(f"log {record.name}", text.encode("utf-8", "replace"))


def watch_logs() -> None:
    logging.getLogger().addHandler(_LogWatch(level=logging.DEBUG))


def watch_responses(app: ASGIApp, watch: Watch = WATCH) -> ASGIApp:
    """The app, with every response it sends scanned on the way out."""

    async def watched(
        scope: Scope, receive: Callable[[], Awaitable[Message]], send: Callable[[Message], Awaitable[None]]
    ) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        where = f"response to {scope.get('method')} {scope.get('path')}"
        tail = b""
        longest = max(len(n) for n in watch.needles)

        async def scanning_send(message: Message) -> None:
            nonlocal tail
            if message["type"] == "http.response.start":
                watch.responses += 1
                headers = b"\n".join(k + b": " + v for k, v in message.get("headers", []))
                watch.scan(f"{where} (headers)", headers)
            elif message["type"] == "http.response.body":
                chunk = bytes(message.get("body", b""))
                watch.scan(where, tail + chunk)
                tail = (tail + chunk)[-(longest - 1) :]  # a needle split across two chunks
            await send(message)

        await app(scope, receive, scanning_send)

    return watched
