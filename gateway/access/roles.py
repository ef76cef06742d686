"""The one table that says which role may do what.

Every admin route names one ``Action``; the admin guard refuses a principal whose role is not
listed for it (403), and the route checks the scope of the object it touches with
``Principal.check``: an organization's objects are its own admins' and viewers', a team's keys,
limits and usage also its team admins'. Models, versions and backends are shared by every
organization: org admins manage them, everyone may read the models.
"""

from __future__ import annotations

import enum


class Role(enum.StrEnum):
    SUPERUSER = "superuser"
    """GATEWAY_ADMIN_KEY: the bootstrap superuser, every organization."""
    ORG_ADMIN = "org_admin"
    TEAM_ADMIN = "team_admin"
    VIEWER = "viewer"


USER_ROLES = (Role.ORG_ADMIN, Role.TEAM_ADMIN, Role.VIEWER)
"""The roles a user can be given (the superuser is the admin key, never a user)."""


class Scope(enum.StrEnum):
    GLOBAL = "global"
    """Shared by every organization (models, versions, backends)."""
    ORG = "org"
    """An organization's (teams, users, the audit log)."""
    TEAM = "team"
    """A team's, within an organization (keys, limits, usage): team admins reach their own team's."""


class Action(enum.StrEnum):
    ORGS_READ = "orgs.read"
    ORGS_CREATE = "orgs.create"
    ORGS_UPDATE = "orgs.update"
    ORGS_DELETE = "orgs.delete"
    TEAMS_READ = "teams.read"
    TEAMS_WRITE = "teams.write"
    USERS_READ = "users.read"
    USERS_WRITE = "users.write"
    TOKENS_WRITE = "tokens.write"
    KEYS_READ = "keys.read"
    KEYS_WRITE = "keys.write"
    LIMITS_READ = "limits.read"
    LIMITS_WRITE = "limits.write"
    USAGE_READ = "usage.read"
    MODELS_READ = "models.read"
    MODELS_WRITE = "models.write"
    BACKENDS_READ = "backends.read"
    BACKENDS_WRITE = "backends.write"
    AUDIT_READ = "audit.read"


_ALL = frozenset(USER_ROLES)
_ORG_ADMIN = frozenset({Role.ORG_ADMIN})
_READERS = frozenset({Role.ORG_ADMIN, Role.VIEWER})
_TEAM_MANAGERS = frozenset({Role.ORG_ADMIN, Role.TEAM_ADMIN})

PERMISSIONS: dict[Action, tuple[frozenset[Role], Scope]] = {
    # action: (the user roles allowed besides the superuser, the scope checked)
    Action.ORGS_READ: (_ALL, Scope.ORG),
    Action.ORGS_CREATE: (frozenset(), Scope.GLOBAL),
    Action.ORGS_UPDATE: (_ORG_ADMIN, Scope.ORG),
    Action.ORGS_DELETE: (frozenset(), Scope.GLOBAL),
    Action.TEAMS_READ: (_ALL, Scope.TEAM),
    Action.TEAMS_WRITE: (_ORG_ADMIN, Scope.ORG),
    Action.USERS_READ: (_ALL, Scope.TEAM),
    Action.USERS_WRITE: (_ORG_ADMIN, Scope.ORG),
    Action.TOKENS_WRITE: (_ORG_ADMIN, Scope.ORG),
    Action.KEYS_READ: (_ALL, Scope.TEAM),
    Action.KEYS_WRITE: (_TEAM_MANAGERS, Scope.TEAM),
    Action.LIMITS_READ: (_ALL, Scope.TEAM),
    Action.LIMITS_WRITE: (_TEAM_MANAGERS, Scope.TEAM),
    Action.USAGE_READ: (_ALL, Scope.TEAM),
    Action.MODELS_READ: (_ALL, Scope.GLOBAL),
    Action.MODELS_WRITE: (_ORG_ADMIN, Scope.GLOBAL),
    Action.BACKENDS_READ: (_READERS, Scope.GLOBAL),
    Action.BACKENDS_WRITE: (_ORG_ADMIN, Scope.GLOBAL),
    Action.AUDIT_READ: (_READERS, Scope.ORG),
}


def allowed(role: Role, action: Action) -> bool:
    return role is Role.SUPERUSER or role in PERMISSIONS[action][0]
