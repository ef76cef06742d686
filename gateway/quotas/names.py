"""How a limit names a team, an end user or every key of one organization: ``ORG/NAME``.

Team names are unique only within an organization, and end-user ids are whatever each client
sends, so a bare ``ml`` or ``alice`` names every organization's. ``acme/ml`` names team ``ml`` of
organization ``acme`` only, ``acme/alice`` the end user ``alice`` of acme's keys, and ``acme/*``
each team, end user or key of acme. A limit an org or team admin sets is always written this way
(their organization's name first), so it can never reach into another organization.
"""

from __future__ import annotations

SEPARATOR = "/"
QUALIFIED_SCOPES = ("team", "user", "key")
"""The scopes whose names may be qualified (an organization is named by its own name)."""


def qualified(org_name: str, name: str) -> str:
    return f"{org_name}{SEPARATOR}{name}"


def splits(name: str) -> list[tuple[str, str]]:
    """Every (organization, rest) reading of a qualified name: organization names may hold a
    separator themselves, so each is tried against the organizations that exist."""
    return [(name[:at], name[at + 1 :]) for at, char in enumerate(name) if char == SEPARATOR and 0 < at < len(name) - 1]


def needs_owner(scope: str, name: str, org_name: str) -> bool:
    """Whether a limit set by one organization's admin must be qualified with its name: a bare team
    or end-user name, or ``*`` over keys, would otherwise reach every organization."""
    if name.startswith(org_name + SEPARATOR):
        return False
    return scope in ("team", "user") or (scope == "key" and name == "*")
