"""Stream a ``multipart/form-data`` upload through the gateway, routed on one of its text fields.

The file may be tens of megabytes and may come before ``model``: parts met before the routing field are
kept (text in memory, files in a spool that rolls to disk) and replayed, the rest passes straight through.
"""

from __future__ import annotations

import asyncio
import re
import tempfile
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from dataclasses import dataclass

from gateway.errors import InvalidRequest, RequestTooLarge

_CRLF = b"\r\n"
_IO_STEP = 64 * 1024
# Part headers and the padding after a delimiter are tiny in practice; bounding them keeps a body that
# never sends the expected CRLF from making us buffer without end.
_MAX_HEADER_BYTES = 16 * 1024
_MAX_PADDING_BYTES = 1024
# Parts read before the upload starts streaming on (the routing field and what precedes the file): a
# real form has a handful; thousands of tiny ones would only cost memory and time before routing.
_MAX_PARTS_BEFORE_ROUTING = 100

Replacement = str | Callable[[str], str]
"""A text field's new value, or a function of its old one."""
_BOUNDARY = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")  # RFC 2046 bchars
_PARAM = re.compile(r';\s*([^\s=;]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')
_UNESCAPE = re.compile(r'\\(["\\])')
_TRUNCATED = "The multipart body ended before its closing boundary."


def _params(value: str) -> tuple[str, dict[str, str]]:
    """Split ``type; a=b; c="d;e"`` into its lowercased type and its parameters."""
    head, _, rest = value.partition(";")
    params: dict[str, str] = {}
    for match in _PARAM.finditer(";" + rest):
        raw = match.group(2).strip()
        if raw.startswith('"'):
            # Only \" and \\ are unescaped: browsers send Windows paths with bare backslashes.
            raw = _UNESCAPE.sub(r"\1", raw[1:-1])
        params[match.group(1).lower()] = raw
    return head.strip().lower(), params


@dataclass(slots=True)
class _Part:
    headers: bytes
    name: str
    filename: str | None
    value: str | None = None  # a text field's whole value, set once the part has been read
    offset: int = 0  # where a spooled file part starts in the spool, and how long it is
    size: int = 0


def _part_from(headers: bytes) -> _Part:
    try:
        text = headers.decode("utf-8")
    except UnicodeDecodeError:
        text = headers.decode("latin-1")
    disposition = ""
    for line in filter(None, text.split("\r\n")):
        key, colon, value = line.partition(":")
        if not colon or not key.strip():
            raise InvalidRequest(f"A multipart part has a malformed header line: {line[:80]!r}.")
        if key.strip().lower() == "content-disposition":
            disposition = value
    kind, params = _params(disposition)
    if kind != "form-data" or not params.get("name"):
        raise InvalidRequest("Every multipart part needs a 'Content-Disposition: form-data; name=...' header.")
    return _Part(headers.removeprefix(_CRLF), params["name"], params.get("filename"))


class _Parser:
    """Body chunks in; out come a text field as one ``_Part`` with its value, or a file as a ``_Part``,
    its data as ``bytes`` (never more than a chunk at a time), then ``None``."""

    def __init__(self, boundary: bytes, chunks: AsyncIterator[bytes], max_total: int, max_field: int) -> None:
        self._delimiter = b"\r\n--" + boundary
        self._chunks = chunks
        self._max_total, self._max_field, self._total = max_total, max_field, 0
        # The leading CRLF lets a body that opens with "--boundary" match the same delimiter as one after a preamble.
        self._buf, self._pos = _CRLF, 0

    async def _more(self) -> bool:
        try:
            chunk = await anext(self._chunks)
        except StopAsyncIteration:
            return False
        self._total += len(chunk)
        if self._total > self._max_total:
            raise RequestTooLarge(f"The request body is larger than the limit of {self._max_total} bytes.")
        self._buf, self._pos = self._buf[self._pos :] + chunk, 0
        return True

    async def _find(self, needle: bytes, limit: int, message: str, eof: str = _TRUNCATED) -> int:
        while (found := self._buf.find(needle, self._pos)) < 0:
            if len(self._buf) - self._pos > limit:
                raise InvalidRequest(message)
            if not await self._more():
                raise InvalidRequest(eof)
        return found

    async def _headers(self) -> bytes:
        # Called with _pos on the CRLF that ends the boundary line, so no headers at all still ends in CRLFCRLF.
        no_blank = "A multipart part's headers are not followed by a blank line."
        try:
            end = await self._find(b"\r\n\r\n", _MAX_HEADER_BYTES, no_blank)
        except InvalidRequest as exc:
            raise InvalidRequest(no_blank if self._delimiter in self._buf[self._pos :] else exc.message) from None
        if self._buf.find(self._delimiter, self._pos, end) >= 0:
            raise InvalidRequest(no_blank)
        if end - self._pos > _MAX_HEADER_BYTES:  # found, but only after a header larger than allowed
            raise InvalidRequest(f"A multipart part's headers are larger than {_MAX_HEADER_BYTES} bytes.")
        headers, self._pos = self._buf[self._pos : end], end + 4
        return headers

    async def events(self) -> AsyncGenerator[_Part | bytes | None, None]:
        delimiter, keep = self._delimiter, len(self._delimiter) - 1
        while (found := self._buf.find(delimiter, self._pos)) < 0:
            self._pos = max(self._pos, len(self._buf) - keep)  # the preamble is dropped as it goes by
            if not await self._more():
                raise InvalidRequest("The multipart body has no opening boundary.")
        self._pos = found + len(delimiter)
        while True:
            while len(self._buf) - self._pos < 2:
                if not await self._more():
                    raise InvalidRequest(_TRUNCATED)
            if self._buf.startswith(b"--", self._pos):
                break
            bad_line = "A multipart boundary line has trailing characters."
            eol = await self._find(_CRLF, _MAX_PADDING_BYTES, bad_line)
            if self._buf[self._pos : eol].strip(b" \t"):
                raise InvalidRequest(bad_line)
            self._pos = eol
            part = _part_from(await self._headers())
            text = bytearray() if part.filename is None else None
            if text is None:
                yield part
            while True:
                found = self._buf.find(delimiter, self._pos)
                end = found if found >= 0 else len(self._buf) - keep
                if end > self._pos:
                    data, self._pos = self._buf[self._pos : end], end
                    if text is None:
                        yield data
                    elif len(text) + len(data) > self._max_field:
                        message = f"The form field '{part.name}' is larger than the limit of {self._max_field} bytes."
                        raise RequestTooLarge(message, param=part.name)
                    else:
                        text += data
                if found >= 0:
                    break
                if not await self._more():
                    raise InvalidRequest(_TRUNCATED)
            self._pos += len(delimiter)
            if text is not None:
                try:
                    part.value = text.decode("utf-8")
                except UnicodeDecodeError:
                    raise InvalidRequest(f"The form field '{part.name}' is not UTF-8.", param=part.name) from None
            yield None if text is None else part
        # The epilogue is dropped, but still read to its end so the size limit covers it too.
        while await self._more():
            self._buf, self._pos = b"", 0


class FormStream:
    """A multipart upload read up to its routing field, ready to be re-sent with some fields replaced."""

    def __init__(self, boundary: str, events: AsyncGenerator[_Part | bytes | None, None], spool_bytes: int) -> None:
        self.fields: dict[str, str] = {}
        self.filename: str | None = None
        self._boundary = boundary.encode("ascii")
        self._events = events
        self._spool = tempfile.SpooledTemporaryFile(max_size=spool_bytes)  # noqa: SIM115 - closed in aclose()
        self._kept: list[_Part] = []
        self._rewritten = False
        self._open_file = False  # the last kept part is a file whose data has not been read yet

    @classmethod
    async def open(
        cls,
        content_type: str,
        chunks: AsyncIterator[bytes],
        *,
        required: str = "model",
        max_field_bytes: int = 64 * 1024,
        max_total_bytes: int = 25 * 1024 * 1024,
        spool_bytes: int = 1024 * 1024,
    ) -> FormStream:
        """Read from ``chunks`` until the text field ``required`` is known, spooling any file before it,
        and on through the text fields that follow it, up to the next file."""
        kind, params = _params(content_type)
        if kind != "multipart/form-data":
            raise InvalidRequest(f"Expected a multipart/form-data body, not {kind or 'no content type'!r}.")
        boundary = params.get("boundary", "")
        if not _BOUNDARY.fullmatch(boundary):
            raise InvalidRequest("The multipart/form-data content type has a missing or invalid boundary.")
        parser = _Parser(boundary.encode("ascii"), chunks, max_total_bytes, max_field_bytes)
        form = cls(boundary, parser.events(), spool_bytes)
        try:
            found = False
            async for event in form._events:
                if isinstance(event, _Part):
                    if len(form._kept) >= _MAX_PARTS_BEFORE_ROUTING:
                        raise InvalidRequest(
                            f"The multipart body has more than {_MAX_PARTS_BEFORE_ROUTING} parts before its "
                            f"'{required}' field and first file."
                        )
                    form._note(event)
                    if found and event.value is None:
                        # The text fields up to here are known (all a router needs, in the usual order);
                        # this file streams through from the start, so nothing of it is spooled.
                        form._kept.append(event)
                        form._open_file = True
                        return form
                    event.offset = form._spool.tell()
                    form._kept.append(event)
                    found = found or (event.value is not None and event.name == required)
                elif event is not None:
                    form._kept[-1].size += len(event)
                    for start in range(0, len(event), _IO_STEP):
                        form._spool.write(event[start : start + _IO_STEP])
                        await asyncio.sleep(0)
            if found:
                return form
            message = f"Missing required parameter: '{required}'."
            raise InvalidRequest(message, param=required, code="missing_required_parameter")
        except BaseException:
            await form.aclose()
            raise

    def _note(self, part: _Part) -> None:
        if part.value is not None:
            self.fields[part.name] = part.value
        elif self.filename is None:
            self.filename = part.filename

    @property
    def content_type(self) -> str:
        """The content type to send upstream; the boundary is quoted only when it has to be."""
        boundary = self._boundary.decode("ascii")
        if any(c in boundary for c in '()<>@,;:\\"/[]?= '):
            boundary = f'"{boundary}"'
        return f"multipart/form-data; boundary={boundary}"

    def rewrite(self, replace: Mapping[str, Replacement]) -> AsyncIterator[bytes]:
        """The whole body again, same boundary, with the text fields named in ``replace`` given new values.
        Parts already read are replayed, the rest passed on as it arrives; single use, as that rest is not kept."""
        if self._rewritten:
            raise RuntimeError("FormStream.rewrite() can only be called once.")
        self._rewritten = True
        return self._rewrite(replace)

    def _opening(self, part: _Part, replace: Mapping[str, Replacement]) -> bytes:
        head = b"--" + self._boundary + _CRLF + part.headers + b"\r\n\r\n"
        if part.value is None:
            return head
        new = replace.get(part.name, part.value)
        value = new(part.value) if callable(new) else new  # a rule also covers fields met after the file
        return head + value.encode("utf-8") + _CRLF

    async def _rewrite(self, replace: Mapping[str, Replacement]) -> AsyncIterator[bytes]:
        # Delimiters and text fields gather in `out` and go with the next piece of file data, so the
        # upstream connection does not see a write per delimiter.
        out = b""
        for index, part in enumerate(self._kept):
            out += self._opening(part, replace)
            if part.value is not None:
                continue
            if self._open_file and index == len(self._kept) - 1:
                break  # its data, and the CRLF after it, come from the stream below
            self._spool.seek(part.offset)
            for start in range(0, part.size, _IO_STEP):
                yield out + self._spool.read(min(_IO_STEP, part.size - start))
                out = b""
            out += _CRLF
        self._kept.clear()
        self._spool.close()
        async for event in self._events:
            if isinstance(event, _Part):
                self._note(event)
                out += self._opening(event, replace)
            elif event is None:
                out += _CRLF
            else:
                yield out + event
                out = b""
            if len(out) >= _IO_STEP:
                yield out
                out = b""
        yield out + b"--" + self._boundary + b"--\r\n"

    async def aclose(self) -> None:
        """Release the spool file and stop reading the body."""
        self._spool.close()
        await self._events.aclose()
