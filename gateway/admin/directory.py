"""``/admin/orgs`` and ``/admin/users``: organizations, their teams, users and users' admin tokens.

An organization is named in a path by its id or its name, a team by its id or its name within the
organization, a user by its id or e-mail, a token by its id or visible prefix. The directory
service checks each object's scope for the calling principal; these routes only translate."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, delete, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_200_OK

from gateway.access.roles import Action
from gateway.admin.auth import AdminController, actor_of, principal_of, runtime_of
from gateway.admin.directory_schemas import (
    CreatedToken,
    CreateOrg,
    CreateTeam,
    CreateToken,
    CreateUser,
    Deleted,
    OrgList,
    OrgView,
    TeamList,
    TeamView,
    TokenList,
    TokenView,
    UpdateOrg,
    UpdateTeam,
    UpdateUser,
    UserList,
    UserView,
    not_both_expiries,
    team_admin_has_a_team,
    team_admin_keeps_a_team,
)
from gateway.directory.service import Directory
from gateway.keys.expiry import expiry_of
from gateway.web.openapi import constrained_body, error_responses

_LIST = error_responses(401, 403, 503)
_READ = error_responses(401, 403, 404, 503)
_CREATE = error_responses(400, 401, 403, 409, 503)
_WRITE = error_responses(400, 401, 403, 404, 409, 503)
_DELETE = error_responses(401, 403, 404, 409, 503)


def _directory(request: Request[Any, Any, Any]) -> Directory:
    return runtime_of(request).control.directory


class AdminOrgsController(AdminController):
    path = "/admin/orgs"

    @get("/", summary="Organizations (a user's own only)", responses=_LIST, opt={"action": Action.ORGS_READ})
    async def list_orgs(self, request: Request[Any, Any, Any]) -> OrgList:
        return OrgList(data=[OrgView.of(r) for r in await _directory(request).orgs(principal_of(request))])

    @post("/", summary="Create an organization", responses=_CREATE, opt={"action": Action.ORGS_CREATE})
    async def create_org(self, request: Request[Any, Any, Any], data: JSONBody[CreateOrg]) -> OrgView:
        made = await _directory(request).create_org(
            principal_of(request), actor_of(request), data.name, data.description
        )
        return OrgView.of(made)

    @get("/{org:str}", summary="An organization (by id or name)", responses=_READ, opt={"action": Action.ORGS_READ})
    async def show_org(self, request: Request[Any, Any, Any], org: FromPath[str]) -> OrgView:
        return OrgView.of(await _directory(request).org(principal_of(request), org))

    @patch(
        "/{org:str}", summary="Rename or describe an organization", responses=_WRITE, opt={"action": Action.ORGS_UPDATE}
    )
    async def update_org(
        self, request: Request[Any, Any, Any], org: FromPath[str], data: JSONBody[UpdateOrg]
    ) -> OrgView:
        row = await _directory(request).update_org(
            principal_of(request), actor_of(request), org, name=data.name, description=data.description
        )
        return OrgView.of(row)

    @delete(
        "/{org:str}",
        summary="Delete an organization without teams, users or keys (409 naming them otherwise)",
        status_code=HTTP_200_OK,
        responses=_DELETE,
        opt={"action": Action.ORGS_DELETE},
    )
    async def delete_org(self, request: Request[Any, Any, Any], org: FromPath[str]) -> Deleted:
        row = await _directory(request).delete_org(principal_of(request), actor_of(request), org)
        return Deleted(id=row.id, object="org")

    @get(
        "/{org:str}/teams",
        summary="An organization's teams (a team admin's own only)",
        responses=_READ,
        opt={"action": Action.TEAMS_READ},
    )
    async def list_teams(self, request: Request[Any, Any, Any], org: FromPath[str]) -> TeamList:
        rows = await _directory(request).teams(principal_of(request), org)
        return TeamList(data=[TeamView.of(r) for r in rows])

    @post(
        "/{org:str}/teams",
        summary="Create a team (its name unique in the organization)",
        responses=_WRITE,
        opt={"action": Action.TEAMS_WRITE},
    )
    async def create_team(
        self, request: Request[Any, Any, Any], org: FromPath[str], data: JSONBody[CreateTeam]
    ) -> TeamView:
        row = await _directory(request).create_team(
            principal_of(request), actor_of(request), org, data.name, data.description
        )
        return TeamView.of(row)

    @get(
        "/{org:str}/teams/{team:str}",
        summary="A team (by id or name)",
        responses=_READ,
        opt={"action": Action.TEAMS_READ},
    )
    async def show_team(self, request: Request[Any, Any, Any], org: FromPath[str], team: FromPath[str]) -> TeamView:
        return TeamView.of(await _directory(request).team(principal_of(request), org, team))

    @patch(
        "/{org:str}/teams/{team:str}",
        summary="Rename or describe a team",
        responses=_WRITE,
        opt={"action": Action.TEAMS_WRITE},
    )
    async def update_team(
        self, request: Request[Any, Any, Any], org: FromPath[str], team: FromPath[str], data: JSONBody[UpdateTeam]
    ) -> TeamView:
        row = await _directory(request).update_team(
            principal_of(request), actor_of(request), org, team, name=data.name, description=data.description
        )
        return TeamView.of(row)

    @delete(
        "/{org:str}/teams/{team:str}",
        summary="Delete a team without users or keys (409 naming them otherwise)",
        status_code=HTTP_200_OK,
        responses=_DELETE,
        opt={"action": Action.TEAMS_WRITE},
    )
    async def delete_team(self, request: Request[Any, Any, Any], org: FromPath[str], team: FromPath[str]) -> Deleted:
        row = await _directory(request).delete_team(principal_of(request), actor_of(request), org, team)
        return Deleted(id=row.id, object="team")


class AdminUsersController(AdminController):
    path = "/admin/users"

    @get(
        "/",
        summary="Users (of the caller's organization; a team admin: of their team)",
        responses=_READ,
        opt={"action": Action.USERS_READ},
    )
    async def list_users(self, request: Request[Any, Any, Any], org: FromQuery[str | None] = None) -> UserList:
        """``org``: only this organization's users (by id or name)."""
        rows = await _directory(request).users(principal_of(request), org)
        return UserList(data=[UserView.of(r) for r in rows])

    @post(
        "/",
        summary="Create a user, with a role or none",
        responses=_WRITE,
        operation_class=constrained_body(team_admin_has_a_team),
        opt={"action": Action.USERS_WRITE},
    )
    async def create_user(self, request: Request[Any, Any, Any], data: JSONBody[CreateUser]) -> UserView:
        row = await _directory(request).create_user(
            principal_of(request),
            actor_of(request),
            data.email,
            data.org,
            team=data.team,
            role=data.role,
            name=data.name,
            disabled=data.disabled,
        )
        return UserView.of(row)

    @get("/{user:str}", summary="A user (by id or e-mail)", responses=_READ, opt={"action": Action.USERS_READ})
    async def show_user(self, request: Request[Any, Any, Any], user: FromPath[str]) -> UserView:
        return UserView.of(await _directory(request).user(principal_of(request), user))

    @patch(
        "/{user:str}",
        summary="Change a user's e-mail, name, team, role, or disable them",
        responses=_WRITE,
        operation_class=constrained_body(team_admin_keeps_a_team),
        opt={"action": Action.USERS_WRITE},
    )
    async def update_user(
        self, request: Request[Any, Any, Any], user: FromPath[str], data: JSONBody[UpdateUser]
    ) -> UserView:
        row = await _directory(request).update_user(
            principal_of(request),
            actor_of(request),
            user,
            email=data.email,
            name=data.name,
            team=data.team,
            role=data.role,
            disabled=data.disabled,
        )
        return UserView.of(row)

    @delete(
        "/{user:str}",
        summary="Delete a user who owns no keys (409 naming them otherwise); their admin tokens go too",
        status_code=HTTP_200_OK,
        responses=_DELETE,
        opt={"action": Action.USERS_WRITE},
    )
    async def delete_user(self, request: Request[Any, Any, Any], user: FromPath[str]) -> Deleted:
        row = await _directory(request).delete_user(principal_of(request), actor_of(request), user)
        return Deleted(id=row.id, object="user")

    @get(
        "/{user:str}/tokens",
        summary="A user's admin tokens (never their secrets)",
        responses=_READ,
        opt={"action": Action.TOKENS_WRITE},
    )
    async def list_tokens(self, request: Request[Any, Any, Any], user: FromPath[str]) -> TokenList:
        rows = await _directory(request).tokens(principal_of(request), user)
        return TokenList(data=[TokenView.of(r) for r in rows])

    @post(
        "/{user:str}/tokens",
        summary="Create an admin token acting as the user; the secret is returned once",
        responses=_WRITE,
        operation_class=constrained_body(not_both_expiries),
        opt={"action": Action.TOKENS_WRITE},
    )
    async def create_token(
        self, request: Request[Any, Any, Any], user: FromPath[str], data: JSONBody[CreateToken]
    ) -> CreatedToken:
        created = await _directory(request).create_token(
            principal_of(request),
            actor_of(request),
            user,
            data.name,
            expires_at=expiry_of(data.expires_at, data.expires_in),
        )
        return CreatedToken(token=created.secret, info=TokenView.of(created.token))

    # `token_id` (an id or a prefix), not `token`: `token` in a created token is its secret.
    @post(
        "/{user:str}/tokens/{token_id:str}/revoke",
        summary="Revoke an admin token (by id or prefix); it stops at once",
        status_code=HTTP_200_OK,
        responses=_READ | error_responses(400),
        opt={"action": Action.TOKENS_WRITE},
    )
    async def revoke_token(
        self, request: Request[Any, Any, Any], user: FromPath[str], token_id: FromPath[str]
    ) -> TokenView:
        return await _revoke(request, user, token_id)

    @delete(
        "/{user:str}/tokens/{token_id:str}",
        summary="Revoke an admin token (as POST .../revoke)",
        status_code=HTTP_200_OK,
        responses=_READ | error_responses(400),
        opt={"action": Action.TOKENS_WRITE},
    )
    async def delete_token(
        self, request: Request[Any, Any, Any], user: FromPath[str], token_id: FromPath[str]
    ) -> TokenView:
        return await _revoke(request, user, token_id)


async def _revoke(request: Request[Any, Any, Any], user: str, token: str) -> TokenView:
    row = await _directory(request).revoke_token(principal_of(request), actor_of(request), user, token)
    return TokenView.of(row)


CONTROLLERS: list[type[Controller]] = [AdminOrgsController, AdminUsersController]
