"""The endpoints the gateway serves: what each needs from a request and where it goes upstream."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str
    """Recorded in the usage ledger, e.g. ``chat.completions``."""
    path: str
    """Path below the backend's base URL."""
    required: tuple[str, ...]
    streams: bool
    """Takes ``stream: true``."""
    relays: bool = False
    """The backend's answer goes back as it arrives, whatever its type (audio, text, JSON, SSE)."""
    form: bool = False
    """The request is a multipart/form-data upload, streamed through rather than parsed whole."""
    default_model: str | None = None
    """The model when the client names none (OpenAI's default for the endpoint)."""


CHAT = Endpoint("chat.completions", "/chat/completions", ("messages",), streams=True)
COMPLETIONS = Endpoint("completions", "/completions", ("prompt",), streams=True)
EMBEDDINGS = Endpoint("embeddings", "/embeddings", ("input",), streams=False)
# OpenAI's Responses API, for OpenAI-compatible backends that offer it.
RESPONSES = Endpoint("responses", "/responses", ("input",), streams=True)
# Anthropic-format clients (POST /v1/messages): a chat completion inside, recorded under its own name.
MESSAGES = Endpoint("messages", "/chat/completions", ("messages",), streams=True)
IMAGES = Endpoint("images.generations", "/images/generations", ("prompt",), streams=False)
MODERATIONS = Endpoint("moderations", "/moderations", ("input",), streams=False, default_model="omni-moderation-latest")
SPEECH = Endpoint("audio.speech", "/audio/speech", ("input", "voice"), streams=False, relays=True)
TRANSCRIPTIONS = Endpoint(
    "audio.transcriptions", "/audio/transcriptions", ("file",), streams=False, relays=True, form=True
)
TRANSLATIONS = Endpoint("audio.translations", "/audio/translations", ("file",), streams=False, relays=True, form=True)
