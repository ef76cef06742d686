"""The streaming multipart reader: routing field found, upload re-sent byte for byte with `model` swapped."""

from __future__ import annotations

import email.parser
import email.policy
import hashlib
import tracemalloc
from collections.abc import AsyncIterator

import httpx
import pytest

from gateway.errors import InvalidRequest, RequestTooLarge
from gateway.wire.multipart import FormStream

AUDIO = bytes(range(256)) * 40 + b"\r\n--not-the-boundary\r\n\r\n--"


async def _chunks(body: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def _split(*pieces: bytes) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece


async def _collect(stream: AsyncIterator[bytes]) -> bytes:
    return b"".join([piece async for piece in stream])


def _httpx_body(**kwargs: object) -> tuple[str, bytes]:
    request = httpx.Request("POST", "http://x", **kwargs)  # type: ignore[arg-type]
    return request.headers["content-type"], request.read()


def _parse(content_type: str, body: bytes) -> list[tuple[object, object, object]]:
    """(name, filename, payload) per part, read by the stdlib's own MIME parser."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    assert message.is_multipart() and not message.defects
    return [
        (part.get_param("name", header="content-disposition"), part.get_filename(), part.get_payload(decode=True))
        for part in message.iter_parts()
    ]


async def _rewrite(content_type: str, body: bytes, chunk: int = 4096, **options: int) -> tuple[FormStream, bytes]:
    form = await FormStream.open(content_type, _chunks(body, chunk), **options)  # type: ignore[arg-type]
    try:
        return form, await _collect(form.rewrite({"model": "backend/whisper-large-v3"}))
    finally:
        await form.aclose()


async def test_httpx_body_with_model_first_round_trips() -> None:
    data = {"model": "whisper-1", "language": "en", "prompt": "Grüße"}
    content_type, body = _httpx_body(data=data, files={"file": ("talk.wav", AUDIO, "audio/wav")})
    form = await FormStream.open(content_type, _chunks(body, 1000))
    # Every text field before the file is known before anything is sent on; the file is not read yet.
    assert form.fields == data and form.filename == "talk.wav"
    out = await _collect(form.rewrite({"model": "backend/whisper-large-v3"}))
    await form.aclose()
    assert out == body.replace(b"\r\n\r\nwhisper-1\r\n", b"\r\n\r\nbackend/whisper-large-v3\r\n")
    assert form.fields == data and form.filename == "talk.wav"
    assert form.content_type == content_type
    assert _parse(form.content_type, out) == [
        ("model", None, b"backend/whisper-large-v3"),
        ("language", None, b"en"),
        ("prompt", None, "Grüße".encode()),
        ("file", "talk.wav", AUDIO),
    ]


async def test_model_after_the_file_is_spooled_to_disk_and_replayed() -> None:
    big = AUDIO * 20
    files = {"file": ("a.wav", big, "audio/wav"), "extra": ("b.txt", b"x" * 5000), "model": (None, "whisper-1")}
    content_type, body = _httpx_body(files=files)
    form = await FormStream.open(content_type, _chunks(body, 700), spool_bytes=1024)
    assert form.fields == {"model": "whisper-1"} and form.filename == "a.wav"
    assert form._spool._rolled  # type: ignore[attr-defined]
    out = await _collect(form.rewrite({"model": "backend/whisper-large-v3"}))
    await form.aclose()
    assert _parse(form.content_type, out) == [
        ("file", "a.wav", big),
        ("extra", "b.txt", b"x" * 5000),
        ("model", None, b"backend/whisper-large-v3"),
    ]


SMALL = (
    b"preamble, ignored\r\n--b:1 x\r\n"
    b'Content-Disposition: form-data; name="file"; filename="semi;colon \\"q\\".wav"\r\n'
    b"Content-Type: audio/wav\r\n\r\n\r\n--b:1\r\n--b:1x\r\n"
    b"--b:1 x  \r\n"
    b'content-disposition: form-data; name="model"\r\n\r\nwhisper-1'
    b"\r\n--b:1 x\r\n"
    b"Content-Disposition: form-data; name=lang\r\n\r\n"
    b"\r\n--b:1 x--\r\nepilogue, ignored"
)
SMALL_TYPE = 'multipart/form-data; charset=utf-8; boundary="b:1 x"'


async def test_every_chunking_and_split_position_gives_the_same_body() -> None:
    form, expected = await _rewrite(SMALL_TYPE, SMALL, chunk=len(SMALL))
    assert form.fields == {"model": "whisper-1", "lang": ""}
    assert form.filename == 'semi;colon "q".wav' and form.content_type == SMALL_TYPE.replace("charset=utf-8; ", "")
    assert _parse(form.content_type, expected) == [
        ("file", 'semi;colon "q".wav', b"\r\n--b:1\r\n--b:1x"),
        ("model", None, b"backend/whisper-large-v3"),
        ("lang", None, b""),
    ]
    for size in (1, 2, 3, 7):
        assert (await _rewrite(SMALL_TYPE, SMALL, chunk=size))[1] == expected
    for cut in range(len(SMALL) + 1):
        form = await FormStream.open(SMALL_TYPE, _split(SMALL[:cut], b"", SMALL[cut:]))
        assert await _collect(form.rewrite({"model": "backend/whisper-large-v3"})) == expected, cut
        await form.aclose()


async def test_twenty_megabytes_stream_through_in_little_memory() -> None:
    block = bytes(range(256)) * 256  # 64 KiB
    head = b'--B\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n'
    head += b'--B\r\nContent-Disposition: form-data; name="file"; filename="long.wav"\r\n\r\n'
    tail = b"\r\n--B--\r\n"
    count = 20 * 1024 * 1024 // len(block)
    expected = hashlib.sha256(head.replace(b"whisper-1", b"backend/whisper-large-v3"))
    for _ in range(count):
        expected.update(block)
    expected.update(tail)

    async def body() -> AsyncIterator[bytes]:
        yield head
        for _ in range(count):
            yield block
        yield tail

    seen = hashlib.sha256()
    tracemalloc.start()
    try:
        form = await FormStream.open("multipart/form-data; boundary=B", body())
        async for piece in form.rewrite({"model": "backend/whisper-large-v3"}):
            seen.update(piece)
        await form.aclose()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert seen.hexdigest() == expected.hexdigest()
    assert peak < 2 * 1024 * 1024, peak


MP = "multipart/form-data; boundary=b"
FIELD = b'Content-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n'


@pytest.mark.parametrize(
    ("content_type", "body", "message"),
    [
        ("application/json", b"{}", "Expected a multipart/form-data body"),
        ("multipart/form-data", b"--b\r\n" + FIELD + b"--b--\r\n", "missing or invalid boundary"),
        ("multipart/form-data; boundary=", b"--\r\n", "missing or invalid boundary"),
        (MP, b"just some text", "no opening boundary"),
        (MP, b'--b\r\nContent-Disposition: form-data; name="model"\r\n--b--', "blank line"),
        (MP, b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--", "Content-Disposition"),
        (MP, b"--b\r\n\r\nx\r\n--b--", "Content-Disposition"),
        (MP, b"--b\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b--", "name=..."),
        (MP, b"--b\r\nno colon here\r\n\r\nx\r\n--b--", "malformed header"),
        (MP, b"--bogus\r\n" + FIELD + b"--b--", "trailing characters"),
        (MP, b"--b\r\n" + FIELD, "ended before its closing boundary"),
        (MP, b"--b\r\n" + FIELD.replace(b"whisper", b"\xff") + b"--b--", "not UTF-8"),
        (MP, b"--b\r\nContent-Disposition: form-data; name=", "ended before"),
    ],
)
async def test_malformed_bodies_are_invalid_requests(content_type: str, body: bytes, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        await FormStream.open(content_type, _chunks(body, 3))


async def test_malformed_rest_of_body_fails_mid_stream() -> None:
    file_part = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\nabc'
    form = await FormStream.open(MP, _chunks(b"--b\r\n" + FIELD + file_part, 5))
    with pytest.raises(InvalidRequest, match="ended before its closing boundary"):
        await _collect(form.rewrite({}))
    await form.aclose()


async def test_missing_model_is_reported_as_missing_parameter() -> None:
    content_type, body = _httpx_body(data={"language": "en"}, files={"file": ("a.wav", AUDIO)})
    with pytest.raises(InvalidRequest) as caught:
        await FormStream.open(content_type, _chunks(body, 100))
    assert caught.value.message == "Missing required parameter: 'model'."
    assert (caught.value.param, caught.value.code) == ("model", "missing_required_parameter")


async def test_size_limits_are_request_too_large() -> None:
    content_type, body = _httpx_body(data={"model": "m" * 100}, files={"f": b""})
    with pytest.raises(RequestTooLarge, match="'model' is larger than the limit of 99 bytes"):
        await FormStream.open(content_type, _chunks(body, 7), max_field_bytes=99)
    content_type, body = _httpx_body(files={"file": ("a.wav", AUDIO), "model": (None, "whisper-1")})
    with pytest.raises(RequestTooLarge, match=f"limit of {len(body) - 1} bytes"):
        await FormStream.open(content_type, _chunks(body, 5000), max_total_bytes=len(body) - 1)
    content_type, body = _httpx_body(data={"model": "whisper-1"}, files={"file": ("a.wav", AUDIO)})
    # Past the routing field the limits still hold, now while the upload is being forwarded.
    form = await FormStream.open(content_type, _chunks(body, 100), max_total_bytes=len(body) - 1)
    with pytest.raises(RequestTooLarge, match="limit of"):
        await _collect(form.rewrite({}))
    await form.aclose()
    content_type, body = _httpx_body(data={"model": "whisper-1", "prompt": "p" * 100}, files={"f": b""})
    with pytest.raises(RequestTooLarge, match="'prompt' is larger"):  # read before anything is sent
        await FormStream.open(content_type, _chunks(body, 10), max_field_bytes=99)
    content_type, body = _httpx_body(data={"model": "whisper-1"}, files={"f": b"", "prompt": (None, "p" * 100)})
    form = await FormStream.open(content_type, _chunks(body, 10), max_field_bytes=99)
    with pytest.raises(RequestTooLarge, match="'prompt' is larger"):
        await _collect(form.rewrite({}))
    await form.aclose()
    assert (await _rewrite(content_type, body, max_total_bytes=len(body)))[1]
