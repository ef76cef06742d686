"""Metering OpenAI's media endpoints, whose replies carry no chat-style ``usage``.

Images are counted from the reply (and gpt-image models add tokens), speech by the characters of
its input (and tokens, when a backend streams them as events), transcriptions and translations by
the seconds of audio the backend reports, or tokens for the models billed that way. Audio and
transcripts pass through untouched (``RelayTap``); only enough of them is kept to read usage.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any

import msgspec

from gateway.ledger.tokens import count_text
from gateway.wire.usage import Usage, count

_decoder = msgspec.json.Decoder()
KEEP_TRANSCRIPT = 2 << 20  # a transcript (JSON or text) is read whole to find its usage
_KEEP_TAIL = 64 << 10  # an event stream's usage comes in its last event
# An SRT or WebVTT cue's end time; the last one is the length of the audio that was heard.
_CUE_END = re.compile(rb"-->\s*(?:(\d+):)?(\d{1,2}):(\d{2})[,.](\d{3})")

Meter = Callable[[bytes, str], Usage]
"""Usage from the kept bytes of a reply and its content type."""


def image_usage(reply: dict[str, Any]) -> Usage:
    data = reply.get("data")
    tokens = Usage.from_openai(reply.get("usage")) or Usage()
    return dataclasses.replace(tokens, images=len(data) if isinstance(data, list) else 0)


def transcript_usage(kept: bytes, media_type: str) -> Usage:
    """Seconds (``usage.seconds``, or verbose JSON's ``duration``), or tokens, or cue times."""
    if media_type.startswith("text/event-stream"):
        return _audio_usage(_last_event_usage(kept), None)
    if media_type.startswith("application/json"):
        reply = _decode(kept)
        return _audio_usage(reply.get("usage"), reply.get("duration")) if isinstance(reply, dict) else Usage()
    ends = _CUE_END.findall(kept)  # srt / vtt; plain text says nothing about the audio's length
    if not ends:
        return Usage()
    hours, minutes, seconds, millis = (int(part or 0) for part in ends[-1])
    return Usage(audio_ms=((hours * 60 + minutes) * 60 + seconds) * 1000 + millis)


def speech_meter(text: str) -> Meter:
    """Speech costs its input's characters. Token-billed voices report their tokens only in event
    streams; with plain audio, the input's tokens are counted here (audio tokens stay unknown)."""

    def meter(kept: bytes, media_type: str) -> Usage:
        reported = Usage.from_openai(_last_event_usage(kept)) if media_type.startswith("text/event-stream") else None
        tokens = reported or Usage(prompt_tokens=count_text(text))
        return dataclasses.replace(tokens, characters=len(text))

    return meter


def _audio_usage(usage: Any, duration: Any) -> Usage:
    if isinstance(usage, dict) and usage.get("type") == "tokens":
        return Usage(
            prompt_tokens=count(usage.get("input_tokens")), completion_tokens=count(usage.get("output_tokens"))
        )
    seconds = usage.get("seconds") if isinstance(usage, dict) else duration
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or not seconds > 0:
        return Usage()
    return Usage(audio_ms=round(seconds * 1000))


def _last_event_usage(kept: bytes) -> Any:
    for line in reversed(kept.split(b"\n")):
        if line.startswith(b"data:") and b'"usage"' in line:
            event = _decode(line[5:])
            if isinstance(event, dict) and event.get("usage") is not None:
                return event["usage"]
    return None


def _decode(raw: bytes) -> Any:
    try:
        return _decoder.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        return None


class RelayTap:
    """Passes a reply through byte for byte and meters what went by (a ``StreamTap``). Usage is
    worked out when read, so a reply the client abandons is metered as far as it got."""

    usage_in_thread = True  # metering may tokenize: the stream relay reads ``usage`` off the event loop

    def __init__(self, meter: Meter, media_type: str, *, keep: int = 0) -> None:
        self._meter = meter
        self._media_type = media_type
        self._events = media_type.startswith("text/event-stream")
        self._keep = keep  # how much of a plain reply the meter needs (audio: none)
        self._kept = bytearray()
        self.media_type = media_type or "application/octet-stream"
        """What the client is told it receives."""
        self.finished = False
        self.forwarded = bytearray()  # never read: usage is always known

    @property
    def usage(self) -> Usage:
        return self._meter(bytes(self._kept), self._media_type)

    def feed(self, data: bytes) -> bytes:
        if self._events:
            self._kept += data
            del self._kept[:-_KEEP_TAIL]
        elif len(self._kept) < self._keep:
            self._kept += data[: self._keep - len(self._kept)]
        return data

    def close(self) -> bytes:
        self.finished = True
        return b""

    def error(self, event: bytes) -> bytes:
        # Audio cannot carry an error; the client sees the reply end early, the ledger the status.
        return event if self._events else b""


class TextTranscriptTap(RelayTap):
    """A transcript the client asked for as plain text but the gateway asked for as JSON (to learn
    what it costs): held until complete, then sent as its text, as OpenAI sends ``text``."""

    def __init__(self) -> None:
        super().__init__(transcript_usage, "application/json", keep=KEEP_TRANSCRIPT)
        self.media_type = "text/plain; charset=utf-8"

    def feed(self, data: bytes) -> bytes:
        super().feed(data)
        return b""

    def close(self) -> bytes:
        super().close()
        reply = _decode(bytes(self._kept))
        text = reply.get("text") if isinstance(reply, dict) else None
        return (text + "\n").encode() if isinstance(text, str) else bytes(self._kept)
