"""What the directory accepts (names, e-mails, roles, who may grant which role) and what the
audit log keeps of its objects: plain JSON, never a secret nor a hash."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from gateway.access.principal import Principal
from gateway.access.roles import USER_ROLES, Role
from gateway.db.models import AdminToken, Organization, Team, User
from gateway.errors import Forbidden, InvalidRequest

NAME_MAX = 200
DESCRIPTION_MAX = 2000
EMAIL_MAX = 320
# One "@" between two non-empty parts, no space or control character: the admin schema's pattern.
EMAIL_PATTERN = r"^[^@\x00-\x20\x7f]+@[^@\x00-\x20\x7f]+$"
_EMAIL = re.compile(EMAIL_PATTERN)
# Who outranks whom: a role may grant its own and those below it (never the superuser's).
_RANK = {Role.VIEWER: 0, Role.TEAM_ADMIN: 1, Role.ORG_ADMIN: 2, Role.SUPERUSER: 3}


def check_name(value: str, field: str = "name") -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > NAME_MAX or "\x00" in value:
        raise InvalidRequest(f"'{field}' must be 1 to {NAME_MAX} characters, not blank, without NUL.", param=field)
    return value


def check_description(value: str | None, field: str = "description") -> str | None:
    if value is not None and (len(value) > DESCRIPTION_MAX or "\x00" in value):
        raise InvalidRequest(f"'{field}' must be at most {DESCRIPTION_MAX} characters, without NUL.", param=field)
    return value


def check_email(value: str) -> str:
    if not isinstance(value, str) or len(value) > EMAIL_MAX or not _EMAIL.fullmatch(value):
        raise InvalidRequest(
            f"'email' must be an address like name@example.com (at most {EMAIL_MAX} characters).", param="email"
        )
    return value


def check_role(value: str | None) -> Role | None:
    """A user's role: one of USER_ROLES, or None for no admin access."""
    if value is None:
        return None
    if value == Role.SUPERUSER:
        raise InvalidRequest("No user is a superuser: that is GATEWAY_ADMIN_KEY alone.", param="role")
    if value not in {r.value for r in USER_ROLES}:
        allowed = ", ".join(r.value for r in USER_ROLES)
        raise InvalidRequest(f"'role' must be one of {allowed}, or null for none; got {value!r}.", param="role")
    return Role(value)


def check_grant(who: Principal, role: Role | None) -> None:
    """A caller gives no one a role above their own."""
    if role is not None and _RANK[role] > _RANK[who.role]:
        raise Forbidden(f"The role {who.role.value} may not give the role {role.value}.")


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def org_view(row: Organization) -> dict[str, Any]:
    return {"id": str(row.id), "name": row.name, "description": row.description}


def team_view(row: Team) -> dict[str, Any]:
    return {"id": str(row.id), "org_id": str(row.org_id), "name": row.name, "description": row.description}


def user_view(row: User) -> dict[str, Any]:
    """Never the password hash."""
    return {
        "id": str(row.id),
        "email": row.email,
        "name": row.name,
        "org_id": str(row.org_id),
        "team_id": str(row.team_id) if row.team_id else None,
        "role": row.role,
        "disabled_at": _time(row.disabled_at),
    }


def token_view(row: AdminToken) -> dict[str, Any]:
    """Never the secret nor its hash: the visible prefix names it."""
    return {
        "id": str(row.id),
        "user_id": str(row.user_id),
        "prefix": row.prefix,
        "name": row.name,
        "expires_at": _time(row.expires_at),
        "revoked_at": _time(row.revoked_at),
    }
