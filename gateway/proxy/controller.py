"""``/v1``: thin handlers that hand the raw request to the pipeline."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath
from litestar.response.base import ASGIResponse
from litestar.status_codes import HTTP_200_OK
from litestar.types import ASGIApp

from gateway.errors import ModelNotFound
from gateway.proxy.openapi import proxy_operation
from gateway.proxy.pipeline import Pipeline
from gateway.web.client import RequestClient
from gateway.web.openapi import PROXY_ERRORS, UPLOAD_ERRORS, USER_KEY, error_responses
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


class ModelObject(msgspec.Struct):
    id: str
    created: int
    object: str = "model"
    owned_by: str = "gateway"


class ModelList(msgspec.Struct):
    data: list[ModelObject]
    object: str = "list"


def _proxy(path: str, endpoint: Endpoint, summary: str, **options: Any) -> post:
    """The route of one inference endpoint; its OpenAPI description comes from ``endpoint``."""
    errors = UPLOAD_ERRORS if endpoint.form else PROXY_ERRORS
    return post(
        path,
        summary=summary,
        status_code=HTTP_200_OK,  # documentation only: the pipeline's response carries its own status
        operation_class=proxy_operation(endpoint),
        responses=error_responses(*errors),
        **options,
    )


class OpenAIController(Controller):
    path = "/v1"
    tags = ["OpenAI-compatible API"]
    security = USER_KEY

    @_proxy("/chat/completions", CHAT, "Create a chat completion (plain or streamed)")
    async def chat_completions(self, request: AnyRequest) -> ASGIApp:
        return await _handle(request, CHAT)

    @_proxy("/completions", COMPLETIONS, "Create a (legacy) text completion")
    async def completions(self, request: AnyRequest) -> ASGIApp:
        return await _handle(request, COMPLETIONS)

    @_proxy("/responses", RESPONSES, "Create a model response (Responses API, plain or streamed)")
    async def responses(self, request: AnyRequest) -> ASGIApp:
        return await _handle(request, RESPONSES)

    @_proxy("/embeddings", EMBEDDINGS, "Create embeddings")
    async def embeddings(self, request: AnyRequest) -> ASGIApp:
        return await _handle(request, EMBEDDINGS)

    @_proxy("/images/generations", IMAGES, "Create images from a prompt")
    async def images_generations(self, request: AnyRequest) -> ASGIApp:
        return await _handle(request, IMAGES)

    @_proxy("/moderations", MODERATIONS, "Classify text (and images) as potentially harmful")
    async def moderations(self, request: AnyRequest) -> ASGIApp:
        return await _handle(request, MODERATIONS)

    @_proxy("/audio/speech", SPEECH, "Generate audio from text (streamed back as it is made)")
    async def audio_speech(self, request: AnyRequest) -> ASGIApp:
        return await _handle(request, SPEECH)

    # Uploads stream through under their own limit (GATEWAY_MAX_UPLOAD_BYTES), enforced while they pass.
    @_proxy("/audio/transcriptions", TRANSCRIPTIONS, "Transcribe audio (multipart upload)", request_max_body_size=None)
    async def audio_transcriptions(self, request: AnyRequest) -> ASGIApp:
        return await _handle(request, TRANSCRIPTIONS)

    @_proxy(
        "/audio/translations",
        TRANSLATIONS,
        "Translate audio into English (multipart upload)",
        request_max_body_size=None,
    )
    async def audio_translations(self, request: AnyRequest) -> ASGIApp:
        return await _handle(request, TRANSLATIONS)

    @get(
        "/models",
        summary="List the models this key may use",
        responses={200: ResponseSpec(ModelList, description="The models"), **error_responses(401, 503)},
    )
    async def list_models(self, request: AnyRequest) -> ASGIApp:
        pipeline: Pipeline = request.app.state.pipeline
        key = await pipeline.authenticate(request.headers)
        routes = [r for r in pipeline.catalog.routes.values() if key.may_use(r.model)]
        body = ModelList(data=[ModelObject(r.model, r.created) for r in routes])
        return ASGIResponse(body=_encoder.encode(body), media_type="application/json")

    @get(
        "/models/{model_id:path}",
        summary="Retrieve a model this key may use",
        responses={200: ResponseSpec(ModelObject, description="The model"), **error_responses(400, 401, 404, 503)},
    )
    async def get_model(self, request: AnyRequest, model_id: FromPath[str]) -> ASGIApp:
        pipeline: Pipeline = request.app.state.pipeline
        key = await pipeline.authenticate(request.headers)
        name = model_id.lstrip("/")
        route = pipeline.catalog.resolve(name)
        if not key.may_use(name):  # a model the key may not use does not exist for it
            raise ModelNotFound(f"The model '{name}' does not exist.", param="model")
        return ASGIResponse(
            body=_encoder.encode(ModelObject(route.model, route.created)), media_type="application/json"
        )
