"""A version's immutable configuration: how it is hashed, stored, shown and compared.

The same plain form (``version_config``) is what the audit log records, what ``diff`` compares,
what ``gateway models export`` writes back as YAML, and what the hash is taken over, so the file
and the API describe a version the same way.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime
from typing import Any

from gateway.catalog.config import ModelConfig, PriceChange
from gateway.catalog.registry import Prices
from gateway.db.models import ModelVersion

_PRICE_FIELDS = ("input", "cached_input", "cache_write_input", "output", "image", "audio_second", "characters")


def prices_dict(prices: Prices) -> dict[str, int]:
    return {name: getattr(prices, name) for name in _PRICE_FIELDS}


def version_hash(model: ModelConfig) -> str:
    """Over what makes a version; a field added later enters only when set, so a version made
    before it existed keeps its hash (and is not made again at the next start)."""
    canonical: dict[str, Any] = {
        "backend": model.backend,
        "upstream_model": model.upstream_model,
        "params": model.params,
        "prices": [model.prices.input, model.prices.cached_input, model.prices.output],
    }
    if extras := model.prices.extras():
        canonical["price_extras"] = extras
    later: dict[str, Any] = {
        "unpriced": model.unpriced or None,
        "price_changes": [_change_dict(c) for c in model.price_changes] or None,
        "max_tokens": model.max_tokens,
        "context_window": model.context_window,
        "capabilities": list(model.capabilities) or None,
    }
    canonical.update({name: value for name, value in later.items() if value is not None})
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()


def _change_dict(change: PriceChange) -> dict[str, Any]:
    return {"effective_from": change.effective_from.isoformat(), "prices": prices_dict(change.prices)}


def new_version(
    model_id: uuid.UUID,
    number: int,
    backend_id: uuid.UUID,
    spec: ModelConfig,
    *,
    source: str,
    state: str,
    created_by: str,
) -> ModelVersion:
    return ModelVersion(
        id=uuid.uuid4(),
        model_id=model_id,
        number=number,
        backend_id=backend_id,
        upstream_model=spec.upstream_model,
        params=spec.params,
        price_input=spec.prices.input,
        price_cached_input=spec.prices.cached_input,
        price_output=spec.prices.output,
        price_cache_write_input=spec.prices.cache_write_input,
        price_image=spec.prices.image,
        price_audio_second=spec.prices.audio_second,
        price_characters=spec.prices.characters,
        config_hash=version_hash(spec),
        unpriced=spec.unpriced,
        price_schedule=[_change_dict(c) for c in spec.price_changes] or None,
        context_window=spec.context_window,
        capabilities=list(spec.capabilities) or None,
        limits={"max_tokens": spec.max_tokens} if spec.max_tokens is not None else None,
        description=spec.description,
        source=source,
        created_by=created_by[:200],
        state=state,
    )


def stored_prices(version: ModelVersion) -> Prices:
    return Prices(
        input=version.price_input,
        cached_input=version.price_cached_input,
        output=version.price_output,
        cache_write_input=version.price_cache_write_input,
        image=version.price_image,
        audio_second=version.price_audio_second,
        characters=version.price_characters,
    )


def stored_schedule(version: ModelVersion) -> tuple[tuple[datetime, Prices], ...]:
    return tuple(
        (datetime.fromisoformat(item["effective_from"]), Prices(**item["prices"]))
        for item in version.price_schedule or []
    )


def version_config(version: ModelVersion, backend_name: str) -> dict[str, Any]:
    """The immutable part of a version, as the models file writes it."""
    config: dict[str, Any] = {"backend": backend_name, "upstream_model": version.upstream_model}
    if version.params:
        config["params"] = dict(version.params)
    if not version.unpriced:
        config["prices"] = prices_dict(stored_prices(version))
    if version.price_schedule:
        config["price_changes"] = [dict(item) for item in version.price_schedule]
    if version.limits:
        config["limits"] = dict(version.limits)
    if version.context_window is not None:
        config["context_window"] = version.context_window
    if version.capabilities:
        config["capabilities"] = list(version.capabilities)
    if version.description:
        config["description"] = version.description
    return config


def version_state(version: ModelVersion) -> dict[str, Any]:
    """The part of a version that changes: its lifecycle state (for the audit log's before/after)."""
    state: dict[str, Any] = {"number": version.number, "state": version.state}
    if version.state == "canary":
        state["canary_share"] = version.canary_share
    return state


def diff(a: dict[str, Any], b: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Field by field (nested mappings by their dotted path): ``{field: {"from": .., "to": ..}}``."""
    changes: dict[str, dict[str, Any]] = {}
    for name in sorted(set(a) | set(b)):
        left, right = a.get(name), b.get(name)
        if isinstance(left, dict) and isinstance(right, dict):
            changes.update({f"{name}.{inner}": change for inner, change in diff(left, right).items()})
        elif left != right:
            changes[name] = {"from": left, "to": right}
    return changes
