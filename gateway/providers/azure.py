"""Azure OpenAI: OpenAI's wire schema, addressed by deployment instead of by model.

Requests go to ``{endpoint}/openai/deployments/{deployment}{path}?api-version=...``, where the
endpoint is the backend's ``base_url`` (``https://<resource>.openai.azure.com``) and the deployment
is the route's ``upstream_model``. Bodies, responses, streams and errors are OpenAI's, so all of
that is the OpenAI adapter's; only the URL and the meaning of a 404 differ.

Authentication is whatever ``route.backend.credentials`` adds: ``api-key`` for kind "azure" (see
``credentials``), or an ``authorization: Bearer`` Entra ID token should a backend carry one.
"""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import quote, urlencode

from gateway.catalog.kinds import KINDS
from gateway.catalog.registry import ModelRoute
from gateway.errors import GatewayError, UnsupportedEndpoint, UpstreamError
from gateway.providers.base import UpstreamRequest
from gateway.providers.openai import OpenAIAdapter, error_fields, error_object, misconfigured
from gateway.wire.endpoints import MODERATIONS, RESPONSES, Endpoint
from gateway.wire.multipart import FormStream

_DEFAULT_VERSION = KINDS["azure"].default_api_version


def deployment_url(route: ModelRoute, endpoint: Endpoint) -> str:
    """The data-plane URL of the route's deployment for one endpoint."""
    # safe="" so that a "/" in a deployment name cannot step into another path.
    deployment = quote(route.upstream_model, safe="")
    # The config fills api_version for azure backends; a target built elsewhere may not have it.
    version = route.backend.api_version or _DEFAULT_VERSION
    base = route.backend.base_url.rstrip("/")
    return f"{base}/openai/deployments/{deployment}{endpoint.path}?{urlencode({'api-version': version})}"


class AzureOpenAIAdapter(OpenAIAdapter):
    def request(self, endpoint: Endpoint, payload: dict[str, Any], route: ModelRoute) -> UpstreamRequest:
        if endpoint.path == RESPONSES.path:
            # Azure's v1 API: no deployment in the URL and no api-version; the body's model names
            # the deployment, which the OpenAI adapter already puts there.
            upstream = super().request(endpoint, payload, route)
            return dataclasses.replace(upstream, url=route.backend.base_url.rstrip("/") + "/openai/v1/responses")
        if endpoint.path == MODERATIONS.path:  # Azure filters content on every call instead
            raise UnsupportedEndpoint("This model's backend (Azure OpenAI) does not offer /v1/moderations.")
        # The body keeps "model" (the deployment name): Azure ignores it and it costs nothing.
        upstream = super().request(endpoint, payload, route)
        return dataclasses.replace(upstream, url=deployment_url(route, endpoint))

    def upload(self, endpoint: Endpoint, form: FormStream, route: ModelRoute) -> UpstreamRequest:
        return dataclasses.replace(super().upload(endpoint, form, route), url=deployment_url(route, endpoint))

    def error(
        self, route: ModelRoute, status: int, body: bytes, retry_after: str | None, url: str = ""
    ) -> GatewayError:
        if status != 404:
            return super().error(route, status, body, retry_after, url)
        if error_object(body) is None:  # not Azure's error object: a web server with no such URL
            return misconfigured(
                route, url, "is it the resource's endpoint, https://<resource>.openai.azure.com (no /openai)?"
            )
        # The client's model name already resolved: a missing deployment (or a wrong endpoint
        # or api-version, which Azure also answers with 404) is the gateway's configuration,
        # so it must not reach the client as if the client had asked for something absent.
        return UpstreamError(
            f"Backend '{route.backend.name}' has no deployment '{route.upstream_model}' "
            f"(api-version {route.backend.api_version or _DEFAULT_VERSION}): {error_fields(body)[0]}",
            code="backend_deployment_not_found",
        )
