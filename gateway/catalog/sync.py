"""Sync the declared catalog into SQL and build the in-memory snapshot from what SQL holds.

Versions are immutable: a model whose configuration hash differs from its latest version gets a
new version with the next number. Several replicas may start at once; the unique constraint on
(model, number) makes the loser retry and find the winner's row.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.catalog.config import BackendConfig, CatalogConfig, ModelConfig
from gateway.catalog.registry import BackendTarget, Catalog, ModelRoute, Prices
from gateway.db.models import Backend, Model, ModelVersion
from gateway.providers.credentials import backend_headers


def version_hash(model: ModelConfig) -> str:
    canonical: dict[str, Any] = {
        "backend": model.backend,
        "upstream_model": model.upstream_model,
        "params": model.params,
        "prices": [model.prices.input, model.prices.cached_input, model.prices.output],
    }
    if extras := model.prices.extras():  # only when set, so versions made before they existed keep their hash
        canonical["price_extras"] = extras
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()


async def sync_catalog(sessions: async_sessionmaker[AsyncSession], config: CatalogConfig) -> Catalog:
    for attempt in range(3):
        try:
            async with sessions.begin() as session:
                return await _sync_once(session, config)
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


async def _sync_once(session: AsyncSession, config: CatalogConfig) -> Catalog:
    backends = {b.name: b for b in (await session.scalars(select(Backend))).all()}
    for backend_spec in config.backends.values():
        backends[backend_spec.name] = _upsert_backend(session, backends.get(backend_spec.name), backend_spec)
    await session.flush()

    headers = {name: backend_headers(spec) for name, spec in config.backends.items()}  # credentials, once each
    models = {m.name: m for m in (await session.scalars(select(Model))).all()}
    routes: dict[str, ModelRoute] = {}
    for spec in config.models.values():
        model = models.get(spec.name) or Model(name=spec.name)
        model.active = True
        session.add(model)
        await session.flush()
        backend = backends[spec.backend]
        version = await _current_version(session, model, spec, backend)
        route = _route(model, version, backend, config.backends[spec.backend], headers[spec.backend])
        # How replies name the model is presentation, not part of the version: read from the file.
        routes[spec.name] = dataclasses.replace(route, reveal_upstream_model=spec.reveal_upstream_model)
    for name, model in models.items():
        if name not in config.models:
            model.active = False
    return Catalog(routes=routes)


def _upsert_backend(session: AsyncSession, row: Backend | None, spec: BackendConfig) -> Backend:
    row = row or Backend(name=spec.name)
    row.kind = spec.kind
    row.base_url = spec.base_url
    row.credential_ref = spec.credential_ref
    row.settings = {"timeout_seconds": spec.timeout_seconds, "api_version": spec.api_version, "region": spec.region}
    session.add(row)
    return row


async def _current_version(session: AsyncSession, model: Model, spec: ModelConfig, backend: Backend) -> ModelVersion:
    latest = await session.scalar(
        select(ModelVersion).where(ModelVersion.model_id == model.id).order_by(ModelVersion.number.desc()).limit(1)
    )
    digest = version_hash(spec)
    if latest is not None and latest.config_hash == digest:
        return latest
    version = ModelVersion(
        model_id=model.id,
        number=(latest.number + 1) if latest else 1,
        backend_id=backend.id,
        upstream_model=spec.upstream_model,
        params=spec.params,
        price_input=spec.prices.input,
        price_cached_input=spec.prices.cached_input,
        price_output=spec.prices.output,
        price_cache_write_input=spec.prices.cache_write_input,
        price_image=spec.prices.image,
        price_audio_second=spec.prices.audio_second,
        price_characters=spec.prices.characters,
        config_hash=digest,
    )
    session.add(version)
    await session.flush()
    return version


def _route(
    model: Model, version: ModelVersion, backend: Backend, spec: BackendConfig, headers: dict[str, str]
) -> ModelRoute:
    params: dict[str, Any] = dict(version.params or {})
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
            timeout_seconds=spec.timeout_seconds,
            headers=headers,
            api_version=spec.api_version,
            region=spec.region,
        ),
        upstream_model=version.upstream_model,
        params=params,
        prices=Prices(
            input=version.price_input,
            cached_input=version.price_cached_input,
            output=version.price_output,
            cache_write_input=version.price_cache_write_input,
            image=version.price_image,
            audio_second=version.price_audio_second,
            characters=version.price_characters,
        ),
        created=int(model.created_at.timestamp()),
    )
