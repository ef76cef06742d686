"""Who makes a change, as the audit log records it."""

from __future__ import annotations

import getpass
import socket
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Actor:
    name: str
    """``admin-key`` (the bootstrap superuser), a user's e-mail, or ``cli:<os user>``."""
    role: str
    """``superuser``, ``org_admin``, ``team_admin``, ``viewer``, or ``system`` for a file sync."""
    source: str
    """``api``, ``cli``, ``sync`` or ``internal``."""
    remote: str | None = None
    """The client's address (API), or the host the CLI ran on."""


def cli_actor() -> Actor:
    """The CLI works on the database directly, as whoever runs it on this host."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        user = "unknown"
    return Actor(name=f"cli:{user}", role="superuser", source="cli", remote=socket.gethostname()[:64])


SYNC = Actor(name="models-file", role="system", source="sync")
"""A sync of policies/models.yaml at start-up (or by ``gateway models sync``)."""


INTERNAL = Actor(name="gateway", role="system", source="internal")
"""The gateway's own code (tests, seeding) calling a service without a person behind it."""
