"""The admin principal a request acts as, and the scope checks every admin route makes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from gateway.access.roles import PERMISSIONS, Action, Role, Scope, allowed
from gateway.audit.actor import Actor
from gateway.errors import Forbidden


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    role: Role
    org_id: uuid.UUID | None = None
    """None only for the superuser, who reaches every organization."""
    team_id: uuid.UUID | None = None
    """A team admin's team."""
    user_id: uuid.UUID | None = None

    @property
    def superuser(self) -> bool:
        return self.role is Role.SUPERUSER

    def may(self, action: Action) -> bool:
        return allowed(self.role, action)

    def require(self, action: Action) -> None:
        """The role part of the check, made by the admin guard for the route's action."""
        if not self.may(action):
            raise Forbidden(f"The role {self.role.value} may not do {action.value}.")

    def check(self, action: Action, org_id: uuid.UUID | None, team_id: uuid.UUID | None = None) -> None:
        """May this principal do ``action`` on an object of ``org_id`` (and ``team_id``)?"""
        self.require(action)
        if self.superuser:
            return
        scope = PERMISSIONS[action][1]
        if scope is Scope.GLOBAL:
            return
        if org_id != self.org_id:
            raise Forbidden(f"That object is outside your organization ({action.value}).")
        if scope is Scope.TEAM and self.role is Role.TEAM_ADMIN and team_id != self.team_id:
            raise Forbidden(f"That object is outside your team ({action.value}).")

    @property
    def org_filter(self) -> uuid.UUID | None:
        """The organization a listing is narrowed to (None: every one)."""
        return None if self.superuser else self.org_id

    @property
    def team_filter(self) -> uuid.UUID | None:
        """The team a team-scoped listing is narrowed to (None: the whole organization)."""
        return self.team_id if self.role is Role.TEAM_ADMIN else None

    def actor(self, source: str, remote: str | None) -> Actor:
        return Actor(name=self.name, role=self.role.value, source=source, remote=remote)


SUPERUSER = Principal(name="admin-key", role=Role.SUPERUSER)
"""GATEWAY_ADMIN_KEY."""
