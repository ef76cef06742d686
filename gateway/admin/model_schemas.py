"""Wire shapes of ``/admin/models``: models, their versions and lifecycle moves.

A version's configuration has the fields of a model in ``policies/models.yaml``; the types here
are loose on purpose (the models file's own validation checks the rest, with its messages, and
``param`` names the field)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
from litestar.params import Parameter

from gateway.catalog.config import CAPABILITY, MODEL_NAME
from gateway.web.openapi import NOT_BLANK

if TYPE_CHECKING:
    from gateway.catalog.versions import ModelInfo, VersionInfo
    from gateway.db.models import AuditEntry

_TEXT = Annotated[str, Parameter(min_length=1, pattern=NOT_BLANK, description="Not blank")]
_COUNT = Annotated[int, Parameter(ge=1, le=100_000_000)]
_CAP = Annotated[int, Parameter(ge=1, le=100_000_000, description="Cap on a request's output tokens")]
_WHOLE = Annotated[int, Parameter(ge=0, description="Whole micro-USD (per million tokens, per image, ...)")]


class PriceSpec(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    input: _WHOLE | None = None
    cached_input: _WHOLE | None = None
    cache_write_input: _WHOLE | None = None
    output: _WHOLE | None = None
    image: _WHOLE | None = None
    audio_second: _WHOLE | None = None
    characters: _WHOLE | None = None


class PriceChangeSpec(msgspec.Struct, forbid_unknown_fields=True):
    effective_from: Annotated[
        str, Parameter(schema_extra={"format": "date-time"}, description="RFC 3339 date/time, with a time zone")
    ]
    prices: PriceSpec


class VersionLimits(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    max_tokens: _CAP | None = None


class VersionSpec(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """``POST /admin/models/{model}/versions``: a new draft version, as the models file writes a model.
    Leaving out ``prices`` makes the version unpriced (see GATEWAY_UNPRICED_MODELS)."""

    backend: Annotated[str, Parameter(min_length=1, pattern=NOT_BLANK, description="A backend's name")]
    upstream_model: _TEXT | None = None
    params: (
        Annotated[
            dict[str, Any],
            Parameter(
                description="Default request parameters ('model' and 'stream' cannot be defaulted)",
                schema_extra={"propertyNames": {"not": {"enum": ["model", "stream"]}}},
            ),
        ]
        | None
    ) = None
    prices: PriceSpec | None = None
    price_changes: list[PriceChangeSpec] | None = None
    limits: VersionLimits | None = None
    context_window: _COUNT | None = None
    capabilities: list[Annotated[str, Parameter(pattern=CAPABILITY.pattern)]] | None = None
    description: _TEXT | None = None


class CreateModel(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, Parameter(min_length=1, max_length=200, pattern=MODEL_NAME)]
    rollout: Annotated[str, Parameter(schema_extra={"enum": ["auto", "manual"]})] = "auto"


class PromoteToCanary(msgspec.Struct, forbid_unknown_fields=True, tag_field="to", tag="canary"):
    """A canary beside the active version, taking ``share`` percent of the model's traffic."""

    share: Annotated[int, Parameter(ge=1, le=99, description="Percent of the model's traffic")]


class PromoteToActive(msgspec.Struct, forbid_unknown_fields=True, tag_field="to", tag="active"):
    """The model's one active version; the one before is retired."""


Promote = PromoteToCanary | PromoteToActive


class VersionView(msgspec.Struct):
    id: uuid.UUID
    number: int
    state: str
    canary_share: int | None
    config: dict[str, Any]
    """The immutable configuration, as the models file writes it."""
    source: str
    created_by: str | None
    created_at: datetime
    activated_at: datetime | None
    deactivated_at: datetime | None

    @classmethod
    def of(cls, info: VersionInfo) -> VersionView:
        v = info.version
        return cls(
            id=v.id,
            number=v.number,
            state=v.state,
            canary_share=v.canary_share,
            config=info.config,
            source=v.source,
            created_by=v.created_by,
            created_at=v.created_at,
            activated_at=v.activated_at,
            deactivated_at=v.deactivated_at,
        )


class ModelView(msgspec.Struct):
    id: uuid.UUID
    name: str
    served: bool
    """False for a file-managed model gone from the file, or one without an active version."""
    source: str
    rollout: str
    active_version: int | None
    canary_version: int | None
    canary_share: int | None
    versions: list[VersionView]

    @classmethod
    def of(cls, info: ModelInfo) -> ModelView:
        active, canary = info.in_state("active"), info.in_state("canary")
        return cls(
            id=info.model.id,
            name=info.model.name,
            served=info.model.active and bool(active),
            source=info.model.source,
            rollout=info.model.rollout,
            active_version=active[0].version.number if active else None,
            canary_version=canary[0].version.number if canary else None,
            canary_share=canary[0].version.canary_share if canary else None,
            versions=[VersionView.of(v) for v in info.versions],
        )


class ModelList(msgspec.Struct):
    data: list[ModelView]
    object: str = "list"


class Change(msgspec.Struct):
    field_from: Any = msgspec.field(name="from")
    field_to: Any = msgspec.field(name="to")


class VersionDiff(msgspec.Struct):
    model: str
    first: int
    second: int
    changes: dict[str, Change]
    """Field by field (nested fields by dotted path), what differs from ``first`` to ``second``."""


class HistoryEntry(msgspec.Struct):
    at: datetime
    actor: str
    source: str
    action: str
    object_name: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None

    @classmethod
    def of(cls, entry: AuditEntry) -> HistoryEntry:
        return cls(entry.at, entry.actor, entry.source, entry.action, entry.object_name, entry.before, entry.after)


class ModelHistory(msgspec.Struct):
    model: ModelView
    events: list[HistoryEntry]
