"""Wire shapes of ``/admin/backends``: a backend with its kind's settings and one credential.

The decoder checks types only; the models file's rules (gateway/catalog/config.py, through
gateway/catalog/backends.py) check the rest with messages naming the field, and the constraints
here document exactly those rules. A secret goes in, and only its mask (``****abcd``) comes out."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
from litestar.openapi.spec import Schema
from litestar.params import Parameter

from gateway.catalog.backends import ENV_REF_PATTERN, MAX_SECRET, SECRET_PATTERN
from gateway.catalog.config import HTTP_URL, MAX_TIMEOUT_SECONDS, MAX_URL, MODEL_NAME
from gateway.catalog.kinds import KINDS
from gateway.web.openapi import NOT_BLANK, present

if TYPE_CHECKING:
    from gateway.catalog.backends import BackendInfo

_TEXT = Annotated[str, Parameter(min_length=1, pattern=NOT_BLANK, description="Not blank")]
_URL = Annotated[
    str,
    Parameter(
        max_length=MAX_URL,
        pattern=HTTP_URL,
        description="An http(s) URL: printable ASCII, no spaces, no user@ (credentials go in `secret`)",
    ),
]
_KIND = Annotated[str, Parameter(schema_extra={"enum": sorted(KINDS)}, description="How the backend is spoken to")]
_SECRET = Annotated[
    str,
    Parameter(
        min_length=1,
        max_length=MAX_SECRET,
        pattern=SECRET_PATTERN,
        description="The API key, stored encrypted (needs GATEWAY_ENCRYPTION_KEYS); never shown again",
    ),
]
_REF = Annotated[
    str, Parameter(pattern=ENV_REF_PATTERN, description="env:NAME: the gateway reads the key from that variable")
]
_TIMEOUT = Annotated[
    float, Parameter(gt=0, le=MAX_TIMEOUT_SECONDS, description="Seconds to wait for the backend's answer")
]
_ENV_NAME = Annotated[str, Parameter(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="An environment variable")]


class EntraSpec(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Azure only: Microsoft Entra ID client credentials instead of an API key."""

    tenant_id: _TEXT
    client_id: _TEXT
    client_secret_env: _ENV_NAME
    """The environment variable holding the client secret (never stored)."""
    authority: _URL | None = None
    scope: _TEXT | None = None


class CreateBackend(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """``POST /admin/backends``. At most one credential: ``secret``, ``credential_ref`` or ``entra``
    (none: requests go unauthenticated, or signed with AWS credentials for Bedrock)."""

    name: Annotated[str, Parameter(min_length=1, max_length=200, pattern=MODEL_NAME)]
    kind: _KIND
    base_url: _URL
    secret: _SECRET | None = None
    credential_ref: _REF | None = None
    timeout_seconds: _TIMEOUT | None = None
    api_version: (
        Annotated[str, Parameter(min_length=1, pattern=NOT_BLANK, description="Azure's api-version")] | None
    ) = None
    region: (
        Annotated[
            str,
            Parameter(
                min_length=1,
                pattern=NOT_BLANK,
                description="The AWS region a Bedrock backend signs for (required unless its host names it)",
            ),
        ]
        | None
    ) = None
    entra: EntraSpec | None = None


class UpdateBackend(msgspec.Struct, forbid_unknown_fields=True):
    """``PATCH /admin/backends/{backend}``: the fields given change; ``null`` clears a setting, or
    (``secret``, ``credential_ref``, ``entra``) the credential. A credential given replaces the
    other kinds; leaving all three out keeps the stored one as it is. Setting ``entra`` names
    ``kind: azure`` too, and naming ``kind: bedrock`` gives the ``region``."""

    kind: _KIND | msgspec.UnsetType = msgspec.UNSET
    base_url: _URL | msgspec.UnsetType = msgspec.UNSET
    secret: _SECRET | msgspec.UnsetType | None = msgspec.UNSET
    credential_ref: _REF | msgspec.UnsetType | None = msgspec.UNSET
    timeout_seconds: _TIMEOUT | msgspec.UnsetType | None = msgspec.UNSET
    api_version: _TEXT | msgspec.UnsetType | None = msgspec.UNSET
    region: _TEXT | msgspec.UnsetType | None = msgspec.UNSET
    entra: EntraSpec | msgspec.UnsetType | None = msgspec.UNSET

    def changes(self) -> dict[str, Any]:
        """The fields given (None for a null), as the backend service takes them."""
        return {
            name: msgspec.to_builtins(value)
            for name in self.__struct_fields__
            if (value := getattr(self, name)) is not msgspec.UNSET
        }


_CREDENTIALS = ("secret", "credential_ref", "entra")


def one_credential() -> Schema:
    """No two of the credentials at once."""
    pairs = [(a, b) for i, a in enumerate(_CREDENTIALS) for b in _CREDENTIALS[i + 1 :]]
    return Schema(all_of=[Schema(schema_not=Schema(all_of=[present(a), present(b)])) for a, b in pairs])


def _kind_is(kind: str) -> Schema:
    return Schema(required=["kind"], properties={"kind": Schema(const=kind)})


def _kind_rules() -> list[Schema]:
    """Entra ID only with ``kind: azure``, and ``kind: bedrock`` with its ``region``."""
    return [
        Schema(any_of=[Schema(schema_not=present("entra")), _kind_is("azure")]),
        Schema(any_of=[Schema(schema_not=_kind_is("bedrock")), present("region")]),
    ]


def consistent() -> Schema:
    """One credential; Entra ID named with ``kind: azure``; ``kind: bedrock`` with its ``region``.
    For a change, the rules hold for the fields it gives, so that the body alone says it is whole."""
    return Schema(all_of=[one_credential(), *_kind_rules()])


class EntraView(msgspec.Struct):
    tenant_id: str
    client_id: str
    client_secret_env: str
    authority: str
    scope: str


class BackendView(msgspec.Struct):
    id: uuid.UUID
    name: str
    kind: str
    base_url: str
    source: str
    """``file`` (policies/models.yaml owns it: read only here) or ``api``."""
    secret: str | None
    """The stored secret, masked: ``****`` and at most its last four characters."""
    credential_ref: str | None
    """Where the credential lives when it is not stored: ``env:NAME``, or the Entra ID client."""
    timeout_seconds: float | None
    api_version: str | None
    region: str | None
    entra: EntraView | None
    used_by: list[str]
    """The model versions whose requests go to this backend (``model vN``)."""
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, info: BackendInfo) -> BackendView:
        row, view = info.backend, info.view
        settings = view["settings"]
        entra = settings.get("entra")
        return cls(
            id=row.id,
            name=row.name,
            kind=row.kind,
            base_url=row.base_url,
            source=row.source,
            secret=view["secret"],
            credential_ref=row.credential_ref,
            timeout_seconds=settings.get("timeout_seconds"),
            api_version=settings.get("api_version"),
            region=settings.get("region"),
            entra=EntraView(**entra) if isinstance(entra, dict) else None,
            used_by=info.used_by,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class BackendList(msgspec.Struct):
    data: list[BackendView]
    object: str = "list"


class BackendDeleted(msgspec.Struct):
    id: uuid.UUID
    name: str
    deleted: bool = True
    object: str = "backend"
