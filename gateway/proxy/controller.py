"""``/v1``: thin handlers that hand the raw request to the pipeline."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.params import FromPath
from litestar.response.base import ASGIResponse
from litestar.types import ASGIApp

from gateway.errors import ModelNotFound
from gateway.proxy.pipeline import Pipeline
from gateway.web.client import RequestClient
from gateway.web.request_id import request_id
from gateway.wire.endpoints import (
    CHAT,
    COMPLETIONS,
    EMBEDDINGS,
    IMAGES,
    MODERATIONS,
    RESPONSES,
    SPEECH,
    TRANSCRIPTIONS,
    TRANSLATIONS,
    Endpoint,
)

_encoder = msgspec.json.Encoder()
AnyRequest = Request[Any, Any, State]


async def _handle(request: AnyRequest, endpoint: Endpoint) -> ASGIApp:
    pipeline: Pipeline = request.app.state.pipeline
    return await pipeline.handle(request_id(request.scope), endpoint, RequestClient(request))


class OpenAIController(Controller):
    path = "/v1"
    tags = ["OpenAI-compatible API"]

    @post("/chat/completions", summary="Create a chat completion (plain or streamed)")
    async def chat_completions(self, request: AnyRequest) -> ASGIApp:
        return await _handle(request, CHAT)

    @post("/completions", summary="Create a (legacy) text completion")
    async def completions(self, request: AnyRequest) -> ASGIApp:
        return await _handle(request, COMPLETIONS)

    @post("/responses", summary="Create a model response (Responses API, plain or streamed)")
    async def responses(self, request: AnyRequest) -> ASGIApp:
        return await _handle(request, RESPONSES)

    @post("/embeddings", summary="Create embeddings")
    async def embeddings(self, request: AnyRequest) -> ASGIApp:
        return await _handle(request, EMBEDDINGS)

    @post("/images/generations", summary="Create images from a prompt")
    async def images_generations(self, request: AnyRequest) -> ASGIApp:
        return await _handle(request, IMAGES)

    @post("/moderations", summary="Classify text (and images) as potentially harmful")
    async def moderations(self, request: AnyRequest) -> ASGIApp:
        return await _handle(request, MODERATIONS)

    @post("/audio/speech", summary="Generate audio from text (streamed back as it is made)")
    async def audio_speech(self, request: AnyRequest) -> ASGIApp:
        return await _handle(request, SPEECH)

    # Uploads stream through under their own limit (GATEWAY_MAX_UPLOAD_BYTES), enforced while they pass.
    @post("/audio/transcriptions", summary="Transcribe audio (multipart upload)", request_max_body_size=None)
    async def audio_transcriptions(self, request: AnyRequest) -> ASGIApp:
        return await _handle(request, TRANSCRIPTIONS)

    @post("/audio/translations", summary="Translate audio into English (multipart upload)", request_max_body_size=None)
    async def audio_translations(self, request: AnyRequest) -> ASGIApp:
        return await _handle(request, TRANSLATIONS)

    @get("/models", summary="List the models this key may use")
    async def list_models(self, request: AnyRequest) -> ASGIApp:
        pipeline: Pipeline = request.app.state.pipeline
        key = await pipeline.authenticate(request.headers)
        routes = [r for r in pipeline.catalog.routes.values() if key.may_use(r.model)]
        body = {"object": "list", "data": [_model_object(r.model, r.created) for r in routes]}
        return ASGIResponse(body=_encoder.encode(body), media_type="application/json")

    @get("/models/{model_id:path}", summary="Retrieve a model this key may use")
    async def get_model(self, request: AnyRequest, model_id: FromPath[str]) -> ASGIApp:
        pipeline: Pipeline = request.app.state.pipeline
        key = await pipeline.authenticate(request.headers)
        name = model_id.lstrip("/")
        route = pipeline.catalog.resolve(name)
        if not key.may_use(name):  # a model the key may not use does not exist for it
            raise ModelNotFound(f"The model '{name}' does not exist.", param="model")
        return ASGIResponse(
            body=_encoder.encode(_model_object(route.model, route.created)), media_type="application/json"
        )


def _model_object(name: str, created: int) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": created, "owned_by": "gateway"}
