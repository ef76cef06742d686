"""Prompts of a million characters and more, up to the largest body the gateway accepts, behind a
limit that counts tokens: the quota estimate counts them (the tokenizer alone refuses such input)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path

import bpe_openai
import pytest
from harness import Gateway, running_gateway

from gateway.ledger.tokens import count_text

QUOTAS = """
limits:
  - {scope: key, name: "*", tokens_per_minute: 1000000000}
"""
MILLION = "word " * 200_000  # 1,000,000 characters, 200,000 tokens


@pytest.fixture(scope="module")
async def limited(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Gateway]:
    # Counting is the same in both modes; embedded mode is enough.
    tmp: Path = tmp_path_factory.mktemp("long-prompts")
    quotas = tmp / "quotas.yaml"
    quotas.write_text(QUOTAS)
    async with running_gateway("embedded", tmp, quotas_file=str(quotas)) as gateway:
        yield gateway


async def _answered(gateway: Gateway, request_id: str) -> None:
    row = await gateway.usage(request_id)
    assert (row.status_code, row.error_type) == (200, None)


@pytest.mark.parametrize("content", [MILLION, "x" * 1_000_000, "词" * 1_000_000])
async def test_a_million_character_chat_is_estimated_and_answered(limited: Gateway, content: str) -> None:
    client = limited.openai(await limited.create_key("million"), timeout=120)
    messages: list[dict[str, str]] = [{"role": "user", "content": content}]
    raw = await client.chat.completions.with_raw_response.create(model="chat-model", messages=messages)  # type: ignore[arg-type]
    assert raw.status_code == 200 and int(raw.headers["x-ratelimit-remaining-tokens"]) < 1_000_000_000
    await _answered(limited, raw.headers["x-request-id"])
    async with client.chat.completions.with_streaming_response.create(
        model="chat-model",
        messages=messages,  # type: ignore[arg-type]
        stream=True,
    ) as response:
        assert response.status_code == 200
        assert [chunk async for chunk in await response.parse()]
    await _answered(limited, response.headers["x-request-id"])


async def test_two_messages_of_600000_characters(limited: Gateway) -> None:
    client = limited.openai(await limited.create_key("two"), timeout=120)
    half = "word " * 120_000
    messages = [{"role": "user", "content": half}, {"role": "user", "content": half}]
    raw = await client.chat.completions.with_raw_response.create(model="chat-model", messages=messages)  # type: ignore[arg-type]
    await _answered(limited, raw.headers["x-request-id"])


async def test_the_largest_accepted_body_is_estimated(limited: Gateway) -> None:
    client = limited.openai(await limited.create_key("largest"), timeout=120)
    content = "word " * ((limited.runtime.settings.max_body_bytes - 1000) // 5)
    raw = await client.chat.completions.with_raw_response.create(
        model="chat-model",
        messages=[{"role": "user", "content": content}],
    )
    await _answered(limited, raw.headers["x-request-id"])


async def test_a_million_character_embedding_input(limited: Gateway) -> None:
    client = limited.openai(await limited.create_key("embed"), timeout=120)
    raw = await client.embeddings.with_raw_response.create(model="embed-model", input=MILLION)
    await _answered(limited, raw.headers["x-request-id"])


async def test_a_million_character_anthropic_message(limited: Gateway) -> None:
    client = limited.anthropic(await limited.create_key("messages")).with_options(timeout=120)
    raw = await client.messages.with_raw_response.create(
        model="chat-model", max_tokens=100, messages=[{"role": "user", "content": MILLION}]
    )
    await _answered(limited, raw.headers["x-request-id"])


def _encoded(text: str) -> int:
    """The encoder's own count, for a text it takes whole (under 1,000,000 characters and 200,000
    tokens)."""
    return len(bpe_openai.get_encoding("o200k_base").encode_ordinary(text))


@pytest.mark.parametrize("seed", range(6))
def test_counting_in_pieces_is_exact(seed: int) -> None:
    # Texts the encoder takes whole, but long enough to be counted in several pieces.
    rng = random.Random(seed)
    alphabet = [*"abcdefghijklmnopqrstuvwxyzABC0123456789", *" \t\n\r/.,'-_", "中", "文", "\uff0c", "é", "\u00a0", "😀"]
    weights = [rng.random() ** 3 for _ in alphabet]
    text = "".join(rng.choices(alphabet, weights, k=rng.randint(120_000, 190_000)))
    assert count_text(text) == _encoded(text)


def test_counting_near_and_past_the_encoders_limits() -> None:
    prose = ("Internationalization considerations, 2024 interoperability; 中文。\n" * 16_000)[:999_999]
    assert count_text(prose) == _encoded(prose)  # the longest text the encoder takes whole
    unit = " " + prose[:-1]  # ends in "。": its copies meet where the pre-tokenizer cuts
    for copies in (2, 11):  # 2,000,000 characters; past 10 MiB
        assert count_text(unit * copies) == copies * _encoded(unit)
    # Under 1,000,000 characters but past 200,000 tokens, which the encoder refuses too.
    assert count_text(" a b" * 150_000) == 3 * _encoded(" a b" * 50_000)
    # No place where the pre-tokenizer is sure to cut: one token per UTF-8 byte, an upper bound.
    assert count_text("x" * 1_000_000) == 1_000_000 >= _encoded("x" * 999_999)
    assert count_text("词" * 1_000_000) == 3_000_000
