"""The fake upstream's media endpoints: images, moderations, speech, transcriptions, translations.

Deterministic like the rest of the fake: an image is a few bytes derived from the prompt, speech is
``SPEECH_BYTES_PER_CHAR`` bytes of audio per input character (streamed in pieces), and the length of
uploaded audio is read from a WAV header, or taken as ``BYTES_PER_SECOND`` of any other file. Models
whose name contains ``transcribe`` or ``-tts`` bill tokens, as OpenAI's gpt-4o models do; the
others bill seconds and characters. Shapes follow OpenAI's published OpenAPI description.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import hashlib
import struct
import time
from typing import Any

import msgspec

from fakes.fake_markers import Behaviour
from fakes.fake_payloads import Answer
from fakes.fake_validation import Json, RequestError, count_words, require_model, require_object

SPEECH_BYTES_PER_CHAR = 64
SPEECH_PIECE = 4096
BYTES_PER_SECOND = 16_000  # what a non-WAV upload is taken to hold per second of audio
TRANSCRIPT = "The quick brown fox jumps over the lazy dog."
_AUDIO_TYPES = {"mp3": "audio/mpeg", "opus": "audio/opus", "aac": "audio/aac", "flac": "audio/flac"}
_AUDIO_TYPES |= {"wav": "audio/wav", "pcm": "audio/pcm"}
_CATEGORIES = (
    "hate",
    "hate/threatening",
    "harassment",
    "harassment/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/intent",
    "self-harm/instructions",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)


def images(body: Any, seq: int, behaviour: Behaviour) -> Answer:
    body = require_object(body)
    model = require_model(body)
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        raise RequestError(400, "'prompt' must be a non-empty string.", param="prompt")
    n = body.get("n", 1)
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 10:
        raise RequestError(400, "'n' must be an integer from 1 to 10.", param="n")
    picture = base64.b64encode(b"\x89PNG\r\n\x1a\n" + hashlib.sha256(prompt.encode()).digest()).decode()
    created = int(time.time())
    url = body.get("response_format") == "url"
    item = {"url": f"https://images.example/{seq}-{created}.png"} if url else {"b64_json": picture}
    payload: Json = {"created": created, "data": [dict(item) for _ in range(n)]}
    if "gpt-image" in model:  # token-billed image models report usage
        prompt_tokens = count_words(prompt)
        payload["usage"] = {
            "input_tokens": prompt_tokens,
            "output_tokens": 272 * n,
            "total_tokens": prompt_tokens + 272 * n,
            "input_tokens_details": {"text_tokens": prompt_tokens, "image_tokens": 0},
        }
    return Answer(behaviour, payload=payload)


def moderations(body: Any, seq: int, behaviour: Behaviour) -> Answer:
    body = require_object(body)
    model = body.get("model") or "omni-moderation-latest"
    inputs = body.get("input")
    items = inputs if isinstance(inputs, list) else [inputs]
    if not items or not all(isinstance(item, str | dict) for item in items):
        raise RequestError(400, "'input' must be a string, an array of strings, or an array of parts.", "input")
    results = []
    for item in items:
        flagged = isinstance(item, str) and "kill" in item.lower()
        results.append(
            {
                "flagged": flagged,
                "categories": {name: flagged and name == "violence" for name in _CATEGORIES},
                "category_scores": {name: 0.9 if flagged and name == "violence" else 0.001 for name in _CATEGORIES},
                "category_applied_input_types": {name: ["text"] for name in _CATEGORIES},
            }
        )
    return Answer(behaviour, payload={"id": f"modr-{seq}", "model": model, "results": results})


def speech(body: Json) -> tuple[str, list[bytes]]:
    """The content type and the pieces of the audio (or of its event stream) for a speech request."""
    text = body.get("input")
    if not isinstance(text, str) or not text:
        raise RequestError(400, "'input' must be a non-empty string.", param="input")
    if not body.get("voice"):
        raise RequestError(400, "Missing required parameter: 'voice'.", param="voice")
    audio_format = body.get("response_format", "mp3")
    if audio_format not in _AUDIO_TYPES:
        raise RequestError(400, f"'response_format' must be one of {', '.join(_AUDIO_TYPES)}.", "response_format")
    audio = (hashlib.sha256(text.encode()).digest() * (SPEECH_BYTES_PER_CHAR // 32 + 1))[:SPEECH_BYTES_PER_CHAR]
    audio = audio * len(text)
    pieces = [audio[i : i + SPEECH_PIECE] for i in range(0, len(audio), SPEECH_PIECE)]
    if body.get("stream_format") != "sse":
        return _AUDIO_TYPES[audio_format], pieces
    events = [_event({"type": "speech.audio.delta", "audio": base64.b64encode(piece).decode()}) for piece in pieces]
    tokens = count_words(text)
    usage = {"input_tokens": tokens, "output_tokens": len(pieces), "total_tokens": tokens + len(pieces)}
    return "text/event-stream", [*events, _event({"type": "speech.audio.done", "usage": usage})]


def transcription(content_type: str, raw: bytes, translate: bool) -> tuple[str, list[bytes], Json]:
    """The content type and body pieces of a transcription, and what was received (for tests)."""
    fields, files = _form(content_type, raw)
    model = fields.get("model")
    if not model:
        raise RequestError(400, "Missing required parameter: 'model'.", param="model")
    if "file" not in files:
        raise RequestError(400, "Missing required parameter: 'file'.", param="file")
    audio = files["file"]
    seconds = _seconds(audio)
    received = {"fields": fields, "file_bytes": len(audio), "file_sha256": hashlib.sha256(audio).hexdigest()}
    text = TRANSCRIPT if not translate else "Translated: " + TRANSCRIPT
    by_tokens = "transcribe" in model
    usage: Json = (
        {"type": "tokens", "input_tokens": round(seconds * 10), "output_tokens": count_words(text)}
        if by_tokens
        else {"type": "duration", "seconds": seconds}
    )
    if fields.get("stream") == "true" and by_tokens:
        deltas = [_event({"type": "transcript.text.delta", "delta": word + " "}) for word in text.split()]
        done = _event({"type": "transcript.text.done", "text": text, "usage": usage})
        return "text/event-stream", [*deltas, done], received
    form = fields.get("response_format", "json")
    if form == "text":
        return "text/plain; charset=utf-8", [text.encode() + b"\n"], received
    if form in ("srt", "vtt"):
        return "text/plain; charset=utf-8", [_cues(text, seconds, form).encode()], received
    if form == "verbose_json" and not by_tokens:
        segment = {"id": 0, "seek": 0, "start": 0.0, "end": seconds, "text": text, "tokens": [1, 2, 3]}
        segment |= {"temperature": 0.0, "avg_logprob": -0.2, "compression_ratio": 1.1, "no_speech_prob": 0.01}
        reply: Json = {"task": "translate" if translate else "transcribe", "language": "english"}
        reply |= {"duration": seconds, "text": text, "segments": [segment], "usage": usage}
        return "application/json", [_json(reply)], received
    if form != "json":
        raise RequestError(400, f"response_format '{form}' is not supported with {model}.", "response_format")
    return "application/json", [_json({"text": text, **({} if translate else {"usage": usage})})], received


def _form(content_type: str, raw: bytes) -> tuple[dict[str, str], dict[str, bytes]]:
    if not content_type.startswith("multipart/form-data"):
        raise RequestError(400, "Expected a multipart/form-data body.")
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + raw)
    if not message.is_multipart():
        raise RequestError(400, "The multipart body could not be parsed.")
    fields: dict[str, str] = {}
    files: dict[str, bytes] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if not isinstance(name, str) or not isinstance(payload, bytes):
            continue
        if part.get_filename() is not None:
            files[name] = payload
        else:
            fields[name] = payload.decode()
    return fields, files


def _seconds(audio: bytes) -> float:
    """A WAV file's length from its header (the common 44-byte layout); other files by size."""
    if audio[:4] == b"RIFF" and audio[8:12] == b"WAVE" and audio[36:40] == b"data" and len(audio) >= 44:
        byte_rate = struct.unpack("<I", audio[28:32])[0]
        data_size = struct.unpack("<I", audio[40:44])[0]
        return round(data_size / byte_rate, 3) if byte_rate else 0.0
    return round(len(audio) / BYTES_PER_SECOND, 3)


def _cues(text: str, seconds: float, form: str) -> str:
    millis = round(seconds * 1000)
    sep = "," if form == "srt" else "."
    end = f"{millis // 3_600_000:02}:{millis // 60_000 % 60:02}:{millis // 1000 % 60:02}{sep}{millis % 1000:03}"
    cue = f"00:00:00{sep}000 --> {end}\n{text}\n"
    return f"1\n{cue}\n" if form == "srt" else f"WEBVTT\n\n{cue}\n"


def _event(payload: Json) -> bytes:
    return b"data: " + _json(payload) + b"\n\n"


def _json(payload: Any) -> bytes:
    return msgspec.json.encode(payload)
