"""Wire shapes of ``/admin/orgs`` and ``/admin/users``: organizations, teams, users and admin tokens.

The constraints are documented here and checked by the directory service, with its messages
(the CLI goes through the same checks). In an update, a field left out stays as it is; ``null``
clears one that can be empty."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import msgspec
from litestar.openapi.spec import OpenAPIType, Schema
from litestar.params import Parameter
from msgspec import UNSET, UnsetType

from gateway.access.roles import USER_ROLES, Role
from gateway.db.models import AdminToken, Organization, Team, User
from gateway.directory.rules import DESCRIPTION_MAX, EMAIL_MAX, EMAIL_PATTERN, NAME_MAX
from gateway.keys.expiry import DURATION_PATTERN
from gateway.web.openapi import NAMED, present

_NAME = Annotated[str, Parameter(min_length=1, max_length=NAME_MAX, pattern=NAMED, description="Not blank, no NUL")]
_DESCRIPTION = Annotated[
    str, Parameter(max_length=DESCRIPTION_MAX, pattern=r"^[^\x00]*$", description="Free text, no NUL")
]
_EMAIL = Annotated[
    str,
    Parameter(
        min_length=3,
        max_length=EMAIL_MAX,
        pattern=EMAIL_PATTERN,
        description="An e-mail address: one '@', no spaces (unique among users)",
    ),
]
_ROLE = Annotated[
    str,
    Parameter(
        schema_extra={"enum": [r.value for r in USER_ROLES]},
        description="org_admin: everything in the organization; team_admin: the team's keys, limits and usage; "
        "viewer: read only. Nobody gives a role above their own.",
    ),
]
_REF = Annotated[
    str, Parameter(min_length=1, max_length=400, description="An id, or a name (a team: of the user's organization)")
]


class CreateOrg(msgspec.Struct, forbid_unknown_fields=True):
    name: _NAME
    description: _DESCRIPTION | None = None


class UpdateOrg(msgspec.Struct, forbid_unknown_fields=True):
    name: _NAME | UnsetType = UNSET
    description: _DESCRIPTION | UnsetType | None = UNSET


class OrgView(msgspec.Struct):
    id: uuid.UUID
    name: str
    description: str | None
    created_at: datetime
    updated_at: datetime | None

    @classmethod
    def of(cls, row: Organization) -> OrgView:
        return cls(row.id, row.name, row.description, row.created_at, row.updated_at)


class OrgList(msgspec.Struct):
    data: list[OrgView]
    object: str = "list"


class CreateTeam(msgspec.Struct, forbid_unknown_fields=True):
    name: _NAME
    description: _DESCRIPTION | None = None


class UpdateTeam(msgspec.Struct, forbid_unknown_fields=True):
    name: _NAME | UnsetType = UNSET
    description: _DESCRIPTION | UnsetType | None = UNSET


class TeamView(msgspec.Struct):
    id: uuid.UUID
    org_id: uuid.UUID
    name: str
    description: str | None
    created_at: datetime
    updated_at: datetime | None

    @classmethod
    def of(cls, row: Team) -> TeamView:
        return cls(row.id, row.org_id, row.name, row.description, row.created_at, row.updated_at)


class TeamList(msgspec.Struct):
    data: list[TeamView]
    object: str = "list"


class CreateUser(msgspec.Struct, forbid_unknown_fields=True):
    """A team_admin needs a ``team``."""

    email: _EMAIL
    org: _REF
    """The user's organization, by id or name."""
    team: _REF | None = None
    """A team of that organization, by id or name."""
    role: _ROLE | None = None
    """None: no admin access (the user can still own keys)."""
    name: _NAME | None = None
    disabled: bool = False


class UpdateUser(msgspec.Struct, forbid_unknown_fields=True):
    """A user stays in their organization. A team_admin keeps a team: a request making one without
    is a 400, a change that would leave a stored team_admin without one a 409."""

    email: _EMAIL | UnsetType = UNSET
    name: _NAME | UnsetType | None = UNSET
    team: _REF | UnsetType | None = UNSET
    role: _ROLE | UnsetType | None = UNSET
    disabled: bool | UnsetType = UNSET


def team_admin_has_a_team() -> Schema:
    """A new user with the role team_admin names a team."""
    is_team_admin = Schema(required=["role"], properties={"role": Schema(const=Role.TEAM_ADMIN.value)})
    return Schema(any_of=[Schema(schema_not=is_team_admin), present("team")])


def team_admin_keeps_a_team() -> Schema:
    """An update does not make a user a team_admin and take their team in one go."""
    return Schema(
        schema_not=Schema(
            required=["role", "team"],
            properties={"role": Schema(const=Role.TEAM_ADMIN.value), "team": Schema(type=OpenAPIType.NULL)},
        )
    )


class UserView(msgspec.Struct):
    id: uuid.UUID
    email: str
    name: str | None
    org_id: uuid.UUID
    team_id: uuid.UUID | None
    role: str | None
    disabled: bool
    disabled_at: datetime | None
    created_at: datetime
    updated_at: datetime | None

    @classmethod
    def of(cls, row: User) -> UserView:
        return cls(
            id=row.id,
            email=row.email,
            name=row.name,
            org_id=row.org_id,
            team_id=row.team_id,
            role=row.role,
            disabled=row.disabled_at is not None,
            disabled_at=row.disabled_at,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class UserList(msgspec.Struct):
    data: list[UserView]
    object: str = "list"


class CreateToken(msgspec.Struct, forbid_unknown_fields=True):
    name: _NAME
    expires_at: datetime | None = None
    """An ISO date/time with a time zone."""
    expires_in: (
        Annotated[str, msgspec.Meta(pattern=DURATION_PATTERN, description="A duration from now: 30d, 12h, 90m")] | None
    ) = None
    """Instead of ``expires_at``: a duration from now."""


def not_both_expiries() -> Schema:
    return Schema(schema_not=Schema(all_of=[present("expires_at"), present("expires_in")]))


class TokenView(msgspec.Struct):
    id: uuid.UUID
    user_id: uuid.UUID
    prefix: str
    name: str
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, row: AdminToken) -> TokenView:
        return cls(
            row.id, row.user_id, row.prefix, row.name, row.expires_at, row.revoked_at, row.last_used_at, row.created_at
        )


class CreatedToken(msgspec.Struct):
    token: str
    """The secret (``sk-gwa-...``). Shown once; only its hash is kept."""
    info: TokenView


class TokenList(msgspec.Struct):
    data: list[TokenView]
    object: str = "list"


class Deleted(msgspec.Struct):
    id: uuid.UUID
    object: str
    """``org``, ``team`` or ``user``."""
    deleted: bool = True
