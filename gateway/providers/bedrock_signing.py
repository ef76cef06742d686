"""AWS credentials and Signature Version 4 for Bedrock requests, on top of botocore.

Credentials come from botocore's default chain (environment variables, shared files, SSO,
container and instance roles...), resolved once per process and refreshed by botocore when they
are temporary. ``SigV4`` is a Bedrock backend's credential provider: it signs each request.
Everything botocore hands back is untyped; it stays inside this module.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth  # type: ignore[import-untyped]
from botocore.awsrequest import AWSRequest  # type: ignore[import-untyped]
from botocore.credentials import ReadOnlyCredentials  # type: ignore[import-untyped]
from botocore.exceptions import BotoCoreError  # type: ignore[import-untyped]
from botocore.session import get_session  # type: ignore[import-untyped]

from gateway.errors import UpstreamError

SERVICE = "bedrock"  # Bedrock Runtime's signing name, whatever its host name says
_RETRY_MISSING = 30.0  # seconds before looking again for credentials that were not there


@dataclass(frozen=True, slots=True)
class AwsCredentials:
    access_key: str
    secret_key: str = field(repr=False)
    token: str | None = field(default=None, repr=False)


AwsCredentialChain = Callable[[], AwsCredentials | None]
"""Current credentials, or None when there are none; called for every request."""

Clock = Callable[[], datetime]
"""The signing time, in UTC."""


def utc_now() -> datetime:
    return datetime.now(UTC)


class DefaultCredentials:
    """botocore's default credential chain, one session per instance.

    A chain that found nothing is asked again only after a pause: some of its providers (the
    instance metadata service) take a second or more to say they have nothing.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._credentials: Any = None  # botocore Credentials (possibly refreshable)
        self._missing_until = 0.0

    def __call__(self) -> AwsCredentials | None:
        with self._lock:
            if self._credentials is None and time.monotonic() >= self._missing_until:
                try:
                    self._credentials = get_session().get_credentials()
                except BotoCoreError:
                    self._credentials = None
                if self._credentials is None:
                    self._missing_until = time.monotonic() + _RETRY_MISSING
            credentials = self._credentials
        if credentials is None:
            return None
        # Temporary credentials refresh here, shortly before they expire.
        frozen = credentials.get_frozen_credentials()
        if not frozen.access_key or not frozen.secret_key:
            return None
        return AwsCredentials(str(frozen.access_key), str(frozen.secret_key), frozen.token or None)


class _ClockedSigV4(SigV4Auth):  # type: ignore[misc]
    """botocore's SigV4 signer, with the signing time given rather than read from the system clock."""

    def __init__(self, credentials: Any, region: str, when: datetime) -> None:
        super().__init__(credentials, SERVICE, region)
        self._when = when

    def add_auth(self, request: Any) -> None:
        request.context["timestamp"] = self._when.strftime(SIGV4_TIMESTAMP)
        self._modify_request_before_signing(request)
        string_to_sign = self.string_to_sign(request, self.canonical_request(request))
        self._inject_signature_to_request(request, self.signature(string_to_sign, request))


def sign(
    url: str, headers: dict[str, str], body: bytes, credentials: AwsCredentials, region: str, when: datetime
) -> dict[str, str]:
    """``headers`` plus ``authorization``, ``x-amz-date`` and any ``x-amz-security-token`` for a POST.

    The signature covers the URL, the body's exact bytes and every header given here, so none of
    them may change on the way out. Header names come back in lower case.
    """
    request = AWSRequest(method="POST", url=url, data=body, headers=headers)
    frozen = ReadOnlyCredentials(credentials.access_key, credentials.secret_key, credentials.token)
    utc = when.astimezone(UTC).replace(tzinfo=None) if when.tzinfo else when
    _ClockedSigV4(frozen, region, utc).add_auth(request)
    return {str(name).lower(): str(value) for name, value in request.headers.items()}


@dataclass(frozen=True, slots=True)
class SigV4:
    """Signs every request to one Bedrock backend for its region, with the chain's current credentials."""

    backend: str
    region: str
    chain: AwsCredentialChain = field(repr=False)
    clock: Clock = field(default=utc_now, repr=False)

    def authorize(self, url: str, headers: dict[str, str], body: bytes | None) -> dict[str, str]:
        if body is None:
            raise UpstreamError(f"Backend '{self.backend}': a streamed upload cannot be signed.")
        credentials = self.chain()
        if credentials is None:
            raise UpstreamError(
                f"Backend '{self.backend}': no AWS credentials found (set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run with an IAM role)."
            )
        return sign(url, headers, body, credentials, self.region, self.clock())
