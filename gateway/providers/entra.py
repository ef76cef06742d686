"""Microsoft Entra ID tokens for Azure OpenAI backends configured with ``entra:``.

A token is fetched with the OAuth 2.0 client-credentials grant at start, kept by the backend's
credential provider (``EntraToken``), and renewed in the background before it expires. The request
path only reads the provider's current token: it never waits for Entra. If Entra
cannot be reached, the last token stays in use until it expires, and renewal retries with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
from dataclasses import dataclass, field
from urllib.parse import urlencode

import msgspec

from gateway.catalog.config import EntraConfig
from gateway.upstream.client import Upstream

log = logging.getLogger(__name__)
_RENEW_MARGIN_SECONDS = 300.0  # renew this long before expiry (a short-lived token: at half its life)
_RETRY_SECONDS = (1.0, 5.0, 15.0, 60.0)
_TIMEOUT_SECONDS = 30.0
_MIN_LIFETIME, _MAX_LIFETIME = 4.0, 86_400.0


class TokenError(Exception):
    """Entra did not give a token; the message says why, without the secret."""


@dataclass(slots=True)
class EntraToken:
    """A backend's credential provider: the bearer token of the last successful renewal."""

    name: str
    entra: EntraConfig
    token: str | None = field(default=None, repr=False)

    def authorize(self, url: str, headers: dict[str, str], body: bytes | None) -> dict[str, str]:
        # No token yet (Entra unreachable since start): sent without, the backend's 401 becomes a 502.
        return {**headers, "authorization": f"Bearer {self.token}"} if self.token else headers


class EntraTokens:
    def __init__(self, upstream: Upstream) -> None:
        self._upstream = upstream
        self._holders: list[EntraToken] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._started = False

    def token_for(self, name: str, entra: EntraConfig) -> EntraToken:
        """A new provider for a backend; renewed from ``start`` on (at once, when made after it)."""
        holder = EntraToken(name, entra)
        self._holders.append(holder)
        if self._started:
            self._tasks.append(asyncio.create_task(self._keep(holder, 0.0, failures=0), name=f"entra-{name}"))
        return holder

    async def start(self) -> None:
        """Fetch every backend's first token (a failure is logged, and that backend answers 502 until
        a renewal succeeds), then keep them fresh in the background."""
        self._started = True
        firsts = await asyncio.gather(*(self._renew(holder, failures=0) for holder in self._holders))
        for holder, (wait, ok) in zip(self._holders, firsts, strict=True):
            keep = self._keep(holder, wait, failures=0 if ok else 1)
            self._tasks.append(asyncio.create_task(keep, name=f"entra-{holder.name}"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def _keep(self, holder: EntraToken, wait: float, failures: int) -> None:
        while True:
            await asyncio.sleep(wait)
            try:
                wait, ok = await self._renew(holder, failures)
            except Exception:  # a bug must not end renewal silently: the token would lapse an hour later
                log.exception("backend %r: Entra ID token renewal failed", holder.name)
                wait, ok = _RETRY_SECONDS[-1], False
            failures = 0 if ok else failures + 1

    async def _renew(self, holder: EntraToken, failures: int) -> tuple[float, bool]:
        """Fetch a token into the provider: the seconds until the next attempt, and success."""
        try:
            token, lifetime = await self.fetch(holder.entra)
        except TokenError as exc:
            delay = _RETRY_SECONDS[min(failures, len(_RETRY_SECONDS) - 1)]
            log.warning("backend %r: no Entra ID token (%s); retrying in %.0f s", holder.name, exc, delay)
            return delay, False
        holder.token = token
        return max(1.0, lifetime - min(_RENEW_MARGIN_SECONDS, lifetime / 2)), True

    async def fetch(self, entra: EntraConfig) -> tuple[str, float]:
        """One token and its lifetime in seconds."""
        secret = (os.environ.get(entra.client_secret_env) or "").strip()
        if not secret:
            raise TokenError(f"environment variable {entra.client_secret_env} is not set")
        form = {"grant_type": "client_credentials", "client_id": entra.client_id, "scope": entra.scope}
        body = urlencode(form | {"client_secret": secret}).encode()
        headers = {"content-type": "application/x-www-form-urlencoded", "accept": "application/json"}
        try:
            response = await self._upstream.send(entra.token_url, headers, body, _TIMEOUT_SECONDS)
            try:
                raw = await response.aread()
            finally:
                await response.aclose()
        except Exception as exc:  # any transport failure: retried, never fatal
            raise TokenError(f"token endpoint unreachable: {type(exc).__name__}") from None
        try:
            answer = msgspec.json.decode(raw)
        except msgspec.DecodeError:
            answer = None
        if response.status_code != 200 or not isinstance(answer, dict) or not answer.get("access_token"):
            detail = answer.get("error_description") or answer.get("error") if isinstance(answer, dict) else None
            raise TokenError(f"token endpoint answered {response.status_code}: {str(detail or '')[:200]}")
        try:
            seconds = float(answer.get("expires_in", 3600))
        except (TypeError, ValueError, OverflowError):
            seconds = 3600.0
        if not math.isfinite(seconds):
            seconds = 3600.0
        # Renewal is timed by this: a nonsense lifetime must neither spin nor wait for a day.
        return str(answer["access_token"]), min(max(seconds, _MIN_LIFETIME), _MAX_LIFETIME)
