"""Backend credentials: one provider per backend, made from its configuration, held only in memory.

A key is read from the environment variable a backend names (or the config file) when its provider
is made; SQL keeps only the reference (``env:VAR``). No provider's value is returned by any API or
logged. A credential that is missing is reported by name when a request needs it.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

from gateway.catalog.config import BackendConfig
from gateway.catalog.kinds import KINDS
from gateway.catalog.registry import ANONYMOUS, Credentials
from gateway.errors import ConfigError, UpstreamError
from gateway.providers.bedrock_signing import AwsCredentialChain, DefaultCredentials, SigV4
from gateway.providers.entra import EntraTokens
from gateway.upstream.client import Upstream

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StaticKey:
    """An API key sent in one header on every request."""

    header: str
    value: str = field(repr=False)

    def authorize(self, url: str, headers: dict[str, str], body: bytes | None) -> dict[str, str]:
        return {**headers, self.header: self.value}


@dataclass(frozen=True, slots=True)
class _Unusable:
    backend: str
    problem: str

    def authorize(self, url: str, headers: dict[str, str], body: bytes | None) -> dict[str, str]:
        raise UpstreamError(f"Backend '{self.backend}' has no usable credential: {self.problem}")


def resolve_api_key(spec: BackendConfig) -> str | None:
    if spec.api_key_env:
        key = (os.environ.get(spec.api_key_env) or "").strip()  # secrets mounted from files end in \n
        if not key:
            # Not fatal: the other backends still serve. Requests to this one will fail with 502.
            log.warning("backend %r: environment variable %s is not set", spec.name, spec.api_key_env)
    else:
        key = (spec.api_key or "").strip()
    if key and not (key.isascii() and key.isprintable()):
        where = spec.api_key_env or f"backends.{spec.name}.api_key"
        raise ConfigError(f"backend {spec.name!r}: the credential in {where} has characters a header cannot carry")
    return key or None


class CredentialProviders:
    """Makes each backend's provider, and keeps it while the backend's configuration stays the same:
    a snapshot rebuilt for another reason reuses it (an Entra token is not fetched again)."""

    def __init__(self, upstream: Upstream, *, aws: AwsCredentialChain | None = None) -> None:
        self._entra = EntraTokens(upstream)
        self._aws = aws  # botocore's default chain, made when a signed backend first needs it
        self._made: dict[str, tuple[BackendConfig, Credentials]] = {}

    def for_backend(self, spec: BackendConfig) -> Credentials:
        made = self._made.get(spec.name)
        if made is not None and made[0] == spec:
            return made[1]
        provider = self._make(spec)
        self._made[spec.name] = (spec, provider)
        return provider

    def _make(self, spec: BackendConfig) -> Credentials:
        kind = KINDS[spec.kind]
        if spec.entra is not None:
            return self._entra.token_for(spec.name, spec.entra)
        key = resolve_api_key(spec)
        if key:
            return StaticKey(kind.key_header, key) if kind.key_header else StaticKey("authorization", f"Bearer {key}")
        if kind.signed:
            if self._aws is None:
                self._aws = DefaultCredentials()
            assert spec.region is not None  # the configuration requires it for a signed kind
            return SigV4(spec.name, spec.region, self._aws)
        return ANONYMOUS

    def unusable(self, backend: str, problem: str) -> Credentials:
        """For a backend whose secret cannot be read: its requests fail with 502 saying so."""
        return _Unusable(backend, problem)

    async def start(self) -> None:
        """Fetch the first Entra ID tokens (a failure is logged; renewal goes on in the background)."""
        await self._entra.start()

    async def stop(self) -> None:
        await self._entra.stop()
