"""Control-plane tables. Money is integers: prices in micro-USD per million tokens, costs in nano-USD."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator, Uuid

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on every database (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), uuid.UUID: Uuid()}


class Organization(Base):
    __tablename__ = "organizations"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str | None] = mapped_column(String(2000))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(onupdate=utcnow)


class Team(Base):
    __tablename__ = "teams"
    __table_args__ = (UniqueConstraint("org_id", "name"),)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(String(2000))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(onupdate=utcnow)


class User(Base):
    """A person: owns keys, and with a ``role`` is an admin principal (``org_admin``, ``team_admin``,
    ``viewer``; None: no admin access). A team admin administers ``team_id``."""

    __tablename__ = "users"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"))
    team_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("teams.id"))
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str | None] = mapped_column(String(16))
    password_hash: Mapped[str | None] = mapped_column(String(200))
    """argon2id, for the dashboard's sign-in; None: tokens only."""
    disabled_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(onupdate=utcnow)


class AdminToken(Base):
    """A user's admin API token; stored as a SHA-256 like keys are. It acts with the user's role."""

    __tablename__ = "admin_tokens"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    prefix: Mapped[str] = mapped_column(String(32), index=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKey(Base):
    """Only a SHA-256 of the secret is stored; ``prefix`` is the visible start of the secret."""

    __tablename__ = "api_keys"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    prefix: Mapped[str] = mapped_column(String(32), index=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    owner: Mapped[str | None] = mapped_column(String(200))
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    team_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    previous_secret_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    """After a rotation: the old secret's hash, valid until ``previous_expires_at``."""
    previous_expires_at: Mapped[datetime | None]
    allowed_models: Mapped[list[str] | None] = mapped_column(JSON)
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(onupdate=utcnow)


class Backend(Base):
    """Where requests go. ``credential_ref`` names where the secret lives (``env:VAR``); a secret
    given through the admin API is held only encrypted, in ``secret_encrypted``."""

    __tablename__ = "backends"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(50))
    base_url: Mapped[str] = mapped_column(String(2000))
    credential_ref: Mapped[str | None] = mapped_column(String(500))
    secret_encrypted: Mapped[str | None] = mapped_column(Text)
    """Fernet token of the secret (``cryptography``), under the first of GATEWAY_ENCRYPTION_KEYS."""
    secret_hint: Mapped[str | None] = mapped_column(String(16))
    """The secret's last four characters, for the masked view; never more."""
    source: Mapped[str] = mapped_column(String(16), default="file", server_default="file")
    """``file`` (policies/models.yaml owns it) or ``api`` (the admin API and the CLI do)."""
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AuditEntry(Base):
    """One change to the control plane, append-only: the database refuses UPDATE and DELETE."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_object", "object_type", "object_id"),
        Index("ix_audit_log_at", "at"),
    )
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(16))
    """``api``, ``cli`` or ``sync`` (the models file)."""
    remote: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str] = mapped_column(String(64))
    object_name: Mapped[str | None] = mapped_column(String(400))
    org_id: Mapped[uuid.UUID | None]
    team_id: Mapped[uuid.UUID | None]
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    generation: Mapped[int] = mapped_column(BigInteger)
    """The control-plane generation this change made (see ControlState)."""


class ControlState(Base):
    """One row: the control plane's generation, raised by every change in the change's own
    transaction, so a replica that has read generation N has every change up to N."""

    __tablename__ = "control_state"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    generation: Mapped[int] = mapped_column(BigInteger, default=0)


class Model(Base):
    __tablename__ = "models"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    """False: not served (a file-managed model gone from the file)."""
    source: Mapped[str] = mapped_column(String(16), default="file", server_default="file")
    rollout: Mapped[str] = mapped_column(String(16), default="auto", server_default="auto")
    """``auto``: a changed file makes an active version; ``manual``: a draft."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


VERSION_STATES = ("draft", "canary", "active", "retired")


class ModelVersion(Base):
    """Immutable configuration (backend, upstream model, params, limits, prices) with a lifecycle
    state: ``draft``, ``canary`` (``canary_share`` percent of traffic), ``active`` (one per model)
    or ``retired``. Only the state columns ever change."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("model_id", "number"),)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    model_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    backend_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("backends.id"))
    upstream_model: Mapped[str] = mapped_column(String(200))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    price_input: Mapped[int] = mapped_column(BigInteger, default=0)
    price_cached_input: Mapped[int] = mapped_column(BigInteger, default=0)
    price_output: Mapped[int] = mapped_column(BigInteger, default=0)
    # Added in revision 0002; a version made before then has the input price for cache writes.
    price_cache_write_input: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    price_image: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    price_audio_second: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    price_characters: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    config_hash: Mapped[str] = mapped_column(String(64))
    unpriced: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """No prices were given (as opposed to prices of zero): see GATEWAY_UNPRICED_MODELS."""
    price_schedule: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    """Later prices: ``[{"effective_from": ISO time, "prices": {...}}]``, in time order."""
    context_window: Mapped[int | None] = mapped_column(Integer)
    capabilities: Mapped[list[str] | None] = mapped_column(JSON)
    limits: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    """Caps applied to every request (``max_tokens``)."""
    description: Mapped[str | None] = mapped_column(String(2000))
    source: Mapped[str] = mapped_column(String(16), default="file", server_default="file")
    created_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    state: Mapped[str] = mapped_column(String(16), default="draft", server_default="draft")
    canary_share: Mapped[int | None] = mapped_column(Integer)
    activated_at: Mapped[datetime | None]
    """When it last became active."""
    deactivated_at: Mapped[datetime | None]
    """When it last stopped being active: the newest such version is what a rollback restores."""


class UsageRecord(Base):
    """One row per request that reached ``/v1``, failed ones included."""

    __tablename__ = "usage_records"
    __table_args__ = (
        Index("ix_usage_records_org_started", "org_id", "started_at"),
        Index("ix_usage_records_key_started", "key_id", "started_at"),
    )
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    request_id: Mapped[str] = mapped_column(String(64), unique=True)
    endpoint: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[uuid.UUID | None]
    team_id: Mapped[uuid.UUID | None]
    org_id: Mapped[uuid.UUID | None]
    model: Mapped[str | None] = mapped_column(String(200))
    model_version_id: Mapped[uuid.UUID | None]
    backend_id: Mapped[uuid.UUID | None]
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cached_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cache_write_tokens: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    images: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    audio_ms: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    characters: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    cost_nano_usd: Mapped[int] = mapped_column(BigInteger, default=0)
    status_code: Mapped[int] = mapped_column(Integer)
    error_type: Mapped[str | None] = mapped_column(String(64))
    latency_ms: Mapped[int] = mapped_column(Integer)
    ttft_ms: Mapped[int | None] = mapped_column(Integer)
    streamed: Mapped[bool] = mapped_column(Boolean, default=False)
    unpriced: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """Served by a version without prices: its cost is unknown, not zero."""
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime]


class QuotaLimit(Base):
    """A limit set through the admin API or the CLI (those in policies/quotas.yaml are not stored).
    One per target: setting a limit on the same scope, name and model replaces it."""

    __tablename__ = "quota_limits"
    __table_args__ = (UniqueConstraint("scope", "name", "model"),)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    scope: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    model: Mapped[str] = mapped_column(String(200), default="")  # "" = every model
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    """The limit as the quotas file would write it, validated by the same code."""
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
