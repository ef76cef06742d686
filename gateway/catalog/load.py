"""Read the catalog a snapshot serves from SQL: every served model's active version, its canary
if it has one, and their backends with credentials."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.catalog.config import CatalogConfig
from gateway.catalog.registry import BackendTarget, Canary, Catalog, Credentials, ModelRoute
from gateway.catalog.version_spec import stored_prices, stored_schedule
from gateway.db.models import Backend, Model, ModelVersion

CredentialsFor = Callable[[Backend], Credentials]
"""A backend's credential provider, made from its row."""


async def load_catalog(
    sessions: async_sessionmaker[AsyncSession], credentials: CredentialsFor, config: CatalogConfig
) -> Catalog:
    query = (
        select(Model, ModelVersion, Backend)
        .join(ModelVersion, ModelVersion.model_id == Model.id)
        .join(Backend, Backend.id == ModelVersion.backend_id)
        .where(Model.active.is_(True), ModelVersion.state.in_(("active", "canary")))
    )
    async with sessions() as session:
        rows = (await session.execute(query)).all()
    providers: dict[str, Credentials] = {}
    routes: dict[str, ModelRoute] = {}
    canaries: list[tuple[str, ModelVersion, ModelRoute]] = []
    for model, version, backend in rows:
        if backend.name not in providers:
            providers[backend.name] = credentials(backend)
        spec = config.models.get(model.name)
        # How replies name a model is presentation, not part of a version: it comes from the file.
        reveal = spec is not None and spec.reveal_upstream_model
        route = _route(model, version, backend, providers[backend.name], reveal)
        if version.state == "active":
            routes[model.name] = route
        else:
            canaries.append((model.name, version, route))
    # A canary shares its model's traffic with the active version: without one, it serves nothing.
    shared = {name: Canary(route, version.canary_share or 0) for name, version, route in canaries if name in routes}
    return Catalog(routes=routes, canaries=shared or None)


def _route(model: Model, version: ModelVersion, backend: Backend, credentials: Credentials, reveal: bool) -> ModelRoute:
    settings = dict(backend.settings or {})
    timeout = settings.get("timeout_seconds")
    return ModelRoute(
        model=model.name,
        model_id=model.id,
        version_id=version.id,
        version=version.number,
        backend=BackendTarget(
            id=backend.id,
            name=backend.name,
            kind=backend.kind,
            base_url=backend.base_url,
            timeout_seconds=float(timeout) if timeout is not None else None,
            credentials=credentials,
            api_version=settings.get("api_version"),
            region=settings.get("region"),
        ),
        upstream_model=version.upstream_model,
        params=dict(version.params or {}),
        prices=stored_prices(version),
        created=int(model.created_at.timestamp()),
        reveal_upstream_model=reveal,
        schedule=stored_schedule(version),
        unpriced=version.unpriced,
        max_tokens=(version.limits or {}).get("max_tokens"),
        context_window=version.context_window,
    )
