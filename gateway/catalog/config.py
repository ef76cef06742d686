"""Read and validate ``policies/models.yaml``. Every error names the file, the field and the problem."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

from gateway.catalog.kinds import KINDS
from gateway.catalog.registry import Prices
from gateway.errors import ConfigError, GatewayError, InvalidRequest
from gateway.yaml_file import read_yaml

MODEL_NAME = r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,199}$"
_NAME = re.compile(MODEL_NAME)
_ENV_VAR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
HTTP_URL = r"^https?://[!-.0-?A-Z^-~]+(/[!-~]*)?$"
"""An http(s) URL in printable ASCII, without spaces, and with no user:password@ (a credential
belongs in api_key, where it is kept secret, not in a URL that is shown and logged). No [ ] in
the host either: a bracketed IPv6 address is where URL parsers disagree (use a host name)."""
_HTTP_URL = re.compile(HTTP_URL)
MAX_URL = 2000
MAX_TIMEOUT_SECONDS = 86_400


ENTRA_AUTHORITY = "https://login.microsoftonline.com"
ENTRA_SCOPE = "https://cognitiveservices.azure.com/.default"


@dataclass(frozen=True, slots=True)
class EntraConfig:
    """Microsoft Entra ID (client credentials) for an Azure OpenAI backend: the gateway fetches a
    bearer token and renews it before it expires, instead of sending an ``api-key``."""

    tenant_id: str
    client_id: str
    client_secret_env: str
    authority: str = ENTRA_AUTHORITY
    scope: str = ENTRA_SCOPE

    @property
    def token_url(self) -> str:
        return f"{self.authority}/{self.tenant_id}/oauth2/v2.0/token"


@dataclass(frozen=True, slots=True)
class BackendConfig:
    name: str
    kind: str
    base_url: str
    api_key_env: str | None = None
    api_key: str | None = field(default=None, repr=False)
    timeout_seconds: float | None = None
    api_version: str | None = None
    """Azure OpenAI's ``api-version`` query parameter."""
    region: str | None = None
    """AWS region a Bedrock backend signs its requests for."""
    entra: EntraConfig | None = None
    """Azure only: authenticate with Entra ID tokens instead of an API key."""

    @property
    def credential_ref(self) -> str | None:
        """What SQL stores about the credential: where it lives, never the value."""
        if self.entra:
            return f"entra:{self.entra.tenant_id}/{self.entra.client_id}/env:{self.entra.client_secret_env}"
        if self.api_key_env:
            return f"env:{self.api_key_env}"
        if self.api_key:
            return f"config:backends.{self.name}.api_key"
        return None


_PRICE_UNITS = {
    "input": "micro-USD per million tokens",
    "cached_input": "micro-USD per million tokens",
    "cache_write_input": "micro-USD per million tokens",
    "output": "micro-USD per million tokens",
    "image": "micro-USD per image",
    "audio_second": "micro-USD per second of audio",
    "characters": "micro-USD per million characters",
}


@dataclass(frozen=True, slots=True)
class PriceChange:
    """Prices announced ahead: in force from ``effective_from`` on."""

    effective_from: datetime
    prices: Prices


ROLLOUTS = ("auto", "manual")
CAPABILITY = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")


@dataclass(frozen=True, slots=True)
class ModelConfig:
    """A model as the models file (or the admin API, for a new version) declares it."""

    name: str
    backend: str
    upstream_model: str
    params: dict[str, Any]
    prices: Prices
    reveal_upstream_model: bool = False
    unpriced: bool = False
    """No ``prices`` at all (prices of zero must be written out: free is a choice, not a default)."""
    price_changes: tuple[PriceChange, ...] = ()
    max_tokens: int | None = None
    """``limits.max_tokens``: requests asking for more output are refused; those naming none get it."""
    context_window: int | None = None
    capabilities: tuple[str, ...] = ()
    rollout: str = "auto"
    """``auto``: a changed configuration becomes the active version; ``manual``: a draft."""
    description: str | None = None


@dataclass(frozen=True, slots=True)
class CatalogConfig:
    backends: dict[str, BackendConfig]
    models: dict[str, ModelConfig]


def load_catalog_config(path: str | Path) -> CatalogConfig:
    data = read_yaml(Path(path), "models file")
    return parse_catalog_config({} if data is None else data, str(path))


def parse_catalog_config(data: Any, source: str) -> CatalogConfig:
    fields = _Fields(source)
    root = fields.mapping(data, "")
    fields.no_extra(root, "", {"backends", "models"})
    backends = {
        name: _backend(fields, name, spec)
        for name, spec in fields.mapping(root.get("backends", {}), "backends").items()
    }
    models = {
        name: _model(fields, name, spec, backends)
        for name, spec in fields.mapping(root.get("models", {}), "models").items()
    }
    return CatalogConfig(backends=backends, models=models)


def parse_backend(name: str, spec: Any, error: FieldError | None = None) -> BackendConfig:
    """One backend from the admin API or the CLI, by the models file's rules (fields named from
    the request body: ``error`` may rename them)."""
    return _backend(_Fields("request", error or request_error), name, spec, where="")


def _backend(fields: _Fields, name: str, spec: Any, *, where: str | None = None) -> BackendConfig:
    where = f"backends.{name}" if where is None else where
    fields.name(name, where or "name")
    spec = fields.mapping(spec, where)
    fields.no_extra(
        spec,
        where,
        {"kind", "base_url", "api_key_env", "api_key", "timeout_seconds", "api_version", "region", "entra"},
    )
    kind = fields.string(spec, where, "kind", default="openai")
    if kind not in KINDS:
        fields.fail(f"{where}.kind", f"unknown backend kind {kind!r}; known: {', '.join(sorted(KINDS))}")
    base_url = _url(fields, spec, where, "base_url")
    api_key_env = fields.optional_string(spec, where, "api_key_env")
    if api_key_env is not None and not _ENV_VAR.fullmatch(api_key_env):
        fields.fail(f"{where}.api_key_env", f"not an environment variable name: {api_key_env!r}")
    timeout = spec.get("timeout_seconds")
    if timeout is not None and (
        not isinstance(timeout, int | float) or isinstance(timeout, bool) or not 0 < timeout <= MAX_TIMEOUT_SECONDS
    ):
        fields.fail(f"{where}.timeout_seconds", f"expected a positive number of seconds, at most {MAX_TIMEOUT_SECONDS}")
    return BackendConfig(
        name=name,
        kind=kind,
        base_url=base_url.rstrip("/"),
        api_key_env=api_key_env,
        api_key=_api_key(fields, spec, where),
        timeout_seconds=float(timeout) if timeout is not None else None,
        api_version=fields.optional_string(spec, where, "api_version") or KINDS[kind].default_api_version,
        region=_region(fields, spec, where, kind, base_url),
        entra=_entra(fields, spec, where, kind),
    )


def _entra(fields: _Fields, spec: dict[str, Any], where: str, kind: str) -> EntraConfig | None:
    if spec.get("entra") is None:
        return None
    where = f"{where}.entra"
    if not KINDS[kind].entra:
        fields.fail(where, f"Entra ID tokens are for Azure OpenAI backends (kind: azure), not kind {kind!r}")
    if spec.get("api_key") is not None or spec.get("api_key_env") is not None:
        fields.fail(where, "use either entra or api_key/api_key_env, not both")
    entra = fields.mapping(spec["entra"], where)
    fields.no_extra(entra, where, {"tenant_id", "client_id", "client_secret_env", "authority", "scope"})
    secret_env = fields.string(entra, where, "client_secret_env")
    if not _ENV_VAR.fullmatch(secret_env):
        fields.fail(f"{where}.client_secret_env", f"not an environment variable name: {secret_env!r}")
    authority = _url(fields, entra, where, "authority") if entra.get("authority") is not None else ENTRA_AUTHORITY
    return EntraConfig(
        tenant_id=fields.string(entra, where, "tenant_id"),
        client_id=fields.string(entra, where, "client_id"),
        client_secret_env=secret_env,
        authority=authority.rstrip("/"),
        scope=fields.optional_string(entra, where, "scope") or ENTRA_SCOPE,
    )


def _url(fields: _Fields, spec: dict[str, Any], where: str, key: str) -> str:
    url = fields.string(spec, where, key)
    if len(url) > MAX_URL or not _HTTP_URL.fullmatch(url):
        # Not echoed: a URL may carry a token in its query.
        fields.fail(
            f"{where}.{key}",
            f"expected an http(s) URL (printable ASCII, no spaces, no user@, [ ] or \\ in the host, at most {MAX_URL} "
            "characters)",
        )
    return url


def _region(fields: _Fields, spec: dict[str, Any], where: str, kind: str, base_url: str) -> str | None:
    """A signed kind (Bedrock) needs a region to sign for: given, or read from its host name."""
    region = fields.optional_string(spec, where, "region")
    pattern = KINDS[kind].region_in_host
    if region or pattern is None:
        return region
    found = pattern.match(urlsplit(base_url).hostname or "")
    if not found:
        fields.fail(f"{where}.region", "required for a Bedrock backend whose base_url does not name the region")
    return found.group(1) if found else None


def _api_key(fields: _Fields, spec: dict[str, Any], where: str) -> str | None:
    value = spec.get("api_key")
    if value is not None and (not isinstance(value, str) or not value.strip()):
        # Never echo the value: it is a secret, and error messages end up in logs.
        fields.fail(f"{where}.api_key", "expected a non-empty string (quote it in YAML); value not shown")
    return value


def check_model_name(name: str) -> None:
    """A model name from the admin API, by the models file's rule."""
    _Fields("request", request_error).name(name, "name")


def parse_model(name: str, spec: Any, backends: Collection[str], error: FieldError | None = None) -> ModelConfig:
    """One model's configuration from the admin API (a new version), by the models file's rules."""
    return _model(_Fields("request", error or request_error), name, spec, backends, where="")


def _model(
    fields: _Fields, name: str, spec: Any, backends: Collection[str], *, where: str | None = None
) -> ModelConfig:
    where = f"models.{name}" if where is None else where
    fields.name(name, where or "name")
    spec = fields.mapping(spec, where)
    fields.no_extra(spec, where, _MODEL_FIELDS)
    backend = fields.string(spec, where, "backend")
    if backend not in backends:
        fields.fail(f"{where}.backend", f"no backend named {backend!r}" + (" under 'backends'" if where else ""))
    params = fields.mapping(spec.get("params", {}), f"{where}.params")
    if "model" in params or "stream" in params:
        fields.fail(f"{where}.params", "'model' and 'stream' cannot be defaulted")
    try:
        json.dumps(params, allow_nan=False)
    except (TypeError, ValueError) as exc:
        fields.fail(f"{where}.params", f"values must be plain JSON (quote dates and the like): {exc}")
    rollout = fields.optional_string(spec, where, "rollout") or "auto"
    if rollout not in ROLLOUTS:
        fields.fail(f"{where}.rollout", f"expected one of {', '.join(ROLLOUTS)}, got {rollout!r}")
    return ModelConfig(
        name=name,
        backend=backend,
        upstream_model=fields.optional_string(spec, where, "upstream_model") or name,
        params=dict(params),
        prices=_prices(fields, spec.get("prices", {}), f"{where}.prices"),
        reveal_upstream_model=_reveal(fields, spec, where),
        unpriced="prices" not in spec,
        price_changes=_price_changes(fields, spec.get("price_changes", []), f"{where}.price_changes"),
        max_tokens=_max_tokens(fields, spec.get("limits", {}), f"{where}.limits"),
        context_window=_positive_int(fields, spec.get("context_window"), f"{where}.context_window"),
        capabilities=_capabilities(fields, spec.get("capabilities", []), f"{where}.capabilities"),
        rollout=rollout,
        description=fields.optional_string(spec, where, "description"),
    )


_MODEL_FIELDS = {
    "backend",
    "upstream_model",
    "params",
    "prices",
    "reveal_upstream_model",
    "price_changes",
    "limits",
    "context_window",
    "capabilities",
    "rollout",
    "description",
}


def _prices(fields: _Fields, given: Any, where: str) -> Prices:
    prices = fields.mapping(given, where)
    fields.no_extra(prices, where, set(_PRICE_UNITS))
    amounts = {}
    for unit, described in _PRICE_UNITS.items():
        value = prices.get(unit, 0)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            fields.fail(f"{where}.{unit}", f"expected a whole number of {described} (>= 0), got {value!r}")
        amounts[unit] = value
    for unit in ("cached_input", "cache_write_input"):  # a cache price not given is the input price
        if unit not in prices:
            amounts[unit] = amounts["input"]
    return Prices(**amounts)


def _price_changes(fields: _Fields, given: Any, where: str) -> tuple[PriceChange, ...]:
    if not isinstance(given, list):
        fields.fail(where, f"expected a list of {{effective_from, prices}}, got {type(given).__name__}")
    changes: list[PriceChange] = []
    for index, item in enumerate(given):
        at = f"{where}[{index}]"
        item = fields.mapping(item, at)
        fields.no_extra(item, at, {"effective_from", "prices"})
        when = _instant(fields, item.get("effective_from"), f"{at}.effective_from")
        if any(change.effective_from == when for change in changes):
            fields.fail(f"{at}.effective_from", "two price changes take effect at the same instant")
        if "prices" not in item:
            fields.fail(f"{at}.prices", "required field is missing")
        changes.append(PriceChange(when, _prices(fields, item["prices"], f"{at}.prices")))
    # The dates say the order, so the list's own order carries no meaning.
    return tuple(sorted(changes, key=lambda change: change.effective_from))


def _instant(fields: _Fields, value: Any, where: str) -> datetime:
    if isinstance(value, datetime):
        when = value
    elif isinstance(value, str):
        try:
            when = datetime.fromisoformat(value.upper())  # RFC 3339 allows a lower-case t and z
        except ValueError:
            fields.fail(where, f"expected an ISO 8601 date/time with a time zone, got {value!r}")
    else:
        fields.fail(where, f"expected an ISO 8601 date/time with a time zone, got {value!r}")
    if when.tzinfo is None:
        fields.fail(where, "needs a time zone (2027-01-01T00:00:00Z)")
    return when.astimezone(UTC)


def _max_tokens(fields: _Fields, given: Any, where: str) -> int | None:
    limits = fields.mapping(given, where)
    fields.no_extra(limits, where, {"max_tokens"})
    return _positive_int(fields, limits.get("max_tokens"), f"{where}.max_tokens")


def _positive_int(fields: _Fields, value: Any, where: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= 100_000_000:
        fields.fail(where, f"expected a whole number from 1 to 100000000, got {value!r}")
    return int(value)


def _capabilities(fields: _Fields, given: Any, where: str) -> tuple[str, ...]:
    if not isinstance(given, list) or not all(isinstance(c, str) and CAPABILITY.match(c) for c in given):
        fields.fail(where, "expected a list of lower-case names (vision, tools, json_mode, ...)")
    return tuple(sorted(set(given)))


def _reveal(fields: _Fields, spec: dict[str, Any], where: str) -> bool:
    value = spec.get("reveal_upstream_model", False)
    if not isinstance(value, bool):
        fields.fail(f"{where}.reveal_upstream_model", f"expected true or false, got {value!r}")
    return bool(value)


FieldError = Callable[[str, str], GatewayError]
"""Makes the error for a bad field: (field path, problem)."""


def _config_error(source: str) -> FieldError:
    return lambda where, problem: ConfigError(f"{source}: {where or '(top level)'}: {problem}")


def request_error(where: str, problem: str) -> GatewayError:
    """For the admin API: 400 with ``param`` naming the field (paths start at the request body)."""
    field = where.lstrip(".")
    return InvalidRequest(f"{field}: {problem}" if field else problem, param=field or None)


class _Fields:
    """Small validation helpers that raise an error naming the source and the field path: a
    ConfigError for the models file, an InvalidRequest for the admin API."""

    def __init__(self, source: str, error: FieldError | None = None) -> None:
        self.source = source
        self._error = error or _config_error(source)

    def fail(self, where: str, problem: str) -> NoReturn:
        raise self._error(where, problem)

    def mapping(self, value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(where, f"expected a mapping, got {type(value).__name__}")
        return {str(k): v for k, v in value.items()}

    def no_extra(self, spec: dict[str, Any], where: str, allowed: set[str]) -> None:
        extra = sorted(set(spec) - allowed)
        if extra:
            prefix = f"{where}." if where else ""
            self.fail(f"{prefix}{extra[0]}", f"unknown field; allowed: {', '.join(sorted(allowed))}")

    def name(self, name: str, where: str) -> None:
        if not _NAME.fullmatch(name):
            self.fail(where, "names use letters, digits and . _ : / @ + - (at most 200)")

    def string(self, spec: dict[str, Any], where: str, key: str, default: str | None = None) -> str:
        value = spec.get(key, default)
        if value is None:
            self.fail(f"{where}.{key}", "required field is missing")
        if not isinstance(value, str) or not value.strip():
            self.fail(f"{where}.{key}", f"expected a non-empty string, got {value!r}")
        return str(value)

    def optional_string(self, spec: dict[str, Any], where: str, key: str) -> str | None:
        return self.string(spec, where, key) if spec.get(key) is not None else None
