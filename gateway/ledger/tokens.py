"""Offline token counting, for requests whose backend never reported usage (a stream cut short,
a moderation).

Uses ``bpe-openai``'s bundled o200k encoding; backends with other tokenizers are approximated,
which is the best that can be done for tokens the backend produced but never accounted for.
The encoding takes about 1 s and 140 MB to load, so it loads on first use, on a worker thread
(callers run ``estimate_stream_usage`` off the event loop).

The encoder refuses a text of 1,000,000 characters or more, or of more than 200,000 tokens, so a
long text is counted in pieces (see ``count_text``).
"""

from __future__ import annotations

import functools
import re
from typing import Any

import msgspec

from gateway.wire.usage import Usage

_decoder = msgspec.json.Decoder()


@functools.cache
def _encoding() -> Any:
    import bpe_openai

    return bpe_openai.get_encoding("o200k_base")


# A piece of at most 50,000 characters is at most 200,000 UTF-8 bytes, so at most 200,000 tokens:
# within both of the encoder's limits.
_PIECE = 50_000
# Places where o200k's pre-tokenizer always starts a new pre-token, whatever comes before and after;
# each pre-token is encoded on its own, so cutting there changes no token. (Read against the
# pattern in bpe_openai/registry.py: a space only ever begins a pre-token; a letter or digit run
# is never continued by punctuation other than an apostrophe; the punctuation pattern takes only
# newlines and "/" after it. Python's \s is wider than the encoder's, so \S is narrower: safe.)
# Each match is the character before a cut, so ``match.end()`` is the cut.
_CUT = re.compile(
    r"""\S(?=[ \t])  # before a space or tab that follows a non-space
    | \n(?=[^\s/])  # after a newline, before neither a space nor "/"
    | [A-Za-z](?=[0-9]) | [0-9](?=[A-Za-z])
    | [A-Za-z0-9\u3041-\u3096\u30a1-\u30fa\u4e00-\u9fff\uac00-\ud7a3]  # a letter or digit, then
      (?=[!-&(-/:-@\[-`{-~\u3001\u3002\uff01\uff0c\uff1a\uff1b\uff1f])  # punctuation, not '
    """,
    re.VERBOSE,
)


def count_text(text: str) -> int:
    """The text's o200k tokens. A long text is cut where the pre-tokenizer cuts anyway, so the
    pieces' counts add up to the whole's exactly. (Cutting elsewhere could count fewer: BPE merges
    greedily, and a text can take more tokens whole than its two parts do.) A stretch of more than
    ``_PIECE`` characters without such a place counts one token per UTF-8 byte, an upper bound.
    The regex work is bounded per piece too, so a worker thread counting 10 MiB lets go of the
    GIL between pieces (the encoder itself runs without it)."""
    total, start, uncut = 0, 0, False  # uncut: ``start`` is inside a stretch without a cut
    while start < len(text):
        reach = start + _PIECE
        if uncut:  # the stretch goes on, one token per byte, up to its next cut
            cut = _next_cut(text, start, reach)
            end = min(reach, len(text)) if cut is None else cut
            total += _utf8_bytes(text[start:end])
        elif reach >= len(text):
            cut = end = len(text)
            total += _count(text[start:])
        else:
            cut = _last_cut(text, start)
            end = reach if cut is None else cut
            total += _utf8_bytes(text[start:end]) if cut is None else _count(text[start:end])
        uncut, start = cut is None, end
    return total


def _next_cut(text: str, first: int, last: int) -> int | None:
    """The first cut at ``first`` or after, up to ``last``."""
    found = _CUT.search(text, max(first - 1, 0), last + 1)
    return None if found is None else found.end()


def _last_cut(text: str, start: int) -> int | None:
    """A cut within ``_PIECE`` characters after ``start``: the first in the second half of that
    reach (one short search, a piece at least half the size), else the last in the first half."""
    half = start + _PIECE // 2
    cut = _next_cut(text, half, start + _PIECE)
    if cut is None:
        for found in _CUT.finditer(text, start, half):
            cut = found.end()
    return cut


def _count(text: str) -> int:
    return len(_encoding().encode_ordinary(text)) if text else 0


def _utf8_bytes(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))  # a lone surrogate: the encoder's U+FFFD, 3 bytes


def prompt_text(payload: dict[str, Any]) -> str:
    """The text of a chat or completion request: message contents, text parts, or the prompt."""
    parts: list[str] = []
    for message in payload.get("messages") or []:
        if isinstance(message, dict):
            _collect(message.get("content"), parts)
    _collect(payload.get("prompt"), parts)
    _collect(payload.get("instructions"), parts)
    input_ = payload.get("input")  # Responses API: a string or a list of messages
    for item in input_ if isinstance(input_, list) else [input_]:
        # A Responses-API message, a moderation's text part, or plain text.
        _collect(item.get("content", [item]) if isinstance(item, dict) else item, parts)
    return "\n".join(parts)


def _collect(content: Any, parts: list[str]) -> None:
    if isinstance(content, str):
        parts.append(content)
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])


def streamed_text(events: bytes) -> str:
    """Concatenate the generated text of OpenAI chat or completion chunks."""
    parts: list[str] = []
    for line in events.split(b"\n"):
        if not line.startswith(b"data:") or line[5:].strip() == b"[DONE]":
            continue
        try:
            chunk = _decoder.decode(line[5:])
        except (msgspec.DecodeError, RecursionError):
            continue
        if isinstance(chunk, dict) and chunk.get("type") == "response.output_text.delta":
            delta = chunk.get("delta")
            parts.append(delta if isinstance(delta, str) else "")
            continue
        choices = chunk.get("choices") if isinstance(chunk, dict) else None
        for choice in choices if isinstance(choices, list) else []:
            if isinstance(choice, dict):
                _collect_choice(choice, parts)
    return "".join(parts)


def _collect_choice(choice: dict[str, Any], parts: list[str]) -> None:
    delta = choice.get("delta")
    delta = delta if isinstance(delta, dict) else {}
    for value in (delta.get("content"), choice.get("text")):
        if isinstance(value, str):
            parts.append(value)
    calls = delta.get("tool_calls")
    for call in calls if isinstance(calls, list) else []:
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict) and isinstance(function.get("arguments"), str):
            parts.append(function["arguments"])


def estimate_stream_usage(payload: dict[str, Any], forwarded: bytes) -> Usage:
    return Usage(
        prompt_tokens=count_text(prompt_text(payload)),
        completion_tokens=count_text(streamed_text(forwarded)),
    )


def estimate_reply_usage(payload: dict[str, Any], reply: bytes) -> Usage:
    """For a whole (not streamed) reply that came without usage: its request's text, and the text
    of its choices if it has any (a moderation has none)."""
    try:
        decoded = _decoder.decode(reply)
    except (msgspec.DecodeError, RecursionError):
        decoded = None
    parts: list[str] = []
    choices = decoded.get("choices") if isinstance(decoded, dict) else None
    for choice in choices if isinstance(choices, list) else []:
        if isinstance(choice, dict):
            message = choice.get("message")
            _collect(message.get("content") if isinstance(message, dict) else choice.get("text"), parts)
    return Usage(prompt_tokens=count_text(prompt_text(payload)), completion_tokens=count_text("".join(parts)))
