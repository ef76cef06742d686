"""Images, moderations, speech, transcriptions and translations through the gateway, each metered
in its own unit (images, tokens, characters, seconds) and priced per the model's version."""

from __future__ import annotations

import hashlib
import io
import struct

import httpx
import openai
import pytest
from fakes.fake_media import SPEECH_BYTES_PER_CHAR, TRANSCRIPT
from harness import Gateway
from openai_spec import validate


def wav(seconds: float, rate: int = 16_000) -> bytes:
    """A mono 16-bit PCM WAV file of silence."""
    data = b"\x00\x00" * round(seconds * rate)
    header = b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt "
    header += struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16) + b"data" + struct.pack("<I", len(data))
    return header + data


async def test_image_generation_is_priced_per_image(gateway: Gateway, key: str) -> None:
    raw = await gateway.openai(key).images.with_raw_response.generate(model="dall-e-3", prompt="a red fox", n=2)
    assert len(raw.parse().data or []) == 2
    validate("ImagesResponse", raw.http_response.json())
    row = await gateway.usage(raw.headers["x-request-id"])
    assert (row.endpoint, row.images, row.status_code) == ("images.generations", 2, 200)
    assert row.cost_nano_usd == 2 * 40_000 * 1000  # $0.04 each
    assert gateway.upstream.requests[-1].body["model"] == "dall-e-3"


async def test_token_billed_image_models_add_their_tokens(gateway: Gateway, key: str) -> None:
    raw = await gateway.openai(key).images.with_raw_response.generate(model="gpt-image-1", prompt="a red fox")
    row = await gateway.usage(raw.headers["x-request-id"])
    assert (row.images, row.prompt_tokens, row.completion_tokens) == (1, 3, 272)
    pico = 3 * 5_000_000 + 272 * 40_000_000 + 1 * 1000 * 1_000_000
    assert row.cost_nano_usd == pico // 1000


async def test_moderation_without_a_model_uses_openais_default_and_counts_tokens(gateway: Gateway, key: str) -> None:
    raw = await gateway.openai(key).moderations.with_raw_response.create(input=["I will kill the process", "hello"])
    result = raw.parse()
    validate("CreateModerationResponse", raw.http_response.json())
    assert [r.flagged for r in result.results] == [True, False]
    row = await gateway.usage(raw.headers["x-request-id"])
    assert (row.endpoint, row.model) == ("moderations", "omni-moderation-latest")
    assert row.prompt_tokens > 0 and row.completion_tokens == 0  # the backend reports none: counted here
    assert row.cost_nano_usd == -(-row.prompt_tokens * 10_000 // 1000)


async def test_speech_streams_audio_back_and_is_priced_per_character(gateway: Gateway, key: str) -> None:
    text = "Hello there, this is the gateway speaking." * 3
    async with gateway.openai(key).audio.speech.with_streaming_response.create(
        model="tts-1", voice="alloy", input=text, response_format="wav"
    ) as response:
        assert response.headers["content-type"] == "audio/wav"
        pieces = [piece async for piece in response.iter_bytes()]
        request_id = response.headers["x-request-id"]
    audio = b"".join(pieces)
    assert len(audio) == SPEECH_BYTES_PER_CHAR * len(text)
    row = await gateway.usage(request_id)
    assert (row.endpoint, row.characters, row.status_code, row.streamed) == ("audio.speech", len(text), 200, False)
    assert row.cost_nano_usd == -(-len(text) * 15_000_000 // 1000)


async def test_speech_as_events_is_metered_by_its_reported_tokens_too(gateway: Gateway, key: str) -> None:
    async with gateway.http() as http:
        response = await http.post(
            "/v1/audio/speech",
            headers={"authorization": f"Bearer {key}"},
            json={"model": "gpt-4o-mini-tts", "voice": "alloy", "input": "one two three", "stream_format": "sse"},
        )
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    assert b"speech.audio.done" in response.content
    row = await gateway.usage(response.headers["x-request-id"])
    assert (row.characters, row.prompt_tokens, row.completion_tokens, row.streamed) == (13, 3, 1, True)
    assert row.cost_nano_usd == -(-(3 * 600_000 + 1 * 12_000_000) // 1000)


async def test_transcription_is_priced_by_the_seconds_of_audio(gateway: Gateway, key: str) -> None:
    audio = wav(2.5)
    raw = await gateway.openai(key).audio.transcriptions.with_raw_response.create(
        model="whisper-1", file=("speech.wav", audio, "audio/wav"), language="en"
    )
    assert raw.parse().text == TRANSCRIPT
    validate("CreateTranscriptionResponseJson", raw.http_response.json())
    sent = gateway.upstream.requests[-1].body
    assert sent["file_sha256"] == hashlib.sha256(audio).hexdigest() and sent["fields"]["language"] == "en"
    row = await gateway.usage(raw.headers["x-request-id"])
    assert (row.endpoint, row.audio_ms, row.status_code) == ("audio.transcriptions", 2500, 200)
    assert row.cost_nano_usd == 2500 * 100  # $0.0001 per second


@pytest.mark.parametrize("response_format", ["text", "srt", "vtt", "verbose_json"])
async def test_every_response_format_is_metered(gateway: Gateway, key: str, response_format: str) -> None:
    raw = await gateway.openai(key).audio.transcriptions.with_raw_response.create(
        model="whisper-1", file=("speech.wav", wav(1.25), "audio/wav"), response_format=response_format
    )
    body = raw.http_response.text
    if response_format == "text":
        # Asked upstream as JSON (it carries the duration), answered as the text the client wanted.
        assert body == TRANSCRIPT + "\n" and raw.headers["content-type"].startswith("text/plain")
        assert gateway.upstream.requests[-1].body["fields"]["response_format"] == "json"
    else:
        assert TRANSCRIPT in body
    row = await gateway.usage(raw.headers["x-request-id"])
    assert row.audio_ms == 1250 and row.cost_nano_usd == 125_000


async def test_translation_is_metered_like_a_transcription(gateway: Gateway, key: str) -> None:
    raw = await gateway.openai(key).audio.translations.with_raw_response.create(
        model="whisper-1", file=("speech.wav", wav(3), "audio/wav"), response_format="verbose_json"
    )
    assert raw.parse().text.startswith("Translated:")
    validate("CreateTranslationResponseVerboseJson", raw.http_response.json())
    row = await gateway.usage(raw.headers["x-request-id"])
    assert (row.endpoint, row.audio_ms) == ("audio.translations", 3000)


async def test_streamed_transcription_relays_events_and_bills_tokens(gateway: Gateway, key: str) -> None:
    async with gateway.openai(key).audio.transcriptions.with_streaming_response.create(
        model="gpt-4o-transcribe", file=("speech.wav", wav(2), "audio/wav"), stream=True
    ) as response:
        events = [event async for event in await response.parse()]
        request_id = response.headers["x-request-id"]
    assert events[-1].type == "transcript.text.done" and events[-1].text == TRANSCRIPT
    row = await gateway.usage(request_id)
    assert (row.prompt_tokens, row.completion_tokens, row.audio_ms, row.streamed) == (20, 9, 0, True)


async def test_model_after_the_file_still_routes_and_streams_through(gateway: Gateway, key: str) -> None:
    audio = wav(4)
    boundary = "gateway-test-boundary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
        "Content-Type: audio/wav\r\n\r\n"
    ).encode()
    body += audio + f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1'.encode()
    body += f"\r\n--{boundary}--\r\n".encode()

    async def pieces() -> object:  # sent chunked, in small pieces, as a slow client would
        view = io.BytesIO(body)
        while piece := view.read(7000):
            yield piece

    async with gateway.http() as http:
        response = await http.post(
            "/v1/audio/transcriptions",
            headers={"authorization": f"Bearer {key}", "content-type": f"multipart/form-data; boundary={boundary}"},
            content=pieces(),  # type: ignore[arg-type]
        )
    assert response.status_code == 200, response.text
    assert gateway.upstream.requests[-1].body["file_sha256"] == hashlib.sha256(audio).hexdigest()
    assert (await gateway.usage(response.headers["x-request-id"])).audio_ms == 4000


async def test_bad_uploads_get_clear_errors_and_are_recorded(gateway: Gateway, key: str) -> None:
    auth = {"authorization": f"Bearer {key}"}
    async with gateway.http() as http:
        not_multipart = await http.post("/v1/audio/transcriptions", headers=auth, json={"model": "whisper-1"})
        no_model = await http.post("/v1/audio/transcriptions", headers=auth, files={"file": ("a.wav", wav(0.1))})
        unknown = await http.post(
            "/v1/audio/transcriptions", headers=auth, data={"model": "nope"}, files={"file": ("a.wav", b"x")}
        )
    assert not_multipart.status_code == 400 and "multipart" in not_multipart.json()["error"]["message"]
    assert no_model.status_code == 400 and no_model.json()["error"]["param"] == "model"
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "model_not_found"
    row = await gateway.usage(no_model.headers["x-request-id"])
    assert (row.status_code, row.endpoint) == (400, "audio.transcriptions")


async def test_backend_errors_on_uploads_keep_the_backends_message(gateway: Gateway, key: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await gateway.openai(key).audio.transcriptions.create(model="whisper-broken", file=("a.wav", wav(0.5)))
    assert caught.value.status_code == 400
    assert (await gateway.usage(caught.value.response.headers["x-request-id"])).status_code == 400


async def test_azure_deployments_serve_speech_and_transcriptions(gateway: Gateway, key: str) -> None:
    client = gateway.openai(key)
    raw = await client.audio.transcriptions.with_raw_response.create(model="azure-whisper", file=("a.wav", wav(2)))
    assert raw.parse().text == TRANSCRIPT
    sent = gateway.fakes.azure.requests[-1]
    assert sent.path == "/openai/deployments/whisper-deploy/audio/transcriptions" and "api-version" in sent.query
    assert (await gateway.usage(raw.headers["x-request-id"])).audio_ms == 2000
    async with client.audio.speech.with_streaming_response.create(model="azure-tts", voice="alloy", input="hi") as r:
        assert len(await r.read()) == 2 * SPEECH_BYTES_PER_CHAR


async def test_endpoints_a_backend_lacks_get_a_clear_400(gateway: Gateway, key: str) -> None:
    client = gateway.openai(key)
    for model in ("claude-model", "gemini-model", "bedrock-model"):
        with pytest.raises(openai.BadRequestError, match="images/generations"):
            await client.images.generate(model=model, prompt="x")
        with pytest.raises(openai.BadRequestError, match="audio/transcriptions"):
            await client.audio.transcriptions.create(model=model, file=("a.wav", wav(0.1)))
        with pytest.raises(openai.BadRequestError, match="audio/speech"):
            await client.audio.speech.create(model=model, voice="alloy", input="x")
    with pytest.raises(openai.BadRequestError, match="moderations"):
        await client.moderations.create(model="azure-model", input="x")


async def test_uploads_beyond_the_limit_get_413(gateway: Gateway, key: str) -> None:
    limit = gateway.runtime.settings.max_upload_bytes
    async with gateway.http() as http:
        response = await http.post(
            "/v1/audio/transcriptions",
            headers={"authorization": f"Bearer {key}"},
            data={"model": "whisper-1"},
            files={"file": ("big.wav", b"\x00" * (limit + 1))},
        )
    assert response.status_code == 413 and response.json()["error"]["type"] == "invalid_request_error"


async def test_image_streaming_is_refused_clearly(gateway: Gateway, key: str) -> None:
    async with gateway.http() as http:
        response = await http.post(
            "/v1/images/generations",
            headers={"authorization": f"Bearer {key}"},
            json={"model": "dall-e-3", "prompt": "x", "stream": True},
        )
    assert response.status_code == 400 and response.json()["error"]["param"] == "stream"
    assert isinstance(response.json()["error"]["message"], str)
    assert httpx.codes.is_error(response.status_code)
