"""Wire shapes of the admin API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar.params import Parameter

from gateway.db.models import ApiKey
from gateway.keys.expiry import DURATION_PATTERN
from gateway.web.openapi import NAMED

# Documented, not enforced by the decoder: the key service checks these with messages of its own.
_TEXT = Annotated[str, Parameter(max_length=200, pattern=r"^[^\x00]*$", description="At most 200 characters, no NUL")]
_NAME = Annotated[str, Parameter(min_length=1, max_length=200, pattern=NAMED, description="Not blank")]
_MODELS = Annotated[
    list[_TEXT],
    Parameter(min_items=1, description="The models the key may use; each one the gateway serves (404 otherwise)"),
]


class CreateKey(msgspec.Struct, forbid_unknown_fields=True):
    name: _NAME
    models: _MODELS | None = None
    """The models the key may use; leave out for all. Each must be one the gateway serves."""
    expires_at: datetime | None = None
    """An ISO date/time with a time zone."""
    expires_in: (
        Annotated[str, msgspec.Meta(pattern=DURATION_PATTERN, description="A duration from now: 30d, 12h, 90m")] | None
    ) = None
    """Instead of ``expires_at``: a duration from now, as ``gateway keys create --expires`` takes it."""
    owner: _TEXT | None = None
    team: _TEXT | None = None
    metadata: dict[str, Any] | None = None


class KeyView(msgspec.Struct):
    id: uuid.UUID
    prefix: str
    name: str
    owner: str | None
    org_id: uuid.UUID
    team_id: uuid.UUID | None
    models: list[str] | None
    expires_at: datetime | None
    revoked_at: datetime | None
    created_at: datetime
    metadata: dict[str, Any]

    @classmethod
    def of(cls, row: ApiKey) -> KeyView:
        return cls(
            id=row.id,
            prefix=row.prefix,
            name=row.name,
            owner=row.owner,
            org_id=row.org_id,
            team_id=row.team_id,
            models=row.allowed_models,
            expires_at=row.expires_at,
            revoked_at=row.revoked_at,
            created_at=row.created_at,
            metadata=row.metadata_ or {},
        )


class CreatedKey(msgspec.Struct):
    key: str
    """The secret. Shown once; only its hash is kept."""
    info: KeyView


class KeyList(msgspec.Struct):
    data: list[KeyView]
    object: str = "list"
