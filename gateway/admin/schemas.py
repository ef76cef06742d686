"""Wire shapes of the admin API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar.params import Parameter

from gateway.db.models import ApiKey
from gateway.keys.expiry import DURATION_PATTERN
from gateway.keys.service import MAX_GRACE
from gateway.web.openapi import NAMED

# Documented, not enforced by the decoder: the key service checks these with messages of its own.
MAX_GRACE_SECONDS = int(MAX_GRACE.total_seconds())
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
    """A team of the key's organization, by name (made on first use). A team admin's keys are
    their team's when this is left out."""
    user: _TEXT | None = None
    """The user the key belongs to, by id or e-mail: one of the key's organization (404 otherwise)."""
    org: _TEXT | None = None
    """The organization, by name. Left out: the caller's own (for the admin key: ``default``, made
    on first use)."""
    metadata: dict[str, Any] | None = None


_Unset = msgspec.UnsetType


class UpdateKey(msgspec.Struct, forbid_unknown_fields=True):
    """What to change; a field left out stays as it is, ``null`` clears it (models: every model)."""

    name: _NAME | _Unset = msgspec.UNSET
    models: _MODELS | _Unset | None = msgspec.UNSET
    expires_at: datetime | _Unset | None = msgspec.UNSET
    expires_in: (
        Annotated[str, msgspec.Meta(pattern=DURATION_PATTERN, description="A duration from now: 30d, 12h, 90m")]
        | _Unset
    ) = msgspec.UNSET
    owner: _TEXT | _Unset | None = msgspec.UNSET
    team: _TEXT | _Unset | None = msgspec.UNSET
    user: _TEXT | _Unset | None = msgspec.UNSET
    metadata: dict[str, Any] | _Unset = msgspec.UNSET


class RotateKey(msgspec.Struct, forbid_unknown_fields=True):
    grace_seconds: Annotated[
        int,
        msgspec.Meta(ge=0, le=MAX_GRACE_SECONDS, description="How long the old secret keeps working (0: not at all)"),
    ] = 3600
    """How long the current secret keeps working beside the new one; 1 hour unless given."""


class KeyView(msgspec.Struct):
    id: uuid.UUID
    prefix: str
    name: str
    owner: str | None
    org_id: uuid.UUID
    team_id: uuid.UUID | None
    user_id: uuid.UUID | None
    models: list[str] | None
    expires_at: datetime | None
    revoked_at: datetime | None
    created_at: datetime
    metadata: dict[str, Any]
    previous_secret_expires_at: datetime | None
    """After a rotation: when the old secret stops working (null: it already has, or none)."""

    @classmethod
    def of(cls, row: ApiKey) -> KeyView:
        return cls(
            id=row.id,
            prefix=row.prefix,
            name=row.name,
            owner=row.owner,
            org_id=row.org_id,
            team_id=row.team_id,
            user_id=row.user_id,
            models=row.allowed_models,
            expires_at=row.expires_at,
            revoked_at=row.revoked_at,
            created_at=row.created_at,
            metadata=row.metadata_ or {},
            previous_secret_expires_at=row.previous_expires_at if row.previous_secret_hash else None,
        )


class CreatedKey(msgspec.Struct):
    key: str
    """The secret. Shown once; only its hash is kept."""
    info: KeyView


class KeyList(msgspec.Struct):
    data: list[KeyView]
    object: str = "list"
