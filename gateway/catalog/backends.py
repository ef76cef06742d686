"""Backends as managed objects: created and changed through the admin API and the CLI, with a
secret stored encrypted (never returned whole, never logged).

A backend's credential is one of: a secret given through the API or the CLI (kept only as a
Fernet token under GATEWAY_ENCRYPTION_KEYS, with its last four characters as a hint), an ``env:``
reference (the gateway reads the variable), or Microsoft Entra ID settings (Azure). Giving one
replaces the others. The fields are checked by the models file's own rules, so an API backend
and a file backend are the same thing, and errors name the request's field.

Who owns a backend: one declared in ``policies/models.yaml`` (``source: file``) is the file's; it
can be read here, and changing or deleting it through the API is a 409 saying to edit the file
(a change here would be undone by the next sync). One made here (``source: api``) is the API's;
the sync leaves it alone unless the file comes to declare the same name, which hands it to the
file (see gateway/catalog/sync.py). Every write is one change-feed transaction with audit entries
holding the masked view only, and is live on every replica within a second.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.audit.actor import Actor
from gateway.audit.changes import Changes
from gateway.catalog.backend_rows import secret_hint
from gateway.catalog.config import BackendConfig, parse_backend
from gateway.catalog.sync import backend_settings, backend_view
from gateway.db.models import Backend, Model, ModelVersion, utcnow
from gateway.errors import ConfigError, Conflict, GatewayError, InvalidRequest, NotFound
from gateway.vault import Vault, VaultError

MAX_SECRET = 4096
SECRET_PATTERN = r"^[!-~]([ -~]*[!-~])?$"
"""Printable ASCII (what an HTTP header carries), no spaces at either end."""
ENV_REF_PATTERN = r"^env:[A-Za-z_][A-Za-z0-9_]{0,199}$"
_SECRET, _ENV_REF = re.compile(SECRET_PATTERN), re.compile(ENV_REF_PATTERN)
SETTINGS = ("timeout_seconds", "api_version", "region", "entra")
"""The kind-specific settings, by the models file's names."""
CREDENTIALS = ("secret", "credential_ref", "entra")
"""Each replaces the others when given."""
_API_NAMES = {"api_key": "secret", "api_key_env": "credential_ref"}


@dataclass(frozen=True, slots=True)
class BackendInfo:
    backend: Backend
    used_by: list[str]
    """The model versions that send their requests to it (``model vN``)."""

    @property
    def view(self) -> dict[str, Any]:
        return backend_view(self.backend)


class BackendService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], changes: Changes, vault: Vault) -> None:
        self._sessions = sessions
        self._changes = changes
        self._vault = vault

    # Reading

    async def list(self) -> list[BackendInfo]:
        async with self._sessions() as session:
            rows = (await session.scalars(select(Backend).order_by(Backend.name))).all()
            users = await _users(session)
        return [BackendInfo(row, users.get(row.id, [])) for row in rows]

    async def get(self, ref: str) -> BackendInfo:
        async with self._sessions() as session:
            row = await _find(session, ref)
            return BackendInfo(row, (await _users(session, row.id)).get(row.id, []))

    # Changing

    async def create(self, actor: Actor, name: str, fields: dict[str, Any]) -> BackendInfo:
        """``fields``: kind, base_url, and optionally one credential and the kind's settings."""
        _check_credentials(fields)
        config = parse_backend(name, _file_spec(fields), _api_error)
        async with self._changes.transaction(actor) as change:
            if await change.session.scalar(select(Backend).where(Backend.name == name)) is not None:
                raise Conflict(f"A backend named {name!r} exists already.", param="name")
            row = Backend(id=uuid.uuid4(), name=name, source="api", created_at=utcnow(), updated_at=utcnow())
            self._apply(row, config, fields.get("secret"))
            change.session.add(row)
            change.record("backend.create", "backend", row.id, name=name, after=backend_view(row))
        return BackendInfo(row, [])

    async def update(self, actor: Actor, ref: str, changes: dict[str, Any]) -> BackendInfo:
        """``changes``: the fields to change; None clears a setting or the credential. A new secret
        is encrypted afresh; leaving the credential out keeps the stored one as it is."""
        _check_credentials(changes)
        _check_whole(changes)
        async with self._changes.transaction(actor) as change:
            row = await _find(change.session, ref)
            _owned_by_api(row, "changed")
            before = backend_view(row)
            fields = _current_fields(row) | changes
            if any(name in changes for name in CREDENTIALS):
                for other in CREDENTIALS:  # the credential given replaces the others
                    fields[other] = changes.get(other)
            keeps_secret = bool(row.secret_encrypted) and not any(name in changes for name in CREDENTIALS)
            # A kept secret takes part in the checks (it excludes entra) without being decrypted.
            spec = _file_spec(fields | ({"secret": "stored"} if keeps_secret else {}))
            config = parse_backend(row.name, spec, _api_error)
            if not keeps_secret:
                self._apply(row, config, fields.get("secret"))
            else:
                self._apply_settings(row, config)
            after = backend_view(row)
            if after != before or changes.get("secret") is not None:  # a new secret may end alike
                row.updated_at = utcnow()
                change.record("backend.update", "backend", row.id, name=row.name, before=before, after=after)
            users = (await _users(change.session, row.id)).get(row.id, [])
        return BackendInfo(row, users)

    async def delete(self, actor: Actor, ref: str) -> tuple[uuid.UUID, str]:
        """Returns the deleted backend's id and name."""
        async with self._changes.transaction(actor) as change:
            row = await _find(change.session, ref)
            _owned_by_api(row, "deleted")
            users = (await _users(change.session, row.id)).get(row.id, [])
            if users:
                shown = ", ".join(users[:20]) + (f" and {len(users) - 20} more" if len(users) > 20 else "")
                raise Conflict(
                    f"The backend {row.name!r} is used by {len(users)} model version(s): {shown}. A version is "
                    "immutable and keeps its backend, retired or not, so the backend stays while they exist."
                )
            change.record("backend.delete", "backend", row.id, name=row.name, before=backend_view(row))
            await change.session.delete(row)
            deleted = row.id, row.name
        return deleted

    async def re_encrypt(self, actor: Actor) -> int:
        """Every stored secret onto the first of GATEWAY_ENCRYPTION_KEYS, in one transaction."""
        if not self._vault.enabled:
            raise ConfigError("GATEWAY_ENCRYPTION_KEYS is not set: there is no key to re-encrypt under.")
        async with self._changes.transaction(actor) as change:
            rows = (
                await change.session.scalars(
                    select(Backend).where(Backend.secret_encrypted.is_not(None)).order_by(Backend.name)
                )
            ).all()
            for row in rows:
                assert row.secret_encrypted is not None
                try:
                    row.secret_encrypted = self._vault.rotate(row.secret_encrypted)
                except VaultError as exc:  # none re-encrypted: the transaction rolls back
                    raise ConfigError(f"backend {row.name!r}: {exc.message}") from None
                view = backend_view(row)
                change.record("backend.re-encrypt", "backend", row.id, name=row.name, before=view, after=view)
        return len(rows)

    def _apply(self, row: Backend, config: BackendConfig, secret: str | None) -> None:
        """The credential and settings of ``config`` onto ``row``; a secret is stored encrypted."""
        self._apply_settings(row, config)
        row.credential_ref = config.credential_ref if config.api_key is None else None
        if secret is None:
            row.secret_encrypted = row.secret_hint = None
            return
        try:
            row.secret_encrypted = self._vault.encrypt(secret)
        except VaultError as exc:  # the message names the setting, never the value
            raise InvalidRequest(exc.message, param="secret", code=exc.code) from None
        row.secret_hint = secret_hint(secret)

    @staticmethod
    def _apply_settings(row: Backend, config: BackendConfig) -> None:
        row.kind, row.base_url, row.settings = config.kind, config.base_url, backend_settings(config)


def _check_credentials(fields: dict[str, Any]) -> None:
    """Checks the models file does not make (it reads no ``env:`` references): messages never
    hold the value, which may be a secret pasted into the wrong field."""
    given = [name for name in CREDENTIALS if fields.get(name) is not None]
    if len(given) > 1:
        raise InvalidRequest(f"{given[1]}: give one credential: secret, credential_ref or entra.", param=given[1])
    secret, ref = fields.get("secret"), fields.get("credential_ref")
    if secret is not None and (
        not isinstance(secret, str) or len(secret) > MAX_SECRET or not _SECRET.fullmatch(secret)
    ):
        raise InvalidRequest(
            f"secret: expected 1 to {MAX_SECRET} printable ASCII characters, no spaces at either end; value not shown",
            param="secret",
        )
    if ref is not None and (not isinstance(ref, str) or not _ENV_REF.fullmatch(ref)):
        raise InvalidRequest(
            "credential_ref: expected env:NAME, an environment variable the gateway reads the secret from; "
            "value not shown",
            param="credential_ref",
        )


def _check_whole(changes: dict[str, Any]) -> None:
    """A change says what it needs alongside (the API's schema states these rules, which it could
    not for rules that depend on what is stored)."""
    if changes.get("entra") is not None and changes.get("kind") != "azure":
        raise InvalidRequest("kind: a change setting entra names kind: azure too (Entra ID is Azure's)", param="kind")
    if changes.get("kind") == "bedrock" and changes.get("region") is None:
        raise InvalidRequest("region: a change naming kind: bedrock gives its region too", param="region")


def _file_spec(fields: dict[str, Any]) -> dict[str, Any]:
    """The request's fields as the models file writes a backend."""
    spec = {name: fields[name] for name in ("kind", "base_url", *SETTINGS) if fields.get(name) is not None}
    if fields.get("secret") is not None:
        spec["api_key"] = fields["secret"]
    if fields.get("credential_ref") is not None:
        spec["api_key_env"] = str(fields["credential_ref"]).removeprefix("env:")
    return spec


def _current_fields(row: Backend) -> dict[str, Any]:
    settings = dict(row.settings or {})
    ref = row.credential_ref or ""
    return {
        "kind": row.kind,
        "base_url": row.base_url,
        "credential_ref": ref if ref.startswith("env:") else None,
        **{name: settings.get(name) for name in SETTINGS},
    }


def _api_error(where: str, problem: str) -> GatewayError:
    """A models-file rule's error, with the field named as the request body names it."""
    field = where.lstrip(".")
    head, dot, rest = field.partition(".")
    field = _API_NAMES.get(head, head) + dot + rest
    return InvalidRequest(f"{field}: {problem}" if field else problem, param=field or None)


def _owned_by_api(row: Backend, verb: str) -> None:
    if row.source != "api":
        raise Conflict(
            f"The backend {row.name!r} comes from the models file (source: file) and is not {verb} through the "
            "API: edit policies/models.yaml, then restart or run `gateway models sync`."
        )


async def _find(session: AsyncSession, ref: str) -> Backend:
    """By name, or by id (for names an URL path cannot carry)."""
    if len(ref) > 200 or "\x00" in ref:
        raise NotFound(f"No backend {ref[:64]!r}.", param="backend")
    row = await session.scalar(select(Backend).where(Backend.name == ref))
    if row is None:
        try:
            row = await session.get(Backend, uuid.UUID(ref))
        except ValueError:
            row = None
    if row is None:
        raise NotFound(f"No backend {ref!r}.", param="backend")
    return row


async def _users(session: AsyncSession, backend_id: uuid.UUID | None = None) -> dict[uuid.UUID, list[str]]:
    query = select(ModelVersion.backend_id, Model.name, ModelVersion.number).join(
        Model, Model.id == ModelVersion.model_id
    )
    if backend_id is not None:
        query = query.where(ModelVersion.backend_id == backend_id)
    users: dict[uuid.UUID, list[str]] = {}
    for used, model, number in (await session.execute(query.order_by(Model.name, ModelVersion.number))).all():
        users.setdefault(used, []).append(f"{model} v{number}")
    return users
