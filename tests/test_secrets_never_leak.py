"""No backend secret appears in anything the suite saw (issue 9): every response the gateways under
test sent, every log record, every CLI run's output (see ``tests/leaks.py``). Runs last."""

from __future__ import annotations

from typing import Any

import pytest
from leaks import MARKER, WATCH, Watch, watch_responses


def test_no_backend_secret_in_any_response_log_or_output_of_the_suite() -> None:
    if WATCH.responses < 100:
        pytest.skip("reads what the rest of the suite produced: run it with the suite")
    seen = (
        f"{WATCH.responses} responses, {WATCH.log_records} log records, {WATCH.outputs} CLI outputs, "
        f"{WATCH.scanned_bytes:,} bytes, watching {len(WATCH.needles)} secrets ({MARKER.decode()!r} and the AWS key)"
    )
    print(seen)
    assert not WATCH.sightings, f"secrets seen ({seen}):\n" + "\n".join(WATCH.sightings[:50])


async def test_the_watch_sees_a_secret_split_across_chunks() -> None:
    watch = Watch()
    sent: list[bytes] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"x-a", b"1")]})
        for part in (b"abc do-no", b"t-leak xyz", b""):
            await send({"type": "http.response.body", "body": part, "more_body": bool(part)})

    async def send(message: Any) -> None:
        sent.append(message.get("body", b""))

    await watch_responses(app, watch)({"type": "http", "method": "GET", "path": "/x"}, None, send)  # type: ignore[arg-type]
    assert len(watch.sightings) == 1 and "response to GET /x" in watch.sightings[0]
    assert b"".join(sent) == b"abc do-not-leak xyz", "what is watched passes unchanged"
